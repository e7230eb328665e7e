//! The report bundle: what an auditor downloads. One tar archive with the report (signed JSON,
//! HTML, CSV), every evidence record it rests on with its signature, the service's certificate
//! and `VERIFY.md`. `verify` checks all of it offline and recomputes the report from the
//! records.

use super::sites::read_entries;
use super::{compute_version, Period, Report, Stored};
use crate::catalog::evidence::StoredEvidence;
use crate::catalog::sites::AgentRow;
use crate::evidence::chain;
use crate::repo::crypto::{self, PublicCert, SecretKey};
use std::path::{Path, PathBuf};

/// The report's canonical bytes (RFC 8785): what its signature covers.
pub fn report_bytes(report: &Report) -> Result<Vec<u8>, String> {
    serde_json_canonicalizer::to_vec(report).map_err(|e| e.to_string())
}

/// The folder name inside the archive.
pub fn folder_name(report: &Report) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!(
        "lifeboat-report-{}-{}",
        clean(&report.terms.contract),
        clean(&report.period.label)
    )
}

/// The stored records a report rests on: of the service's chain and of each site agent's.
pub struct Bundled<'a> {
    pub centre: Vec<&'a StoredEvidence>,
    pub sites: Vec<(&'a AgentRow, Vec<&'a StoredEvidence>)>,
}

impl Bundled<'_> {
    /// How many records, in all.
    pub fn len(&self) -> usize {
        self.centre.len() + self.sites.iter().map(|(_, r)| r.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The stored records the report rests on, in sequence order in each chain.
pub fn records_for<'a>(report: &Report, stored: &'a Stored) -> Bundled<'a> {
    let within = |span: &super::Span, records: &'a [StoredEvidence]| match (span.first, span.last) {
        (Some(first), Some(last)) => records
            .iter()
            .filter(|e| e.sequence >= first && e.sequence <= last)
            .collect(),
        _ => Vec::new(),
    };
    let mut sites = Vec::new();
    for site in &report.sites {
        if let Some((agent, records)) = stored.sites.iter().find(|(a, _)| a.id == site.agent) {
            sites.push((agent, within(&site.span, records)));
        }
    }
    Bundled {
        centre: within(&report.evidence, &stored.centre),
        sites,
    }
}

/// Writes the bundle to `out` (through a temporary file beside it, renamed when complete).
pub fn write(
    out: &Path,
    report: &Report,
    records: &Bundled<'_>,
    signing: &SecretKey,
) -> Result<(), String> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
    write_to(tmp.as_file_mut(), report, records, signing)?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    tmp.persist(out)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

/// Writes the bundle as a tar stream.
pub fn write_to(
    w: impl std::io::Write,
    report: &Report,
    records: &Bundled<'_>,
    signing: &SecretKey,
) -> Result<(), String> {
    let top = folder_name(report);
    let json = report_bytes(report)?;
    let signature = crypto::sign_detached(signing, &json).map_err(|e| e.to_string())?;
    let cert = signing.public().armored().map_err(|e| e.to_string())?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "VERIFY.md".into(),
            verify_md(report, &signing.public()).into_bytes(),
        ),
        ("report.json".into(), json),
        ("report.json.asc".into(), signature.into_bytes()),
        (
            "report.html".into(),
            super::render::html(report).into_bytes(),
        ),
        ("days.csv".into(), super::render::days_csv(report)?),
        ("drills.csv".into(), super::render::drills_csv(report)?),
        ("service.cert".into(), cert.into_bytes()),
    ];
    for e in &records.centre {
        let name = format!("evidence/{}/{}", e.tenant, chain::file_name(e.sequence));
        files.push((format!("{name}.asc"), e.signature.clone().into_bytes()));
        files.push((name, e.record.clone()));
    }
    files.extend(super::sites::files(&records.sites));
    let mtime = chrono::DateTime::parse_from_rfc3339(&report.generated)
        .map(|t| t.timestamp().max(0) as u64)
        .unwrap_or(0);
    let mut tar = tar::Builder::new(w);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{top}/{name}"), bytes.as_slice())
            .map_err(|e| format!("{name}: {e}"))?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| e.to_string())
}

fn verify_md(report: &Report, cert: &PublicCert) -> String {
    let span = match (report.evidence.first, report.evidence.last, &report.evidence.head) {
        (Some(first), Some(last), Some(head)) => format!(
            "records {first} to {last} of tenant `{}` ({} records); the last one's SHA-256 is\n`{head}`",
            report.terms.tenant, report.evidence.records
        ),
        _ => "no evidence records (nothing was recorded in the period)".into(),
    };
    format!(
        "# How to check this recovery report\n\n\
         Contract `{contract}` of {tenant}, period {period}, made {generated}.\n\n\
         The report rests on {span}.\n\n\
         Everything here is signed by the service key of the Lifeboat that made it:\n\n\
         - fingerprint `{fpr}` (`service.cert`)\n\n\
         Compare that fingerprint with the one your provider gave you outside this bundle:\n\
         a bundle checked only against its own certificate proves nothing about who made it.\n\n\
         ## With Lifeboat\n\n\
         ```\nlifeboat report verify THIS-BUNDLE.tar --cert THE-CERT-YOU-WERE-GIVEN\n```\n\n\
         It checks the report's signature, every record's signature, canonical form and place in\n\
         the chain (no record missing, reordered or inserted), that the records are the ones the\n\
         report names, then recomputes every figure of the report from the records and compares;\n\
         it also checks that `report.html`, `days.csv` and `drills.csv` show the signed report.\n\
         `lifeboat evidence verify evidence --cert service.cert` checks the records alone.\n\n\
         ## With stock OpenPGP tools\n\n\
         ```\nsqv --keyring service.cert report.json.asc report.json\n\
         for f in evidence/*/*.json; do sqv --keyring service.cert \"$f.asc\" \"$f\" || echo \"BAD $f\"; done\n```\n\n\
         or, with GnuPG: `gpg --import service.cert` then `gpg --verify report.json.asc report.json`\n\
         and the same for each record.\n\n\
         Each record is canonical JSON (RFC 8785). Record N holds `\"sequence\":N` and\n\
         `\"previous\"`: the SHA-256 of record N-1's file, so `sha256sum evidence/*/*.json` shows the\n\
         chain. The figures in `report.json` follow from the records as `docs/FORMAT.md`\n\
         (\"Reports\") of Lifeboat describes.\n{sites}",
        sites = sites_md(report),
        contract = report.terms.contract,
        tenant = report.terms.tenant_name,
        period = report.period.label,
        generated = report.generated,
        fpr = cert.fingerprint(),
    )
}

/// What `VERIFY.md` says of the site agents' chains, if the report rests on any.
fn sites_md(report: &Report) -> String {
    if report.sites.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Records written at the customer's sites\n\n\
         Some records were written and signed at a site, by the agent there, with a key of its \
         own. `sites/AGENT/enrollment.json` is the service's statement that the agent's key \
         (`sites/AGENT/agent.cert`) works for this tenant, signed by the service key \
         (`enrollment.json.asc`); check it first, then the agent's records with its \
         certificate:\n\n```\n",
    );
    for s in &report.sites {
        out.push_str(&format!(
            "sqv --keyring service.cert sites/{a}/enrollment.json.asc sites/{a}/enrollment.json\n\
             for f in sites/{a}/*/*.json; do sqv --keyring sites/{a}/agent.cert \"$f.asc\" \"$f\" || echo \"BAD $f\"; done\n",
            a = s.agent
        ));
    }
    out.push_str("```\n\nEach agent's records form a chain of their own, numbered from 1.\n");
    out
}

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub contract: String,
    pub period: String,
    /// The certificate the signatures were checked against.
    pub certificate: String,
    /// Whether that certificate came from the bundle itself (then compare its fingerprint).
    pub certificate_from_bundle: bool,
    pub records: u64,
    pub head: Option<String>,
    /// What was checked and held.
    pub checked: Vec<String>,
    /// Empty when everything holds.
    pub problems: Vec<String>,
}

/// Checks a bundle offline: signatures (against `cert`, or the bundle's own certificate), the
/// records' chain, the records against the report's stated span, every figure recomputed,
/// and the HTML and CSV against the signed report.
pub fn verify(bundle: &Path, cert: Option<&PublicCert>) -> Result<Verdict, String> {
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let file = std::fs::File::open(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let mut archive = tar::Archive::new(file);
    archive.unpack(scratch.path()).map_err(|e| {
        format!(
            "{} is not a readable report bundle (tar): {e}",
            bundle.display()
        )
    })?;
    let top = single_folder(scratch.path())?;
    let read = |name: &str| -> Result<Vec<u8>, String> {
        std::fs::read(top.join(name)).map_err(|e| format!("the bundle has no readable {name}: {e}"))
    };
    let bundled =
        PublicCert::from_bytes(&read("service.cert")?).map_err(|e| format!("service.cert: {e}"))?;
    let (cert, from_bundle) = match cert {
        Some(c) => (c.clone(), false),
        None => (bundled.clone(), true),
    };
    let json = read("report.json")?;
    let signature = read("report.json.asc")?;
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    if !from_bundle && bundled.fingerprint() != cert.fingerprint() {
        problems.push(format!(
            "service.cert in the bundle is {}, not the certificate given ({})",
            bundled.describe(),
            cert.describe()
        ));
    }
    if let Err(e) = crypto::verify_detached(&cert, &json, &signature) {
        problems.push(format!(
            "report.json: the signature does not verify ({e}): the report was changed or not \
             signed by {}",
            cert.describe()
        ));
    } else {
        checked.push(format!("report.json is signed by {}", cert.describe()));
    }
    let report: Report = serde_json::from_slice(&json)
        .map_err(|e| format!("report.json is not a Lifeboat report: {e}"))?;
    if report.format != super::FORMAT || !(1..=super::VERSION).contains(&report.version) {
        return Err(format!(
            "report.json is format {} version {}, not one this Lifeboat reads",
            report.format, report.version
        ));
    }
    if report_bytes(&report)? != json {
        problems.push("report.json is not in canonical form: it was edited or re-encoded".into());
    }

    // The records.
    let evidence_dir = top.join("evidence");
    let mut entries = Vec::new();
    if report.evidence.records > 0 {
        let folder = evidence_dir.join(&report.terms.tenant);
        match chain::verify(&folder, &cert) {
            Err(e) => problems.push(format!("evidence: {e}")),
            Ok(v) => {
                for p in &v.problems {
                    problems.push(format!("{}: {}", relative(&top, &p.file), p.message));
                }
                for c in &v.chains {
                    let stated = (
                        report.evidence.first,
                        report.evidence.last,
                        report.evidence.head.as_deref(),
                    );
                    if stated != (Some(c.first), Some(c.last), Some(c.head.as_str())) {
                        problems.push(format!(
                            "the report names records {} to {} ending in {}, the bundle holds {} to {} ending in {}",
                            opt(report.evidence.first),
                            opt(report.evidence.last),
                            report.evidence.head.as_deref().unwrap_or("-"),
                            c.first,
                            c.last,
                            c.head
                        ));
                    } else {
                        checked.push(format!(
                            "records {} to {} are signed, canonical and chained, ending in the \
                             head the report names",
                            c.first, c.last
                        ));
                    }
                }
                if v.problems.is_empty() {
                    entries = read_entries(&folder, None)?;
                }
            }
        }
    }

    entries.extend(super::sites::verify(
        &top,
        &report,
        &cert,
        &mut checked,
        &mut problems,
    ));

    // Every figure again, from the records.
    if problems.is_empty() {
        let period = Period::parse(&report.period.label)?;
        let generated = chrono::DateTime::parse_from_rfc3339(&report.generated)
            .map_err(|e| format!("report.json: generated: {e}"))?
            .with_timezone(&chrono::Utc);
        match compute_version(report.version, &report.terms, &period, generated, &entries) {
            Err(e) => problems.push(format!("the report cannot be recomputed: {e}")),
            Ok(again) => {
                let (a, b) = (
                    serde_json::to_value(&report).map_err(|e| e.to_string())?,
                    serde_json::to_value(&again).map_err(|e| e.to_string())?,
                );
                match first_difference(&a, &b, String::new()) {
                    Some((path, stated, found)) => problems.push(format!(
                        "report.json says {path} = {stated}, the records give {found}"
                    )),
                    None => checked.push(
                        "every figure of the report was recomputed from the records and agrees"
                            .into(),
                    ),
                }
            }
        }
        let renderings = if report.version == super::VERSION {
            vec![
                ("report.html", super::render::html(&report).into_bytes()),
                ("days.csv", super::render::days_csv(&report)?),
                ("drills.csv", super::render::drills_csv(&report)?),
            ]
        } else {
            checked.push(format!(
                "report.html and the CSV files were made by an older Lifeboat (report version \
                 {}) and are not compared: trust report.json",
                report.version
            ));
            Vec::new()
        };
        for (name, rendered) in renderings {
            match read(name) {
                Ok(bytes) if bytes == rendered => {
                    checked.push(format!("{name} shows the signed report"))
                }
                Ok(_) => problems.push(format!(
                    "{name} does not show the signed report: it was changed; trust report.json"
                )),
                Err(e) => problems.push(e),
            }
        }
    }
    Ok(Verdict {
        contract: report.terms.contract.clone(),
        period: report.period.label.clone(),
        certificate: cert.describe(),
        certificate_from_bundle: from_bundle,
        records: report.evidence.records,
        head: report.evidence.head.clone(),
        checked,
        problems,
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn relative(top: &Path, file: &str) -> String {
    Path::new(file)
        .strip_prefix(top)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.to_string())
}

fn single_folder(dir: &Path) -> Result<PathBuf, String> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [one] if one.is_dir() => Ok(one.clone()),
        _ => Err("a report bundle holds one folder (lifeboat-report-…); this one does not".into()),
    }
}

/// The first place two JSON values differ: its path, and both values.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, p) {
                            return Some(d);
                        }
                    }
                    None => return Some((p, v.to_string(), "nothing".into())),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| (format!("{path}.{k}"), "nothing".into(), y[k].to_string()))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| {
                (
                    format!("{path} (length)"),
                    x.len().to_string(),
                    y.len().to_string(),
                )
            })
        }
        _ => (a != b).then(|| (path, a.to_string(), b.to_string())),
    }
}
