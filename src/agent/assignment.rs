//! Assignments: what the centre gives a site's agent to do, and how the agent keeps it.
//!
//! The centre cuts a site's assignment from its own configuration: the site's sources, their
//! tenant, contracts and tiers, the targets they write, the drill specs of those sources, the
//! recipients' certificates and the service's schedule settings. It names secrets (a
//! `passfile`, a `password_env`, a target's `credentials_env` or `profile`) but never holds
//! them: the agent resolves them from its own files and environment.
//!
//! The agent keeps the last assignment it got in `assignment.json` (written atomically), and
//! works from it while the centre cannot be reached. From it, it writes a configuration of
//! its own under `assignment/` (its `lifeboat.toml`, with its own key as the signing key), and
//! loads that with the same checks as any configuration.

use super::{Error, Result};
use crate::config::Loaded;
use crate::drill::spec::Drill;
use crate::repo::crypto::PublicCert;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a site's agent is to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assignment {
    /// The SHA-256 of the rest: it changes whenever what the site is to do changes.
    pub version: String,
    pub site: String,
    pub tenant: String,
    /// A `lifeboat.toml` for the site, without its keys and files (the agent adds those).
    pub config: String,
    /// The certificates every repository is encrypted to (armored): the service's recipients,
    /// then the tenant's own.
    pub recipients: Vec<String>,
    pub tenant_recipients: Vec<String>,
    /// Drill specs of the site's sources, by name.
    pub drills: BTreeMap<String, String>,
}

pub const PATH: &str = "/api/v1/agent/assignment";
/// The last assignment the agent got.
pub const FILE: &str = "assignment.json";
/// The agent's own configuration, made from it.
const DIR: &str = "assignment";
/// A recipient's secret key the agent's drills decrypt with, when the site keeps one.
pub const DRILL_KEY_FILE: &str = "drill.key";

/// `[service]` settings that travel to sites; the rest (where it listens, its keys, its
/// webhook) stays with the centre.
const SERVICE_KEYS: &[&str] = &["time_zone", "workers", "jitter", "prune", "stop_timeout"];

/// The assignment of each site of `loaded` (drills as the centre loaded them).
pub fn for_sites(
    loaded: &Loaded,
    drills: &[&Drill],
) -> std::result::Result<BTreeMap<String, Assignment>, String> {
    let table: toml::Table = loaded
        .text
        .parse()
        .map_err(|e| format!("cannot read the configuration again: {e}"))?;
    // Each site's sources, found once (an MSP has thousands of sites).
    let mut by_site: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (name, source) in &loaded.config.sources {
        if let Some(site) = source.site() {
            by_site.entry(site).or_default().push(name);
        }
    }
    let mut out = BTreeMap::new();
    for site in loaded.config.sites.keys() {
        let names = by_site.remove(site.as_str()).unwrap_or_default();
        out.insert(site.clone(), cut(&table, loaded, drills, site, &names)?);
    }
    Ok(out)
}

/// Site `site`'s assignment; `names` are its sources.
fn cut(
    table: &toml::Table,
    loaded: &Loaded,
    drills: &[&Drill],
    site: &str,
    names: &[&String],
) -> std::result::Result<Assignment, String> {
    let config = &loaded.config;
    let tenant = config.sites[site].tenant.get_ref().clone();
    let section = |name: &str| table.get(name).and_then(toml::Value::as_table);
    // The entries `keys` of section `name`.
    let take = |name: &str, keys: &mut dyn Iterator<Item = &str>| -> toml::Table {
        let Some(t) = section(name) else {
            return toml::Table::new();
        };
        keys.filter_map(|k| t.get(k).map(|v| (k.to_string(), v.clone())))
            .collect()
    };
    let pick = |name: &str, keep: &dyn Fn(&str) -> bool| -> toml::Table {
        section(name)
            .map(|t| {
                t.iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let at_site = |name: &str| names.iter().any(|n| n.as_str() == name);
    let sources = take("sources", &mut names.iter().map(|n| n.as_str()));
    let written: std::collections::BTreeSet<&String> = names
        .iter()
        .filter_map(|n| config.sources.get(n.as_str()))
        .flat_map(|s| s.written_targets())
        .collect();
    let mut targets = pick("targets", &|name| {
        written.iter().any(|t| t.as_str() == name)
    });
    for (_, target) in targets.iter_mut() {
        // Another tenant's settings on a shared target are not the site's business.
        if let Some(own) = target.get_mut("tenants").and_then(|t| t.as_table_mut()) {
            own.retain(|id, _| *id == tenant);
        }
    }
    let contracts = take(
        "contracts",
        &mut config
            .contracts
            .iter()
            .filter(|(_, c)| *c.tenant.get_ref() == tenant)
            .map(|(name, _)| name.as_str()),
    );
    let mut tenants = take("tenants", &mut std::iter::once(tenant.as_str()));
    for (_, t) in tenants.iter_mut() {
        if let Some(t) = t.as_table_mut() {
            t.remove("recipients");
        }
    }
    let service = pick("service", &|key| SERVICE_KEYS.contains(&key));
    let sites = take("sites", &mut std::iter::once(site));
    let mut out = toml::Table::new();
    for (name, value) in [
        ("service", service),
        ("tenants", tenants),
        ("contracts", contracts),
        ("targets", targets),
        ("sources", sources),
        ("sites", sites),
    ] {
        out.insert(name.into(), toml::Value::Table(value));
    }
    let text = toml::to_string(&out).map_err(|e| format!("site '{site}': {e}"))?;
    let armored = |paths: &mut dyn Iterator<Item = &Path>| {
        paths
            .map(|p| {
                PublicCert::load(p)
                    .and_then(|c| c.armored())
                    .map_err(|e| format!("site '{site}': recipient {}: {e}", p.display()))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
    };
    let recipients = armored(&mut config.service.recipients.iter().map(PathBuf::as_path))?;
    let tenant_recipients = armored(
        &mut config.tenants[&tenant]
            .recipients
            .iter()
            .map(|p| p.get_ref().as_path()),
    )?;
    let mut specs = BTreeMap::new();
    for d in drills.iter().filter(|d| at_site(d.spec.source.get_ref())) {
        let text = std::fs::read_to_string(&d.path)
            .map_err(|e| format!("site '{site}': drill {}: {e}", d.path.display()))?;
        specs.insert(d.name.clone(), text);
    }
    let mut assignment = Assignment {
        version: String::new(),
        site: site.into(),
        tenant,
        config: text,
        recipients,
        tenant_recipients,
        drills: specs,
    };
    assignment.version = assignment.digest()?;
    Ok(assignment)
}

impl Assignment {
    /// The SHA-256 of everything but the version, in canonical JSON.
    fn digest(&self) -> std::result::Result<String, String> {
        let mut unversioned = self.clone();
        unversioned.version = String::new();
        let bytes = serde_json_canonicalizer::to_vec(&unversioned).map_err(|e| e.to_string())?;
        Ok(crate::evidence::record::sha256_hex(&bytes))
    }

    /// Whether it is whole: its version is what its content says.
    pub fn is_whole(&self) -> bool {
        self.digest().is_ok_and(|d| d == self.version)
    }
}

/// The assignment the agent in `data_dir` last got, if any.
pub fn current(data_dir: &Path) -> Result<Option<Assignment>> {
    let path = data_dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Other(format!("{}: {e}", path.display()))),
    };
    let assignment: Assignment = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{} is damaged ({e}); remove it and the agent fetches its assignment again",
            path.display()
        ))
    })?;
    if !assignment.is_whole() {
        return Err(Error::Other(format!(
            "{} does not match its version; remove it and the agent fetches its assignment \
             again",
            path.display()
        )));
    }
    Ok(Some(assignment))
}

/// Keeps `assignment` as the agent's current one (after checking it is whole and for this
/// agent's site).
pub fn keep(data_dir: &Path, assignment: &Assignment, site: &str) -> Result<()> {
    if !assignment.is_whole() || assignment.site != site {
        return Err(Error::Refused(format!(
            "the centre's assignment is not whole or not for site '{site}'; the last one stays"
        )));
    }
    let json = serde_json::to_vec_pretty(assignment).map_err(|e| Error::Other(e.to_string()))?;
    let path = data_dir.join(FILE);
    crate::files::write_atomically(&path, &json, Some(0o600))
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
}

/// The agent's configuration and drills made from `assignment`, with the agent's own key
/// (`key`) signing what it writes. The files it names are written under
/// `data_dir/assignment/`.
pub fn install(
    data_dir: &Path,
    key: &Path,
    assignment: &Assignment,
) -> Result<(Loaded, Vec<Drill>)> {
    let dir = data_dir.join(DIR);
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Other(format!("{}: {e}", parent.display())))?;
        }
        crate::files::write_atomically(&path, text.as_bytes(), Some(0o644))
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        Ok(path)
    };
    let mut table: toml::Table = assignment
        .config
        .parse()
        .map_err(|e| Error::Refused(format!("the assignment's configuration: {e}")))?;
    let path_value = |p: &Path| toml::Value::String(p.display().to_string());
    let mut service = toml::Table::new();
    if let Some(toml::Value::Table(t)) = table.remove("service") {
        service = t;
    }
    service.insert("signing_key".into(), path_value(key));
    service.insert("data_dir".into(), path_value(data_dir));
    let mut recipients = Vec::new();
    for (i, cert) in assignment.recipients.iter().enumerate() {
        recipients.push(path_value(&write(&format!("recipients/{i}.cert"), cert)?));
    }
    service.insert("recipients".into(), toml::Value::Array(recipients));
    let mut drills = Vec::new();
    for (name, spec) in &assignment.drills {
        drills.push(path_value(&write(&format!("drills/{name}.toml"), spec)?));
    }
    service.insert("drills".into(), toml::Value::Array(drills));
    let drill_key = data_dir.join(DRILL_KEY_FILE);
    if drill_key.exists() {
        service.insert("drill_key".into(), path_value(&drill_key));
    }
    let mut own = Vec::new();
    for (i, cert) in assignment.tenant_recipients.iter().enumerate() {
        own.push(path_value(&write(
            &format!("recipients/tenant-{i}.cert"),
            cert,
        )?));
    }
    if let Some(t) = table
        .get_mut("tenants")
        .and_then(|t| t.get_mut(&assignment.tenant))
        .and_then(toml::Value::as_table_mut)
    {
        t.insert("recipients".into(), toml::Value::Array(own));
    }
    let mut whole = toml::Table::new();
    whole.insert("service".into(), toml::Value::Table(service));
    whole.extend(table);
    let text = toml::to_string(&whole).map_err(|e| Error::Other(e.to_string()))?;
    let config = write("lifeboat.toml", &text)?;
    let loaded = crate::config::parse(&config, &text)
        .map_err(|invalid| Error::Refused(invalid.to_string().trim_end().to_string()))?;
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for path in &loaded.config.service.drills {
        match crate::drill::spec::load(path, &loaded) {
            Ok(d) => specs.push(d),
            Err(invalid) => problems.push(invalid.to_string().trim_end().to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused(problems.join("\n")));
    }
    Ok((loaded, specs))
}
