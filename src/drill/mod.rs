//! Restore drills: pick a snapshot of a source, restore it into a scratch environment, check
//! that what came back works, measure how long it took and how old the data was, tear the
//! environment down, and write it all down as evidence.
//!
//! The snapshot is picked (and the pick recorded in the catalog) before anything is restored.
//! Every drill that gets as far as a valid spec and configuration leaves an evidence record,
//! failed or not; a failed drill carries an incident with its severity:
//! - `critical`: the backup could not be restored (no snapshot, unreadable, restore failed);
//! - `high`: it was restored but a check failed, or the environment could not be set up;
//! - `medium`: everything worked but slower or older than the contract allows;
//! - `low`: only the teardown failed (the outcome stays as the checks made it).

pub mod env;
mod environments;
pub mod quota;
pub mod requests;
pub mod spec;

use crate::catalog::drills::NewDrill;
use crate::catalog::evidence::StoredEvidence;
use crate::catalog::Catalog;
use crate::config::Loaded;
use crate::evidence::record::{time, SnapshotRef};
use crate::evidence::{chain, Check, Environment, Event, Incident, Outcome, Record, RecordKind};
use crate::progress::Progress;
use crate::repo::crypto::SecretKey;
use crate::repo::restore::{self, RestoreOptions, SnapshotFiles};
use crate::repo::snapshot::Snapshot;
use crate::repo::Repository;
use chrono::{DateTime, Utc};
use spec::{CheckKind, Drill, EnvironmentKind, PickKind};
use std::path::Path;
use std::time::{Duration, Instant};

pub use environments::parse_time;

/// The job key of a drill spec's runs: `SPEC>drill`.
pub const JOB_SUFFIX: &str = ">drill";
use environments::{in_directory, in_server, in_vm};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::Error),
    #[error(transparent)]
    Evidence(#[from] crate::evidence::chain::Error),
}

/// What a drill needs from the service.
pub struct Services<'a> {
    pub loaded: &'a Loaded,
    pub data_dir: &'a Path,
    /// The service key: signs the evidence; its certificate authenticates the repository.
    pub signing: &'a SecretKey,
    /// A recipient's secret key, to decrypt what is restored.
    pub key: &'a SecretKey,
    /// The clock (injected by tests and simulations).
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Sync),
}

impl Services<'_> {
    fn webhook(&self) -> Option<&str> {
        self.loaded.config.service.webhook()
    }
}

/// How a drill came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Scheduled,
    Requested,
    Manual,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Scheduled => "scheduled",
            Reason::Requested => "requested",
            Reason::Manual => "manual",
        }
    }
}

pub struct DrillOutcome {
    pub id: i64,
    pub record: Record,
    pub evidence: StoredEvidence,
    /// What went wrong after the evidence was written: not yet copied into the repository
    /// (the next record written catches up), or the incident webhook unreachable.
    pub problems: Vec<String>,
}

/// What an environment run produced.
struct EnvRun {
    environment: Environment,
    events: Vec<Event>,
    checks: Vec<Check>,
    /// Why the backup could not be restored, if it could not.
    restore_error: Option<String>,
    /// Why the environment could not be set up, if it could not.
    setup_error: Option<String>,
    teardown_ok: bool,
    measured: Vec<(String, u64)>,
}

impl EnvRun {
    fn new(kind: EnvironmentKind, isolation: &str) -> EnvRun {
        EnvRun {
            environment: Environment {
                kind: kind.name().into(),
                isolation: isolation.into(),
                teardown: "not started".into(),
            },
            events: Vec::new(),
            checks: Vec::new(),
            restore_error: None,
            setup_error: None,
            teardown_ok: true,
            measured: Vec::new(),
        }
    }

    fn event(&mut self, what: &str, now: DateTime<Utc>) {
        self.events.push(Event {
            event: what.into(),
            time: time(now),
        });
    }

    fn teardown(&mut self, result: Result<(), String>, now: DateTime<Utc>) {
        match result {
            Ok(()) => {
                self.environment.teardown = "done".into();
                self.event("torn down", now);
            }
            Err(e) => {
                self.environment.teardown = format!("failed: {e}");
                self.teardown_ok = false;
                self.event("teardown failed", now);
            }
        }
    }
}

fn ms(d: chrono::Duration) -> u64 {
    u64::try_from(d.num_milliseconds()).unwrap_or(0)
}

fn human(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{:.1}m", ms as f64 / 60_000.0)
    } else if ms < 172_800_000 {
        format!("{:.1}h", ms as f64 / 3_600_000.0)
    } else {
        format!("{:.1}d", ms as f64 / 86_400_000.0)
    }
}

/// Picks the snapshot of `source` to restore: the newest, or one at random among those of the
/// `within` span. Returns it with a description of the pick.
pub fn pick(
    snapshots: &[Snapshot],
    source: &str,
    kind: PickKind,
    within: Option<chrono::Duration>,
    now: DateTime<Utc>,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<(Snapshot, String), String> {
    let mut mine: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| s.manifest.tags.get("source").map(String::as_str) == Some(source))
        .filter(|s| s.manifest.time <= now)
        .collect();
    mine.sort_by_key(|s| s.manifest.time);
    match kind {
        PickKind::Latest => mine
            .last()
            .map(|s| ((*s).clone(), "latest".to_string()))
            .ok_or_else(|| format!("source '{source}' has no snapshot to restore")),
        PickKind::Random => {
            let window: Vec<&Snapshot> = match within {
                Some(w) => mine
                    .into_iter()
                    .filter(|s| s.manifest.time >= now - w)
                    .collect(),
                None => mine,
            };
            if window.is_empty() {
                return Err(format!(
                    "source '{source}' has no snapshot to restore{}",
                    within
                        .map(|w| format!(" from the last {}", human(w)))
                        .unwrap_or_default()
                ));
            }
            let i = random(window.len()) % window.len();
            Ok((
                window[i].clone(),
                format!(
                    "random: {} of {} snapshots{}",
                    i + 1,
                    window.len(),
                    within
                        .map(|w| format!(" from the last {}", human(w)))
                        .unwrap_or_default()
                ),
            ))
        }
    }
}

/// Runs a drill and writes its evidence. `planned` is the catalog id of a planned drill this
/// run carries out; without it the drill is recorded as started by hand.
pub fn run(
    services: &Services<'_>,
    drill: &Drill,
    reason: Reason,
    planned: Option<i64>,
    progress: &dyn Progress,
) -> Result<DrillOutcome, Error> {
    let now = services.now;
    let started = now();
    let clock_start = Instant::now();
    let deadline = clock_start
        + drill
            .time_limit
            .to_std()
            .unwrap_or(Duration::from_secs(3600));
    let config = &services.loaded.config;
    let source_name = drill.spec.source.get_ref();
    let source = &config.sources[source_name];
    let tenant = source.tenant.get_ref();
    let contract_name = source.contract.get_ref();
    let contract = config.contracts.get(contract_name);
    let mut catalog =
        crate::catalog::Place::of(services.data_dir, &services.loaded.config).open()?;
    let id = match planned {
        Some(id) => id,
        None => catalog.plan_drill(&NewDrill {
            spec: &drill.name,
            tenant,
            contract: contract_name,
            source: source_name,
            reason: reason.name(),
            planned_for: started,
            requested_by: None,
        })?,
    };

    let mut record = Record::new(RecordKind::Drill, tenant, started);
    record.contract = Some(contract_name.clone());
    record.source = Some(source_name.clone());
    record.tier = Some(source.tier.get_ref().clone());
    record.drill = Some(drill.name.clone());
    let rpo = contract.and_then(|c| c.rpo());
    let rto = contract.and_then(|c| c.rto());
    record.objectives.rpo_ms = rpo.map(ms);
    record.objectives.rto_ms = rto.map(ms);
    record.timeline.push(Event {
        event: "started".into(),
        time: time(started),
    });

    // The snapshot, picked and recorded before anything is restored.
    let picked = open_and_pick(services, drill, source_name, started);
    let (repo, snapshot, backups) = match picked {
        Ok((repo, snapshot, how, backups)) => {
            catalog.start_drill(id, &snapshot.id.to_hex(), &how, now())?;
            record.snapshot = Some(SnapshotRef {
                id: snapshot.id.to_hex(),
                time: time(snapshot.manifest.time),
            });
            record.pick = Some(how);
            record.timeline.push(Event {
                event: "snapshot picked".into(),
                time: time(now()),
            });
            (repo, snapshot, backups)
        }
        Err(why) => {
            record.outcome = Outcome::Failure;
            record.incident = Some(Incident {
                severity: "critical".into(),
                summary: format!("{source_name} cannot be restored: {why}"),
            });
            record.error = Some(why);
            return finish(services, &mut catalog, id, record, None);
        }
    };

    let kind = *drill.spec.environment.kind.get_ref();
    let mut env = match kind {
        EnvironmentKind::Dir | EnvironmentKind::Sqlite => {
            in_directory(services, drill, &repo, &snapshot, kind, deadline, progress)
        }
        EnvironmentKind::Postgres | EnvironmentKind::Mariadb => {
            in_server(services, drill, &repo, &snapshot, kind, deadline, progress)
        }
        EnvironmentKind::Qemu => in_vm(services, drill, &repo, &snapshot, deadline, progress),
    };
    record.timeline.append(&mut env.events);
    record.environment = Some(env.environment.clone());
    record.checks = std::mem::take(&mut env.checks);
    record.measured.extend(env.measured.iter().cloned());

    // Measured against the contract.
    let checks_done = record
        .timeline
        .iter()
        .rev()
        .find(|e| e.event == "checks done")
        .and_then(|e| DateTime::parse_from_rfc3339(&e.time).ok())
        .map(|t| t.with_timezone(&Utc));
    let restored = env.restore_error.is_none() && env.setup_error.is_none();
    if let Some(done) = checks_done.filter(|_| restored) {
        let took = done - started;
        record.measured.insert("rto_ms".into(), ms(took));
        record.checks.push(Check {
            name: "within the time limit".into(),
            method: "timeline".into(),
            expected: format!("<= {}", drill.spec.time_limit.get_ref()),
            actual: human(took),
            passed: took <= drill.time_limit,
        });
        if let Some(rto) = rto {
            record.checks.push(Check {
                name: "RTO".into(),
                method: "objective".into(),
                expected: format!("<= {}", human(rto)),
                actual: human(took),
                passed: took <= rto,
            });
        }
    }
    let age = started - snapshot.manifest.time;
    record.measured.insert("rpo_ms".into(), ms(age));
    if let (Some(rpo), PickKind::Latest) = (rpo, drill.spec.snapshot.pick.get_ref()) {
        record.checks.push(Check {
            name: "RPO".into(),
            method: "objective".into(),
            expected: format!("<= {} (age of the newest snapshot)", human(rpo)),
            actual: human(age),
            passed: age <= rpo,
        });
    }

    // The recovery point held over the last days: the longest gap between backups.
    if let Some(gap) = crate::schedule::rpo::longest_gap(&backups, started - RPO_WINDOW, started) {
        record
            .measured
            .insert("longest_gap_ms".into(), ms(gap.length()));
        if let Some(rpo) = rpo {
            record.checks.push(Check {
                name: format!(
                    "RPO over the last {}",
                    crate::schedule::retention::span(RPO_WINDOW)
                ),
                method: "objective".into(),
                expected: format!("<= {} between successful backups", human(rpo)),
                actual: format!(
                    "longest gap {} ({} to {})",
                    human(gap.length()),
                    time(gap.from),
                    time(gap.to)
                ),
                passed: gap.length() <= rpo,
            });
        }
    }

    // Outcome and incident.
    let failed: Vec<&Check> = record.checks.iter().filter(|c| !c.passed).collect();
    let objectives_only = failed.iter().all(|c| c.method == "objective");
    let (severity, summary) = if let Some(e) = &env.restore_error {
        (
            "critical",
            format!("{source_name} could not be restored: {e}"),
        )
    } else if let Some(e) = &env.setup_error {
        (
            "high",
            format!("the {} environment could not be set up: {e}", kind.name()),
        )
    } else if !failed.is_empty() && !objectives_only {
        (
            "high",
            format!(
                "{source_name} was restored but failed: {}",
                failed
                    .iter()
                    .map(|c| format!("{} (expected {}, got {})", c.name, c.expected, c.actual))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    } else if !failed.is_empty() {
        (
            "medium",
            format!(
                "{source_name} was restored, but missed: {}",
                failed
                    .iter()
                    .map(|c| format!("{} (expected {}, got {})", c.name, c.expected, c.actual))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    } else if !env.teardown_ok {
        (
            "low",
            format!(
                "the scratch environment was not torn down: {}",
                env.environment.teardown
            ),
        )
    } else {
        ("", String::new())
    };
    let failure = env.restore_error.is_some() || env.setup_error.is_some() || !failed.is_empty();
    if failure {
        record.outcome = Outcome::Failure;
        record.error = Some(summary.clone());
    }
    if !severity.is_empty() {
        record.incident = Some(Incident {
            severity: severity.into(),
            summary,
        });
    }
    finish(services, &mut catalog, id, record, Some(&repo))
}

fn finish(
    services: &Services<'_>,
    catalog: &mut Catalog,
    id: i64,
    record: Record,
    repo: Option<&Repository>,
) -> Result<DrillOutcome, Error> {
    let outcome = match record.outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    };
    let tenant = record.tenant.clone();
    // The customer reads the record: what failed, not where the MSP keeps things.
    let mut public = record.clone();
    crate::evidence::redact::record(&mut public, &services.loaded.config.confidential());
    let evidence = chain::append(catalog, services.signing, public)?;
    catalog.finish_drill(id, outcome, Some(evidence.sequence), (services.now)())?;
    let mut problems = Vec::new();
    if let Some(Err(e)) = repo.map(|r| chain::copy_to(catalog, r.backend().as_ref(), Some(&tenant)))
    {
        problems.push(format!(
            "the evidence is not yet copied into the repository: {e}"
        ));
    }
    let record = Record::parse(&evidence.record).unwrap_or(record);
    if let Some(url) = services.webhook() {
        if let Err(e) = crate::evidence::incident::notify(url, &record, &evidence) {
            problems.push(e);
        }
    }
    Ok(DrillOutcome {
        id,
        record,
        evidence,
        problems,
    })
}

/// How far back a drill looks for the longest gap between backups.
pub const RPO_WINDOW: chrono::Duration = chrono::Duration::days(30);

/// Opens the repository the drill restores from and picks the snapshot; also returns the
/// times of all the source's snapshots there.
#[allow(clippy::type_complexity)]
fn open_and_pick(
    services: &Services<'_>,
    drill: &Drill,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(Repository, Snapshot, String, Vec<DateTime<Utc>>), String> {
    let target = &services.loaded.config.targets[&drill.target];
    let tenant = services
        .loaded
        .config
        .sources
        .get(source)
        .map(|s| s.tenant.get_ref().clone())
        .unwrap_or_default();
    let backend = target
        .open_existing(&tenant)
        .map_err(|e| format!("target '{}': {e}", drill.target))?
        .ok_or_else(|| {
            format!(
                "target '{}' holds no repository of tenant '{tenant}' yet",
                drill.target
            )
        })?;
    let repo = Repository::open(backend, services.signing.public())
        .map_err(|e| format!("target '{}': {e}", drill.target))?;
    let (snapshots, _) = repo
        .snapshots()
        .map_err(|e| format!("listing snapshots: {e}"))?;
    let (snapshot, how) = pick(
        &snapshots,
        source,
        *drill.spec.snapshot.pick.get_ref(),
        drill.within,
        now,
        &mut |n| rand::Rng::gen_range(&mut rand::thread_rng(), 0..n),
    )?;
    let backups = snapshots
        .iter()
        .filter(|s| s.manifest.tags.get("source").map(String::as_str) == Some(source))
        .map(|s| s.manifest.time)
        .collect();
    Ok((repo, snapshot, how, backups))
}

fn time_left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now())
}

fn out_of_time(name: &str, limit: &str) -> Check {
    Check {
        name: name.into(),
        method: "timeline".into(),
        expected: format!("run within the time limit of {limit}"),
        actual: "the time limit was reached before this check".into(),
        passed: false,
    }
}

/// Restores the snapshot into `root`, then reads every file back and checks it against the
/// snapshot. Records the restore and the check in `run`; says whether the restore worked.
fn restore_and_verify(
    services: &Services<'_>,
    repo: &Repository,
    snapshot: &Snapshot,
    root: &Path,
    run: &mut EnvRun,
    progress: &dyn Progress,
) -> bool {
    let now = services.now;
    let restored = SnapshotFiles::open(repo, services.key, snapshot).and_then(|files| {
        restore::restore(
            repo,
            services.key,
            snapshot,
            &RestoreOptions {
                target: root.to_path_buf(),
                includes: Vec::new(),
                threads: 0,
            },
            progress,
        )
        .map(|outcome| (files, outcome))
    });
    let (files, outcome) = match restored {
        Ok(r) => r,
        Err(e) => {
            run.restore_error = Some(e.to_string());
            run.event("restore failed", now());
            return false;
        }
    };
    run.event("restored", now());
    run.measured.push(("restored_files".into(), outcome.files));
    run.measured.push(("restored_bytes".into(), outcome.bytes));
    let disk = files.verify_on_disk(root);
    run.checks.push(Check {
        name: "restored files match the snapshot".into(),
        method: "sha256".into(),
        expected: format!(
            "{} file(s), {} bytes, every chunk's SHA-256 as the snapshot records it",
            outcome.files, outcome.bytes
        ),
        actual: if disk.mismatches.is_empty() {
            format!("{} file(s), {} bytes match", disk.files, disk.bytes)
        } else {
            format!(
                "{} of {} file(s) differ: {}",
                disk.mismatches.len(),
                outcome.files,
                disk.mismatches.join("; ")
            )
        },
        passed: disk.mismatches.is_empty(),
    });
    true
}
