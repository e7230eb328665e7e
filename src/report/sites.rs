//! Site agents' chains in a report bundle. Each agent that wrote records a report rests on
//! has a folder `sites/AGENT/` with its certificate (`agent.cert`), the centre's statement
//! binding it to its site and tenant (`enrollment.json`, signed by the service in
//! `enrollment.json.asc`), and its records (`TENANT/NNNNNNNN.json` with `.asc` beside each,
//! signed by the agent). An auditor who trusts the service's certificate can so trust each
//! agent's key, and check its records as they check the service's.

use super::{Entry, Report, SiteSpan};
use crate::catalog::evidence::StoredEvidence;
use crate::catalog::sites::AgentRow;
use crate::evidence::enrollment::Statement;
use crate::evidence::{chain, record::sha256_hex, Record};
use crate::repo::crypto::{self, PublicCert};
use std::path::Path;

/// The files of the agents' folders, by their names in the bundle.
pub(super) fn files(sites: &[(&AgentRow, Vec<&StoredEvidence>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (agent, records) in sites {
        let dir = format!("sites/{}", agent.id);
        out.push((
            format!("{dir}/agent.cert"),
            agent.certificate.clone().into_bytes(),
        ));
        out.push((
            format!("{dir}/enrollment.json"),
            agent.statement.clone().into_bytes(),
        ));
        out.push((
            format!("{dir}/enrollment.json.asc"),
            agent.signature.clone().into_bytes(),
        ));
        for e in records {
            let name = format!("{dir}/{}/{}", e.tenant, chain::file_name(e.sequence));
            out.push((format!("{name}.asc"), e.signature.clone().into_bytes()));
            out.push((name, e.record.clone()));
        }
    }
    out
}

/// Checks each agent's folder the report names against `service` (the certificate the
/// report was checked with); returns the records read, for recomputing the report.
pub(super) fn verify(
    top: &Path,
    report: &Report,
    service: &PublicCert,
    checked: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for site in &report.sites {
        match verify_one(top, report, site, service, checked) {
            Ok(mut read) => entries.append(&mut read),
            Err(why) => problems.push(format!("sites/{}: {why}", site.agent)),
        }
    }
    entries
}

fn verify_one(
    top: &Path,
    report: &Report,
    site: &SiteSpan,
    service: &PublicCert,
    checked: &mut Vec<String>,
) -> Result<Vec<Entry>, String> {
    let dir = top.join("sites").join(&site.agent);
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("the bundle has no readable {name}: {e}"))
    };
    let cert =
        PublicCert::from_bytes(&read("agent.cert")?).map_err(|e| format!("agent.cert: {e}"))?;
    let statement = read("enrollment.json")?;
    crypto::verify_detached(service, &statement, &read("enrollment.json.asc")?).map_err(|e| {
        format!(
            "enrollment.json is not signed by the service ({}): {e}",
            service.describe()
        )
    })?;
    let said: Statement = serde_json::from_slice(&statement)
        .map_err(|e| format!("enrollment.json is not an enrollment statement: {e}"))?;
    let fingerprint = cert.fingerprint().to_hex();
    let centre = service.fingerprint().to_hex();
    if !fingerprint.eq_ignore_ascii_case(&site.agent)
        || !said.binds(&fingerprint, &report.terms.tenant, &centre)
    {
        return Err(format!(
            "enrollment.json binds agent {} to tenant '{}' for service {}, not agent.cert \
             ({fingerprint}) to tenant '{}' for {centre}",
            said.agent, said.tenant, said.centre, report.terms.tenant
        ));
    }
    checked.push(format!(
        "agent {fingerprint} works for site '{}' of tenant '{}', as the service signed on {}",
        said.site, said.tenant, said.enrolled
    ));
    let folder = dir.join(&report.terms.tenant);
    let v = chain::verify(&folder, &cert).map_err(|e| e.to_string())?;
    if let Some(p) = v.problems.first() {
        return Err(format!("{}: {}", p.file, p.message));
    }
    let stated = (site.span.first, site.span.last, site.span.head.as_deref());
    for c in &v.chains {
        if stated != (Some(c.first), Some(c.last), Some(c.head.as_str())) {
            return Err(format!(
                "the report names records {:?} to {:?} of this agent, the bundle holds {} to {}",
                site.span.first, site.span.last, c.first, c.last
            ));
        }
        checked.push(format!(
            "records {} to {} of site '{}' are signed by its agent, canonical and chained, \
             ending in the head the report names",
            c.first, c.last, said.site
        ));
    }
    read_entries(&folder, Some(&site.agent))
}

/// The records in `folder`, in sequence order, as entries of `agent`'s chain (`None`: the
/// service's).
pub(super) fn read_entries(folder: &Path, agent: Option<&str>) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))? {
        let path = e.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "json") {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let record = Record::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            entries.push(Entry {
                sequence: record.sequence,
                sha256: sha256_hex(&bytes),
                record,
                agent: agent.map(str::to_string),
            });
        }
    }
    entries.sort_by_key(|e| e.sequence);
    Ok(entries)
}
