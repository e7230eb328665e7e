//! Restore-test specs (`restore-tests/*.toml`): which source, which snapshot, which scratch
//! environment, which checks, how long it may take. Invalid specs are refused with every
//! problem and its line, like `lifeboat.toml`.

use crate::config::{line_of_key, toml_problem, Invalid, Loaded, Problem, SourceKind};
use crate::schedule::retention::parse_span;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
pub struct Spec {
    /// What the drill proves, for people.
    pub description: Option<String>,
    /// The source (in `lifeboat.toml`) whose backups are restored.
    pub source: Spanned<String>,
    /// Which of the source's targets to restore from (default: its first).
    pub target: Option<Spanned<String>>,
    /// When the daemon runs the drill: a cron expression (six fields) in the service's time
    /// zone. Without it, the drill runs only when asked.
    pub schedule: Option<Spanned<String>>,
    /// The longest the drill may take, restore and checks together (`30m`, `2h`).
    #[serde(default = "default_time_limit")]
    pub time_limit: Spanned<String>,
    #[serde(default)]
    pub snapshot: Pick,
    pub environment: EnvironmentSpec,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

fn default_time_limit() -> Spanned<String> {
    Spanned::new(0..0, "1h".into())
}

/// How the snapshot is chosen.
#[derive(Debug, Deserialize)]
pub struct Pick {
    #[serde(default = "default_pick")]
    pub pick: Spanned<PickKind>,
    /// For `random`: among the snapshots of this last span (`30d`); default all.
    pub within: Option<Spanned<String>>,
}

impl Default for Pick {
    fn default() -> Self {
        Pick {
            pick: default_pick(),
            within: None,
        }
    }
}

fn default_pick() -> Spanned<PickKind> {
    Spanned::new(0..0, PickKind::Latest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PickKind {
    Latest,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentKind {
    /// A temporary directory.
    Dir,
    /// A throw-away PostgreSQL server.
    Postgres,
    /// A throw-away MariaDB server.
    Mariadb,
    /// The restored SQLite file, opened read-only.
    Sqlite,
    /// A throw-away VM.
    Qemu,
}

impl EnvironmentKind {
    pub fn name(self) -> &'static str {
        match self {
            EnvironmentKind::Dir => "dir",
            EnvironmentKind::Postgres => "postgres",
            EnvironmentKind::Mariadb => "mariadb",
            EnvironmentKind::Sqlite => "sqlite",
            EnvironmentKind::Qemu => "qemu",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EnvironmentSpec {
    pub kind: Spanned<EnvironmentKind>,
    /// qemu: the kernel and initramfs to boot (default: `[service] vm_kernel`, `vm_initrd`).
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// qemu: the VM's memory in MiB (default 256).
    pub memory_mib: Option<u32>,
    /// qemu: the folder of the restore that becomes the root of the VM's disk (default: the
    /// restore's root).
    pub disk_root: Option<String>,
    /// qemu: a disk image in the restore (`vm/app.qcow2`, or raw) to boot as it is, instead of
    /// a disk built from the restored tree.
    pub disk_image: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CheckSpec {
    pub name: Spanned<String>,
    /// A query whose first column of the first row is compared with `expect`, or read as a
    /// time for `newest_within`.
    pub sql: Option<String>,
    /// `= N`, `>= N`, `<= N`, `> N`, `< N`, `between A and B`, or text that must match exactly.
    pub expect: Option<Spanned<String>>,
    /// The query returns the newest time in the data (a timestamp, or Unix seconds); it must
    /// be no older than this at the drill's start. Its age is the data age measured.
    pub newest_within: Option<Spanned<String>>,
    /// `PRAGMA integrity_check` must answer `ok` (sqlite).
    pub integrity_check: Option<bool>,
    /// A command that must exit 0, run in the restored folder (dir).
    pub command: Option<Vec<String>>,
    /// A file that must exist in the restore, relative to its root (dir).
    pub file: Option<String>,
    /// Text the VM must print on its serial console (qemu), within `within` of booting
    /// (default 2m).
    pub console: Option<String>,
    pub within: Option<Spanned<String>>,
}

/// A comparison an `expect` makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Eq(f64),
    Ge(f64),
    Le(f64),
    Gt(f64),
    Lt(f64),
    Between(f64, f64),
    Text(String),
}

impl Expect {
    pub fn parse(text: &str) -> Result<Expect, String> {
        let t = text.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{}' in expect '{text}' is not a number", s.trim()))
        };
        if let Some(rest) = t.strip_prefix("between ") {
            let (a, b) = rest
                .split_once(" and ")
                .ok_or_else(|| format!("expect '{text}': write 'between A and B'"))?;
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("expect '{text}': {a} is above {b}"));
            }
            return Ok(Expect::Between(a, b));
        }
        for (op, make) in [
            (">=", Expect::Ge as fn(f64) -> Expect),
            ("<=", Expect::Le),
            ("==", Expect::Eq),
            (">", Expect::Gt),
            ("<", Expect::Lt),
            ("=", Expect::Eq),
        ] {
            if let Some(rest) = t.strip_prefix(op) {
                return Ok(make(num(rest)?));
            }
        }
        Ok(Expect::Text(t.to_string()))
    }

    /// Whether `actual` meets the expectation; a number is expected where the comparison is
    /// numeric.
    pub fn holds(&self, actual: &str) -> bool {
        let n = actual.trim().parse::<f64>();
        match (self, n) {
            (Expect::Text(t), _) => actual.trim() == t,
            (Expect::Eq(v), Ok(n)) => n == *v,
            (Expect::Ge(v), Ok(n)) => n >= *v,
            (Expect::Le(v), Ok(n)) => n <= *v,
            (Expect::Gt(v), Ok(n)) => n > *v,
            (Expect::Lt(v), Ok(n)) => n < *v,
            (Expect::Between(a, b), Ok(n)) => n >= *a && n <= *b,
            (_, Err(_)) => false,
        }
    }
}

/// What a check does, once validated.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Sql {
        query: String,
        expect: Expect,
    },
    Newest {
        query: String,
        within: chrono::Duration,
    },
    IntegrityCheck,
    Command(Vec<String>),
    File(String),
    Console {
        marker: String,
        within: chrono::Duration,
    },
}

/// A valid spec, with its parts resolved.
#[derive(Debug)]
pub struct Drill {
    /// The spec's file name without `.toml`.
    pub name: String,
    pub path: PathBuf,
    pub spec: Spec,
    pub target: String,
    pub time_limit: chrono::Duration,
    pub within: Option<chrono::Duration>,
    pub schedule: Option<cron::Schedule>,
    pub checks: Vec<(String, CheckKind)>,
    /// qemu: the kernel and initramfs to boot.
    pub vm_boot: Option<(PathBuf, PathBuf)>,
}

pub fn load(path: &Path, loaded: &Loaded) -> Result<Drill, Invalid> {
    let text = std::fs::read_to_string(path).map_err(|e| Invalid {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read it: {e}"),
        }],
    })?;
    parse(path, &text, loaded)
}

/// Validates a spec's text against the configuration; `path` names it in messages.
pub fn parse(path: &Path, text: &str, loaded: &Loaded) -> Result<Drill, Invalid> {
    let invalid = |problems: Vec<Problem>| Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let de =
        toml::Deserializer::parse(text).map_err(|e| invalid(vec![toml_problem(&e, &line_of)]))?;
    let mut unknown = Vec::new();
    let spec: Spec = serde_ignored::deserialize(de, |key| unknown.push(key.to_string()))
        .map_err(|e| invalid(vec![toml_problem(&e, &line_of)]))?;
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|key| Problem {
            line: line_of_key(text, key),
            message: format!("unknown key '{key}'"),
        })
        .collect();
    let at = |s: std::ops::Range<usize>| line_of(s.start);
    let mut problem = |line: usize, message: String| problems.push(Problem { line, message });

    let config = &loaded.config;
    let source = config.sources.get(spec.source.get_ref());
    let env = *spec.environment.kind.get_ref();
    let mut target = String::new();
    match source {
        None => problem(
            at(spec.source.span()),
            format!(
                "source '{}' is not defined in the configuration",
                spec.source.get_ref()
            ),
        ),
        Some(s) => {
            let targets = s.targets.get_ref();
            match &spec.target {
                Some(t) if !targets.contains(t.get_ref()) => problem(
                    at(t.span()),
                    format!(
                        "source '{}' is not backed up to target '{}' (its targets: {})",
                        spec.source.get_ref(),
                        t.get_ref(),
                        targets.join(", ")
                    ),
                ),
                Some(t) => target = t.get_ref().clone(),
                None => target = targets.first().cloned().unwrap_or_default(),
            }
            let fits = match env {
                EnvironmentKind::Dir => true,
                EnvironmentKind::Postgres => matches!(s.kind, SourceKind::Postgres),
                EnvironmentKind::Mariadb => matches!(s.kind, SourceKind::Mysql),
                EnvironmentKind::Sqlite => matches!(s.kind, SourceKind::Sqlite),
                EnvironmentKind::Qemu => matches!(s.kind, SourceKind::Vm | SourceKind::Files),
            };
            if !fits {
                problem(
                    at(spec.environment.kind.span()),
                    format!(
                        "a {} environment cannot hold a backup of source '{}' (kind {:?})",
                        env.name(),
                        spec.source.get_ref(),
                        s.kind
                    ),
                );
            }
        }
    }
    let service = &config.service;
    let vm_boot = match (
        spec.environment
            .kernel
            .clone()
            .or_else(|| service.vm_kernel.clone()),
        spec.environment
            .initrd
            .clone()
            .or_else(|| service.vm_initrd.clone()),
    ) {
        (Some(k), Some(i)) => Some((k, i)),
        _ => None,
    };
    if spec.environment.disk_image.is_some() && spec.environment.disk_root.is_some() {
        problem(
            at(spec.environment.kind.span()),
            "give disk_image (an image to boot as it is) or disk_root (a folder to make a disk \
             of), not both"
                .into(),
        );
    }
    if env != EnvironmentKind::Qemu
        && (spec.environment.disk_image.is_some()
            || spec.environment.disk_root.is_some()
            || spec.environment.kernel.is_some()
            || spec.environment.initrd.is_some()
            || spec.environment.memory_mib.is_some())
    {
        problem(
            at(spec.environment.kind.span()),
            format!(
                "kernel, initrd, memory_mib, disk_root and disk_image are for qemu \
                 environments, not {}",
                env.name()
            ),
        );
    }
    if env == EnvironmentKind::Qemu && vm_boot.is_none() {
        problem(
            at(spec.environment.kind.span()),
            "a qemu environment needs a kernel and an initramfs to boot: [environment] kernel \
             and initrd, or [service] vm_kernel and vm_initrd"
                .into(),
        );
    }
    let time_limit = match parse_span(spec.time_limit.get_ref()) {
        Ok(d) if d > chrono::Duration::zero() => d,
        Ok(_) | Err(_) => {
            problem(
                at(spec.time_limit.span()),
                format!(
                    "time_limit '{}' is not a duration such as 30m or 2h",
                    spec.time_limit.get_ref()
                ),
            );
            chrono::Duration::hours(1)
        }
    };
    let within = spec.snapshot.within.as_ref().and_then(|w| {
        if *spec.snapshot.pick.get_ref() != PickKind::Random {
            problem(
                at(w.span()),
                "within applies to pick = \"random\" only".into(),
            );
        }
        match parse_span(w.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                problem(at(w.span()), format!("within: {e}"));
                None
            }
        }
    });
    let schedule =
        spec.schedule
            .as_ref()
            .and_then(|c| match c.get_ref().parse::<cron::Schedule>() {
                Ok(s) => Some(s),
                Err(e) => {
                    problem(
                        at(c.span()),
                        format!(
                        "schedule: cron '{}' is not valid ({e}); write six fields: second minute \
                         hour day-of-month month day-of-week, e.g. '0 0 6 * * Mon'",
                        c.get_ref()
                    ),
                    );
                    None
                }
            });
    let mut checks = Vec::new();
    for check in &spec.checks {
        let line = at(check.name.span());
        let name = check.name.get_ref().clone();
        let given = [
            check.sql.is_some(),
            check.integrity_check.is_some(),
            check.command.is_some(),
            check.file.is_some(),
            check.console.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            problem(
                line,
                format!(
                    "check '{name}' must have exactly one of sql, integrity_check, command, file, console"
                ),
            );
            continue;
        }
        let needs =
            |kinds: &[EnvironmentKind], what: &str, problem: &mut dyn FnMut(usize, String)| {
                if !kinds.contains(&env) {
                    problem(
                        line,
                        format!(
                            "check '{name}': {what} checks need a {} environment, not {}",
                            kinds
                                .iter()
                                .map(|k| k.name())
                                .collect::<Vec<_>>()
                                .join(" or "),
                            env.name()
                        ),
                    );
                }
            };
        if let Some(query) = &check.sql {
            needs(
                &[
                    EnvironmentKind::Postgres,
                    EnvironmentKind::Mariadb,
                    EnvironmentKind::Sqlite,
                ],
                "sql",
                &mut problem,
            );
            match (&check.expect, &check.newest_within) {
                (Some(e), None) => match Expect::parse(e.get_ref()) {
                    Ok(expect) => checks.push((
                        name,
                        CheckKind::Sql {
                            query: query.clone(),
                            expect,
                        },
                    )),
                    Err(why) => problem(at(e.span()), format!("check '{name}': {why}")),
                },
                (None, Some(w)) => match parse_span(w.get_ref()) {
                    Ok(within) => checks.push((
                        name,
                        CheckKind::Newest {
                            query: query.clone(),
                            within,
                        },
                    )),
                    Err(why) => problem(
                        at(w.span()),
                        format!("check '{name}': newest_within: {why}"),
                    ),
                },
                _ => problem(
                    line,
                    format!(
                        "check '{name}': an sql check needs expect or newest_within (one of them)"
                    ),
                ),
            }
        } else if let Some(flag) = check.integrity_check {
            needs(&[EnvironmentKind::Sqlite], "integrity_check", &mut problem);
            if flag {
                checks.push((name, CheckKind::IntegrityCheck));
            }
        } else if let Some(command) = &check.command {
            needs(&[EnvironmentKind::Dir], "command", &mut problem);
            if command.is_empty() {
                problem(line, format!("check '{name}': the command is empty"));
            } else {
                checks.push((name, CheckKind::Command(command.clone())));
            }
        } else if let Some(file) = &check.file {
            needs(&[EnvironmentKind::Dir], "file", &mut problem);
            checks.push((name, CheckKind::File(file.trim_matches('/').to_string())));
        } else if let Some(marker) = &check.console {
            needs(&[EnvironmentKind::Qemu], "console", &mut problem);
            let within = match &check.within {
                Some(w) => parse_span(w.get_ref()).unwrap_or_else(|e| {
                    problem(at(w.span()), format!("check '{name}': within: {e}"));
                    chrono::Duration::minutes(2)
                }),
                None => chrono::Duration::minutes(2),
            };
            checks.push((
                name,
                CheckKind::Console {
                    marker: marker.clone(),
                    within,
                },
            ));
        }
        if check.sql.is_none() && (check.expect.is_some() || check.newest_within.is_some()) {
            problem(
                line,
                format!(
                    "check '{}': expect and newest_within go with sql",
                    check.name.get_ref()
                ),
            );
        }
    }
    problems.sort_by_key(|p| p.line);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Drill {
        name,
        path: path.to_path_buf(),
        target,
        time_limit,
        within,
        schedule,
        checks,
        vm_boot,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert_eq!(Expect::parse(">= 1000").unwrap(), Expect::Ge(1000.0));
        assert!(Expect::parse(">= 1000").unwrap().holds("20000"));
        assert!(!Expect::parse(">= 1000").unwrap().holds("999"));
        assert!(!Expect::parse(">= 1000").unwrap().holds("many"));
        assert!(Expect::parse("= 3").unwrap().holds(" 3\n"));
        assert!(Expect::parse("between 1 and 5").unwrap().holds("5"));
        assert!(!Expect::parse("between 1 and 5").unwrap().holds("5.5"));
        assert!(Expect::parse("between 5 and 1").is_err());
        assert!(Expect::parse(">= lots").is_err());
        assert!(Expect::parse("ok").unwrap().holds("ok"));
        assert!(!Expect::parse("ok").unwrap().holds("not ok"));
    }
}
