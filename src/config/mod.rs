//! `lifeboat.toml`: the service, its targets, tenants, contracts and sources.
//!
//! Loading reports every problem at once, each with its file and line: unknown keys (a typo is
//! an error, never silently ignored), values that do not parse, and contradictions between
//! sections (a source naming a missing target, an RPO shorter than the tier's interval).

pub mod http;
mod service;
mod site;
mod target;
pub mod vm;

pub use service::{Service, STOP_TIMEOUT};
pub use site::Site;
pub use target::{Target, TargetKind, RESERVED_TENANT_IDS};

use crate::backend::S3Url;
use crate::schedule::retention::{parse_span, span};
use crate::schedule::tier::Tier;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
pub struct Config {
    pub service: Service,
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    #[serde(default)]
    pub tenants: BTreeMap<String, Tenant>,
    #[serde(default)]
    pub contracts: BTreeMap<String, Contract>,
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    /// Customer sites, where enrolled agents work.
    #[serde(default)]
    pub sites: BTreeMap<String, Site>,
}

impl Source {
    /// The database of a `postgres`, `mysql` or `sqlite` source (validated at load).
    pub fn database(&self) -> Option<crate::source::Database> {
        let database = self.database.as_ref()?.get_ref();
        match self.kind {
            SourceKind::Files | SourceKind::Vm => None,
            SourceKind::Sqlite => Some(crate::source::Database::Sqlite(database.into())),
            SourceKind::Postgres | SourceKind::Mysql => crate::source::Database::server(
                database,
                self.passfile.clone(),
                self.password_env.clone(),
            )
            .ok(),
        }
    }
}

impl Config {
    /// What customers and auditors must not read in an error message: where the targets are
    /// (folders, buckets, endpoints and their hosts) and where the service keeps its data.
    pub fn confidential(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.targets.values() {
            if let Some(p) = &t.path {
                out.push(p.display().to_string());
            }
            if let Some(url) = &t.url {
                out.push(url.get_ref().clone());
                if let Ok(u) = S3Url::parse(url.get_ref()) {
                    out.push(u.bucket);
                }
            }
            for own in t.tenants.values().filter_map(|o| o.url.as_ref()) {
                out.push(own.get_ref().clone());
                if let Ok(u) = S3Url::parse(own.get_ref()) {
                    out.push(u.bucket);
                }
            }
            if let Some(e) = &t.endpoint {
                out.push(e.clone());
                let host = e.split_once("://").map_or(e.as_str(), |(_, h)| h);
                out.push(host.split(['/', ':']).next().unwrap_or("").to_string());
            }
        }
        if let Some(d) = &self.service.data_dir {
            out.push(d.display().to_string());
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

#[derive(Debug, Deserialize)]
pub struct Tenant {
    pub name: String,
    /// The tenant's own recipients (an escrow key's certificate): its repositories are
    /// encrypted to these as well as to `[service] recipients`.
    #[serde(default)]
    pub recipients: Vec<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
pub struct Contract {
    pub tenant: Spanned<String>,
    /// Most data a restore may lose: the age of the newest backup (`30m`, `4h`).
    pub rpo: Spanned<String>,
    /// Longest a restore may take.
    pub rto: Spanned<String>,
    #[serde(default)]
    pub test_restores_per_year: u32,
    /// Notice the customer must give to cancel a test restore.
    pub cancellation_notice: Option<Spanned<String>>,
}

impl Contract {
    /// The RPO as a duration (validated at load).
    pub fn rpo(&self) -> Option<chrono::Duration> {
        parse_span(self.rpo.get_ref()).ok()
    }

    /// The RTO as a duration (validated at load).
    pub fn rto(&self) -> Option<chrono::Duration> {
        parse_span(self.rto.get_ref()).ok()
    }

    /// How long before a planned drill it can still be cancelled (none: until it starts).
    pub fn notice(&self) -> chrono::Duration {
        self.cancellation_notice
            .as_ref()
            .and_then(|n| parse_span(n.get_ref()).ok())
            .unwrap_or_else(chrono::Duration::zero)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Files,
    Postgres,
    /// MariaDB or MySQL.
    #[serde(alias = "mariadb")]
    Mysql,
    Sqlite,
    Vm,
}

#[derive(Debug, Deserialize)]
pub struct Source {
    pub tenant: Spanned<String>,
    pub contract: Spanned<String>,
    pub kind: SourceKind,
    /// Files and folders (kind `files`).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// The database: `postgres://USER@HOST[:PORT]/DATABASE` (kind `postgres`),
    /// `mysql://USER@HOST[:PORT]/DATABASE` (kind `mysql`), no password in either; or the path
    /// of the database file (kind `sqlite`).
    pub database: Option<Spanned<String>>,
    /// A file with the database password: a `.pgpass` file (postgres) or an option file with a
    /// `[client]` section (mysql).
    pub passfile: Option<PathBuf>,
    /// The environment variable of the daemon that holds the database password.
    pub password_env: Option<String>,
    /// A tier preset (`90/48`) or `DAYS/PER_DAY`.
    pub tier: Spanned<String>,
    /// Targets the backups go to.
    pub targets: Spanned<Vec<String>>,
    /// A second target that the newest snapshot is copied to each day (tier `14/1`).
    pub copy_to: Option<Spanned<String>>,
    /// The VM's hypervisor and health check (kind `vm`).
    pub vm: Option<vm::Vm>,
    /// The site whose agent backs it up (`[sites.ID]`); none: the central service itself.
    pub site: Option<Spanned<String>>,
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Every problem found, in line order.
#[derive(Debug)]
pub struct Invalid {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} has {} problem(s):",
            self.path.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {}:{}: {}", self.path.display(), p.line, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// A valid configuration, with its tiers resolved.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub tiers: BTreeMap<String, Tier>,
    /// The text it was read from (sites' assignments are cut from it).
    pub text: String,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Loaded, Invalid> {
    let text = std::fs::read_to_string(path).map_err(|e| Invalid {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read it: {e}"),
        }],
    })?;
    parse(path, &text)
}

/// Why a recipient certificate cannot serve (unreadable, no encryption subkey, expired, or
/// only readable by newer tools than stock gpg 2.2 and sq 0.27), if it cannot.
pub fn recipient_problem(path: &Path) -> Result<(), String> {
    let cert = crate::repo::crypto::PublicCert::load(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    cert.usable_recipient()
        .map_err(|why| format!("{} ({}): {why}", path.display(), cert.describe()))
}

/// Validates the text of a configuration file; `path` names it in messages.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Invalid> {
    let invalid = |problems: Vec<Problem>| Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;

    let de =
        toml::Deserializer::parse(text).map_err(|e| invalid(vec![toml_problem(&e, &line_of)]))?;
    let mut unknown = Vec::new();
    let config: Config = serde_ignored::deserialize(de, |key| unknown.push(key.to_string()))
        .map_err(|e| invalid(vec![toml_problem(&e, &line_of)]))?;
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|key| Problem {
            line: line_of_key(text, key),
            message: format!("unknown key '{key}'"),
        })
        .collect();

    let at = |s: &std::ops::Range<usize>| line_of(s.start);
    let mut problem = |line: usize, message: String| problems.push(Problem { line, message });

    if let Some(hook) = &config.service.webhook {
        let url = hook.get_ref();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problem(
                at(&hook.span()),
                format!("webhook '{url}' is not an http:// or https:// address"),
            );
        }
    }
    let tz = &config.service.time_zone;
    if tz.get_ref().parse::<chrono_tz::Tz>().is_err() {
        problem(
            at(&tz.span()),
            format!(
                "time_zone '{}' is not an IANA time zone such as Europe/Berlin",
                tz.get_ref()
            ),
        );
    }
    let jitter = &config.service.jitter;
    if let Err(e) = parse_span(jitter.get_ref()) {
        problem(at(&jitter.span()), format!("jitter: {e}"));
    }
    let prune = &config.service.prune;
    if let Err(e) = crate::schedule::tier::Tier::prune(prune.get_ref()) {
        problem(at(&prune.span()), format!("prune: {e}"));
    }
    if config.service.workers == 0 {
        problem(0, "workers must be at least 1".into());
    }
    let service_problems = [
        config.service.http.limits().err(),
        http::trusted_proxies(&config.service.trusted_proxies).err(),
    ];
    for (span, message) in service_problems.into_iter().flatten().flatten() {
        problem(at(&span), message);
    }
    if let Some(silence) = &config.service.site_silence {
        match parse_span(silence.get_ref()) {
            Err(e) => problem(at(&silence.span()), format!("site_silence: {e}")),
            Ok(d) if d < chrono::Duration::minutes(1) => problem(
                at(&silence.span()),
                "site_silence: at least 1m (agents check in every few minutes)".into(),
            ),
            Ok(_) => {}
        }
    }
    if let Some(catalog) = &config.service.catalog {
        if let Err(e) = crate::catalog::db::postgres::check_url(catalog.get_ref()) {
            problem(at(&catalog.span()), format!("catalog: {e}"));
        }
    }
    if let Some(stop) = &config.service.stop_timeout {
        if let Err(e) = parse_span(stop.get_ref()) {
            problem(at(&stop.span()), format!("stop_timeout: {e}"));
        }
    }
    for (name, target) in &config.targets {
        let line = at(&target.kind.span());
        match (target.kind.get_ref(), &target.path, &target.url) {
            (TargetKind::Local, Some(_), None) => {}
            (TargetKind::Local, _, _) => problem(
                line,
                format!("target '{name}' of kind local needs a path and no url"),
            ),
            (TargetKind::S3, None, Some(url)) => {
                if let Err(e) = crate::backend::S3Url::parse(url.get_ref()) {
                    problem(at(&url.span()), format!("target '{name}': {e}"));
                }
                if let Some(why) = http::credentials_in(url.get_ref()) {
                    problem(at(&url.span()), format!("target '{name}': url: {why}"));
                }
            }
            (TargetKind::S3, _, _) => problem(
                line,
                format!("target '{name}' of kind s3 needs a url (s3://BUCKET/PREFIX) and no path"),
            ),
        }
        if let Some(why) = target.endpoint.as_deref().and_then(http::credentials_in) {
            problem(line, format!("target '{name}': endpoint: {why}"));
        }
        let ids: Vec<&String> = config.tenants.keys().collect();
        for (span, message) in target.tenant_problems(name, &ids) {
            problem(span.as_ref().map_or(line, at), message);
        }
        if *target.kind.get_ref() == TargetKind::Local
            && (target.endpoint.is_some() || target.region.is_some() || target.path_style)
        {
            problem(
                line,
                format!("target '{name}' is local: endpoint, region and path_style are for s3"),
            );
        }
    }
    for (id, tenant) in &config.tenants {
        let line = line_of_key(text, &format!("tenants.{id}"));
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !id.starts_with('.');
        if !safe {
            problem(
                line,
                format!(
                    "tenant id '{id}' names a folder of its repository on every target: use \
                     letters, digits, '-', '_' and '.' (not first)"
                ),
            );
        } else if RESERVED_TENANT_IDS.contains(&id.as_str()) {
            problem(
                line,
                format!(
                    "tenant id '{id}' is the name of a repository folder; choose another \
                     (not {})",
                    RESERVED_TENANT_IDS.join(", ")
                ),
            );
        }
        for cert in &tenant.recipients {
            if let Err(why) = recipient_problem(cert.get_ref()) {
                problem(at(&cert.span()), format!("tenant '{id}': recipient {why}"));
            }
        }
    }
    let tenant_ids: Vec<&String> = config.tenants.keys().collect();
    for (id, site) in &config.sites {
        let line = line_of_key(text, &format!("sites.{id}"));
        for (span, message) in site.problems(id, &tenant_ids) {
            problem(span.as_ref().map_or(line, at), message);
        }
    }
    for (span, message) in site::placement_problems(&config) {
        problem(at(&span), message);
    }
    for (name, contract) in &config.contracts {
        if !config.tenants.contains_key(contract.tenant.get_ref()) {
            problem(
                at(&contract.tenant.span()),
                format!(
                    "contract '{name}' names tenant '{}', which is not defined under [tenants]",
                    contract.tenant.get_ref()
                ),
            );
        }
        for (what, value) in [
            ("rpo", Some(&contract.rpo)),
            ("rto", Some(&contract.rto)),
            ("cancellation_notice", contract.cancellation_notice.as_ref()),
        ] {
            if let Some(v) = value {
                if let Err(e) = parse_span(v.get_ref()) {
                    problem(at(&v.span()), format!("contract '{name}': {what}: {e}"));
                }
            }
        }
    }
    let mut tiers = BTreeMap::new();
    let mut gaps: BTreeMap<String, Option<chrono::Duration>> = BTreeMap::new();
    for (name, source) in &config.sources {
        for (what, value) in [("tenant", &source.tenant)] {
            if !config.tenants.contains_key(value.get_ref()) {
                problem(
                    at(&value.span()),
                    format!(
                        "source '{name}' names {what} '{}', which is not defined",
                        value.get_ref()
                    ),
                );
            }
        }
        let contract = config.contracts.get(source.contract.get_ref());
        match contract {
            None => problem(
                at(&source.contract.span()),
                format!(
                    "source '{name}' names contract '{}', which is not defined under [contracts]",
                    source.contract.get_ref()
                ),
            ),
            Some(c) if c.tenant.get_ref() != source.tenant.get_ref() => problem(
                at(&source.contract.span()),
                format!(
                    "source '{name}' belongs to tenant '{}' but its contract '{}' to tenant '{}'",
                    source.tenant.get_ref(),
                    source.contract.get_ref(),
                    c.tenant.get_ref()
                ),
            ),
            Some(_) => {}
        }
        if source.targets.get_ref().is_empty() {
            problem(
                at(&source.targets.span()),
                format!("source '{name}' has no targets"),
            );
        }
        for t in source.targets.get_ref() {
            if !config.targets.contains_key(t) {
                problem(
                    at(&source.targets.span()),
                    format!(
                        "source '{name}' names target '{t}', which is not defined under [targets]"
                    ),
                );
            }
        }
        if let Some(copy) = &source.copy_to {
            if !config.targets.contains_key(copy.get_ref()) {
                problem(
                    at(&copy.span()),
                    format!(
                        "source '{name}' copies to target '{}', which is not defined",
                        copy.get_ref()
                    ),
                );
            } else if source.targets.get_ref().contains(copy.get_ref()) {
                problem(
                    at(&copy.span()),
                    format!("source '{name}' copies to '{}', which is already one of its targets; a copy must go to a second site", copy.get_ref()),
                );
            }
        }
        let wanted = match source.kind {
            SourceKind::Postgres => Some(("postgres", "postgres://USER@HOST/DATABASE")),
            SourceKind::Mysql => Some(("mysql", "mysql://USER@HOST/DATABASE")),
            SourceKind::Sqlite => Some(("sqlite", "/path/to/the/database.db")),
            SourceKind::Files | SourceKind::Vm => None,
        };
        if let Some((kind, form)) = wanted {
            match &source.database {
                None => problem(
                    at(&source.tier.span()),
                    format!(
                        "source '{name}' is of kind {kind} but names no database \
                         (database = \"{form}\")"
                    ),
                ),
                Some(db) if matches!(source.kind, SourceKind::Sqlite) => {
                    if !Path::new(db.get_ref()).is_absolute() {
                        problem(
                            at(&db.span()),
                            format!(
                                "source '{name}': the SQLite database '{}' must be an absolute path",
                                db.get_ref()
                            ),
                        );
                    }
                }
                Some(db) => {
                    let engine = match source.kind {
                        SourceKind::Mysql => crate::source::connection::Engine::Mysql,
                        _ => crate::source::connection::Engine::Postgres,
                    };
                    if let Err(e) =
                        crate::source::connection::Connection::parse_for(engine, db.get_ref())
                    {
                        problem(at(&db.span()), format!("source '{name}': {e}"));
                    }
                }
            }
        }
        match (&source.kind, &source.vm) {
            (SourceKind::Vm, None) => problem(
                at(&source.tier.span()),
                format!(
                    "source '{name}' is of kind vm but has no [sources.{name}.vm] table \
                     (hypervisor = \"qemu\", \"libvirt\" or \"proxmox\")"
                ),
            ),
            (SourceKind::Vm, Some(v)) => {
                for (offset, message) in vm::problems(name, v) {
                    problem(line_of(offset), message);
                }
            }
            (_, Some(v)) => problem(
                at(&v.hypervisor.span()),
                format!("source '{name}' has a vm table but is not of kind vm"),
            ),
            (_, None) => {}
        }
        if matches!(source.kind, SourceKind::Files) && source.paths.is_empty() {
            problem(
                at(&source.tier.span()),
                format!("source '{name}' is of kind files but lists no paths"),
            );
        }
        match Tier::named(source.tier.get_ref()) {
            Err(e) => problem(at(&source.tier.span()), format!("source '{name}': {e}")),
            Ok(tier) => {
                // The tier must be able to keep the contract's promise on data age.
                if let Some(rpo) = contract.and_then(|c| parse_span(c.rpo.get_ref()).ok()) {
                    // Worked out once per tier (an MSP's thousands of sources share a few).
                    let gap = *gaps
                        .entry(tier.name.clone())
                        .or_insert_with(|| tier.longest_gap(chrono::Utc::now(), 400));
                    if let Some(gap) = gap.filter(|g| *g > rpo) {
                        problem(
                            at(&source.tier.span()),
                            format!(
                                "source '{name}': tier '{}' leaves up to {} between backups, longer than the RPO {} of contract '{}'",
                                tier.name,
                                span(gap),
                                contract.map(|c| c.rpo.get_ref().as_str()).unwrap_or(""),
                                source.contract.get_ref()
                            ),
                        );
                    }
                }
                tiers.insert(name.clone(), tier);
            }
        }
    }
    if problems.is_empty() {
        Ok(Loaded {
            config,
            tiers,
            text: text.to_string(),
        })
    } else {
        problems.sort_by_key(|p| p.line);
        Err(invalid(problems))
    }
}

pub(crate) fn toml_problem(e: &toml::de::Error, line_of: &dyn Fn(usize) -> usize) -> Problem {
    Problem {
        line: e.span().map(|s| line_of(s.start)).unwrap_or(0),
        message: e.message().trim().to_string(),
    }
}

/// The line where `key` (a dotted path such as `sources.erp.tiers`, or `checks.1.expct` for
/// the second `[[checks]]` table) is written: the last component at the start of a line, after
/// the header of its table.
pub(crate) fn line_of_key(text: &str, path: &str) -> usize {
    let parts: Vec<&str> = path.split('.').collect();
    let key = parts.last().copied().unwrap_or(path);
    let mut names = Vec::new();
    let mut index = None;
    for p in &parts[..parts.len().saturating_sub(1)] {
        match p.parse::<usize>() {
            Ok(n) => index = Some(n),
            Err(_) => names.push(*p),
        }
    }
    let table = names.join(".");
    let mut in_table = table.is_empty();
    let mut occurrences = 0usize;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            if header == key && header != table {
                return i + 1; // an unknown table
            }
            in_table = if header == table {
                match index {
                    Some(n) => {
                        occurrences += 1;
                        occurrences == n + 1
                    }
                    None => true,
                }
            } else {
                table.is_empty()
            };
            if parts.len() > 1 && header == path {
                return i + 1;
            }
            continue;
        }
        if in_table {
            if let Some((k, _)) = trimmed.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return i + 1;
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../docs/lifeboat.example.toml");

    fn problems(text: &str) -> Vec<(usize, String)> {
        match parse(Path::new("lifeboat.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| (p.line, p.message))
                .collect(),
        }
    }

    #[test]
    fn the_documented_example_is_valid() {
        let loaded = parse(Path::new("docs/lifeboat.example.toml"), EXAMPLE).unwrap();
        assert_eq!(loaded.config.tenants.len(), 2);
        assert_eq!(loaded.config.sources.len(), 7);
        assert!(matches!(
            loaded.config.sources["bakery-shop-db"].database(),
            Some(crate::source::Database::Mysql(_))
        ));
        assert_eq!(
            loaded.config.sources["bakery-till"].database(),
            Some(crate::source::Database::Sqlite(
                "/srv/bakery/till/till.db".into()
            ))
        );
        assert_eq!(loaded.tiers["acme-erp-db"].name, "90/48");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let broken = EXAMPLE
            .replace(
                "time_zone = \"Europe/Berlin\"",
                "time_zone = \"Europe/Bxrlin\"",
            )
            .replacen("tier = \"90/4\"", "tier = \"90/4\"\ntiers = \"typo\"", 1)
            .replace(
                "targets = [\"nas\"]\ncopy_to",
                "targets = [\"nsa\"]\ncopy_to",
            )
            .replacen("tier = \"30/24\"", "tier = \"30/7\"", 1)
            .replace("rpo = \"1d\"", "rpo = \"soon\"")
            .replace("prune = \"0 30 3 * * *\"", "prune = \"daily\"");
        let found = problems(&broken);
        let has = |line_text: &str, says: &str| {
            let line = broken.lines().position(|l| l.contains(line_text)).unwrap() + 1;
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(says)),
                "no '{says}' at line {line} ({line_text}) in {found:#?}"
            );
        };
        has("Europe/Bxrlin", "not an IANA time zone");
        has("tiers = \"typo\"", "unknown key 'sources.acme-share.tiers'");
        has("targets = [\"nsa\"]", "target 'nsa', which is not defined");
        has("tier = \"30/7\"", "spread evenly");
        has("rpo = \"soon\"", "rpo");
        has("prune = \"daily\"", "prune: cron 'daily' is not valid");
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn contradictions_are_refused() {
        // A tier whose gaps are longer than the contract's RPO.
        let slow = EXAMPLE.replace("rpo = \"30m\"", "rpo = \"20m\"");
        let found = problems(&slow);
        assert!(
            found
                .iter()
                .any(|(_, m)| m.contains("longer than the RPO 20m")),
            "{found:#?}"
        );
        // A copy to a target the source already writes to.
        let same = EXAMPLE.replace("copy_to = \"second-site\"", "copy_to = \"nas\"");
        assert!(problems(&same)
            .iter()
            .any(|(_, m)| m.contains("second site")));
        // A missing tenant and contract.
        let orphan = EXAMPLE.replace("contract = \"bakery-basic\"", "contract = \"bakery-gold\"");
        assert!(problems(&orphan)
            .iter()
            .any(|(_, m)| m.contains("'bakery-gold', which is not defined")));
        // A syntax error names its line.
        let bad = EXAMPLE.replace("[tenants.acme]", "[tenants.acme");
        let found = problems(&bad);
        let line = bad.lines().position(|l| l == "[tenants.acme").unwrap() + 1;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, line, "{found:?}");
        // A postgres source without a database, or with a password in its address.
        let nodb = EXAMPLE.replace(
            "database = \"postgres://backup@erp-db.acme.internal:5432/erp\"\n",
            "",
        );
        assert!(problems(&nodb)
            .iter()
            .any(|(_, m)| m.contains("names no database")));
        let pw = EXAMPLE.replace("postgres://backup@", "postgres://backup:secret@");
        assert!(problems(&pw)
            .iter()
            .any(|(_, m)| m.contains("holds a password")));
        // A mysql source with a postgres address; an SQLite database given as a relative path.
        let swapped = EXAMPLE.replace("mysql://backup@shop-db", "postgres://backup@shop-db");
        assert!(problems(&swapped)
            .iter()
            .any(|(_, m)| m.contains("is not a mysql:// address")));
        let relative = EXAMPLE.replace("\"/srv/bakery/till/till.db\"", "\"till.db\"");
        assert!(problems(&relative)
            .iter()
            .any(|(_, m)| m.contains("must be an absolute path")));
        // A webhook that is not a web address.
        let hook = EXAMPLE.replace(
            "https://alerts.msp.example/hooks/lifeboat",
            "mailto:ops@example.net",
        );
        assert!(problems(&hook)
            .iter()
            .any(|(_, m)| m.contains("is not an http:// or https:// address")));
        // A catalog address holding its password.
        let catalog = EXAMPLE.replace(
            "# catalog = \"postgres://lifeboat@",
            "catalog = \"postgres://lifeboat:pw@",
        );
        assert!(problems(&catalog)
            .iter()
            .any(|(_, m)| m.contains("catalog: the address holds a password")));
        // An unknown target kind.
        let kind = EXAMPLE.replace("kind = \"local\"", "kind = \"tape\"");
        assert!(
            problems(&kind).iter().any(|(_, m)| m.contains("tape")),
            "{:?}",
            problems(&kind)
        );
    }
}
