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
    let mut catalog = Catalog::open(services.data_dir)?;
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

/// `dir` and `sqlite` drills: the snapshot restored into a temporary directory.
fn in_directory(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    kind: EnvironmentKind,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let isolation = match kind {
        EnvironmentKind::Sqlite => "temporary directory; the restored file opened read-only",
        _ => env::dir_isolation(),
    };
    let mut run = EnvRun::new(kind, isolation);
    let dir = match env::scratch_dir(kind.name()) {
        Ok(d) => d,
        Err(e) => {
            run.setup_error = Some(e);
            return run;
        }
    };
    run.event("environment ready", now());
    let root = dir.path().join("restore");
    if restore_and_verify(services, repo, snapshot, &root, &mut run, progress) {
        let sqlite_file = if kind == EnvironmentKind::Sqlite {
            snapshot
                .manifest
                .details
                .get("database")
                .and_then(|p| Path::new(p).file_name())
                .map(|n| root.join(n))
        } else {
            None
        };
        for (name, check) in &drill.checks {
            let limit = drill.spec.time_limit.get_ref();
            let Some(left) = time_left(deadline) else {
                run.checks.push(out_of_time(name, limit));
                continue;
            };
            run.checks.push(match check {
                CheckKind::File(path) => {
                    let there = root.join(path).exists();
                    Check {
                        name: name.clone(),
                        method: "file".into(),
                        expected: format!("{path} exists"),
                        actual: if there { "exists" } else { "missing" }.into(),
                        passed: there,
                    }
                }
                CheckKind::Command(argv) => {
                    let (ok, said) = env::run_command(argv, &root, left);
                    Check {
                        name: name.clone(),
                        method: "command".into(),
                        expected: format!("{} exits 0", argv.join(" ")),
                        actual: said,
                        passed: ok,
                    }
                }
                other => match &sqlite_file {
                    Some(file) => sqlite_check(name, other, file, services, &mut run.measured),
                    None => Check {
                        name: name.clone(),
                        method: "sql".into(),
                        expected: "an SQLite database".into(),
                        actual: "the snapshot names no database file".into(),
                        passed: false,
                    },
                },
            });
        }
        run.event("checks done", now());
    }
    run.teardown(
        dir.close()
            .map_err(|e| format!("removing the scratch directory: {e}")),
        now(),
    );
    run
}

/// `qemu` drills: the snapshot restored, made into a disk, and booted in a throw-away VM.
fn in_vm(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let mut run = EnvRun::new(EnvironmentKind::Qemu, env::Vm::ISOLATION);
    let dir = match env::scratch_dir("qemu") {
        Ok(d) => d,
        Err(e) => {
            run.setup_error = Some(e);
            return run;
        }
    };
    let root = dir.path().join("restore");
    if restore_and_verify(services, repo, snapshot, &root, &mut run, progress) {
        let environment = &drill.spec.environment;
        let disk = match &environment.disk_image {
            // A restored disk image is booted as it is (writes are discarded).
            Some(image) => {
                let path = root.join(image.trim_matches('/'));
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("the restore holds no disk image {image}"))
                }
            }
            None => {
                let disk_root = match &environment.disk_root {
                    Some(sub) => root.join(sub.trim_matches('/')),
                    None => root.clone(),
                };
                let image = dir.path().join("disk.img");
                env::Vm::disk_from(&disk_root, &image).map(|_| image)
            }
        };
        match disk {
            Err(e) => run.setup_error = Some(e),
            Ok(image) => {
                run.event("environment ready", now());
                boot_and_check(services, drill, &image, dir.path(), deadline, &mut run);
            }
        }
    }
    run.teardown(
        dir.close()
            .map_err(|e| format!("removing the scratch directory: {e}")),
        now(),
    );
    run
}

/// Boots the VM once and judges the console checks on what it printed.
fn boot_and_check(
    services: &Services<'_>,
    drill: &Drill,
    image: &Path,
    dir: &Path,
    deadline: Instant,
    run: &mut EnvRun,
) {
    let now = services.now;
    let Some((kernel, initrd)) = &drill.vm_boot else {
        run.setup_error = Some("no kernel and initramfs to boot".into());
        return;
    };
    let qemu = services
        .loaded
        .config
        .service
        .qemu
        .clone()
        .unwrap_or_else(|| "qemu-system-x86_64".into());
    let longest = drill
        .checks
        .iter()
        .filter_map(|(_, c)| match c {
            CheckKind::Console { within, .. } => within.to_std().ok(),
            _ => None,
        })
        .max()
        .unwrap_or(Duration::from_secs(120));
    let limit = time_left(deadline).map_or(Duration::ZERO, |left| left.min(longest));
    let booted = Instant::now();
    let memory = drill.spec.environment.memory_mib.unwrap_or(256);
    let console = dir.join("console.log");
    match env::Vm::boot(&qemu, kernel, initrd, image, memory, limit, &console) {
        Err(e) => run.setup_error = Some(e),
        Ok((output, ended)) => {
            run.event(
                if ended {
                    "VM powered off"
                } else {
                    "VM stopped at its time limit"
                },
                now(),
            );
            let took = booted.elapsed();
            let tail: String = output
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ");
            for (name, check) in &drill.checks {
                if let CheckKind::Console { marker, within } = check {
                    let seen = output.contains(marker.as_str());
                    let in_time = took <= within.to_std().unwrap_or(Duration::MAX) || ended;
                    run.checks.push(Check {
                        name: name.clone(),
                        method: "console".into(),
                        expected: format!(
                            "'{marker}' on the serial console within {}",
                            human(*within)
                        ),
                        actual: if seen {
                            format!("seen; the VM ran {:.1}s", took.as_secs_f64())
                        } else {
                            format!(
                                "not seen in {:.1}s; the console ended with: {tail}",
                                took.as_secs_f64()
                            )
                        },
                        passed: seen && in_time,
                    });
                }
            }
            run.event("checks done", now());
        }
    }
}

fn sql_value(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(0)? {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => hex::encode(b),
    })
}

fn sqlite_check(
    name: &str,
    check: &CheckKind,
    file: &Path,
    services: &Services<'_>,
    measured: &mut Vec<(String, u64)>,
) -> Check {
    let db = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    );
    let query = |sql: &str| -> Result<String, String> {
        let db = db.as_ref().map_err(|e| e.to_string())?;
        db.query_row(sql, [], sql_value).map_err(|e| e.to_string())
    };
    match check {
        CheckKind::IntegrityCheck => {
            let actual = db
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|db| {
                    let mut stmt = db
                        .prepare("PRAGMA integrity_check")
                        .map_err(|e| e.to_string())?;
                    let rows = stmt
                        .query_map([], |r| r.get::<_, String>(0))
                        .map_err(|e| e.to_string())?;
                    rows.collect::<Result<Vec<_>, _>>()
                        .map(|v| v.join("; "))
                        .map_err(|e| e.to_string())
                })
                .unwrap_or_else(|e| format!("error: {e}"));
            Check {
                name: name.into(),
                method: "integrity_check".into(),
                expected: "ok".into(),
                passed: actual == "ok",
                actual,
            }
        }
        other => sql_check(
            name,
            other,
            query(match other {
                CheckKind::Sql { query, .. } | CheckKind::Newest { query, .. } => query,
                _ => "",
            }),
            services,
            measured,
        ),
    }
}

/// Judges the answer to an `sql` check; a `newest_within` check also measures the data age.
fn sql_check(
    name: &str,
    check: &CheckKind,
    answer: Result<String, String>,
    services: &Services<'_>,
    measured: &mut Vec<(String, u64)>,
) -> Check {
    let now = (services.now)();
    let expected = match check {
        CheckKind::Sql { expect, .. } => describe_expect(expect),
        CheckKind::Newest { within, .. } => format!("newest no older than {}", human(*within)),
        _ => String::new(),
    };
    let (passed, actual) = match answer {
        Err(e) => (false, format!("error: {e}")),
        Ok(a) => {
            let a = a.trim();
            match check {
                CheckKind::Sql { expect, .. } => (expect.holds(a), a.to_string()),
                CheckKind::Newest { within, .. } => match parse_time(a) {
                    Some(t) => {
                        let age = now - t;
                        match measured.iter_mut().find(|(k, _)| k == "data_age_ms") {
                            Some((_, v)) => *v = (*v).max(ms(age)),
                            None => measured.push(("data_age_ms".into(), ms(age))),
                        }
                        (age <= *within, format!("{a} (data age {})", human(age)))
                    }
                    None => (false, format!("'{a}' is not a time")),
                },
                _ => (false, a.to_string()),
            }
        }
    };
    Check {
        name: name.into(),
        method: "sql".into(),
        expected,
        actual,
        passed,
    }
}

fn describe_expect(e: &spec::Expect) -> String {
    use spec::Expect::*;
    match e {
        Eq(v) => format!("= {v}"),
        Ge(v) => format!(">= {v}"),
        Le(v) => format!("<= {v}"),
        Gt(v) => format!("> {v}"),
        Lt(v) => format!("< {v}"),
        Between(a, b) => format!("between {a} and {b}"),
        Text(t) => t.clone(),
    }
}

/// A time as a database prints it: Unix seconds, RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f][+TZ]`
/// (taken as UTC without a zone).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return DateTime::from_timestamp_millis((secs * 1000.0) as i64);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    None
}

/// `postgres` and `mariadb` drills: a throw-away server, the dump restored into it.
fn in_server(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    kind: EnvironmentKind,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let isolation = match kind {
        EnvironmentKind::Postgres => env::PostgresScratch::ISOLATION,
        _ => env::MariadbScratch::ISOLATION,
    };
    let mut run = EnvRun::new(kind, isolation);
    let details = &snapshot.manifest.details;
    let database = details.get("database").cloned().unwrap_or_default();
    enum Server {
        Pg(env::PostgresScratch),
        Maria(env::MariadbScratch),
    }
    let server = match kind {
        EnvironmentKind::Postgres => env::PostgresScratch::start().map(Server::Pg),
        _ => env::MariadbScratch::start().map(Server::Maria),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            run.setup_error = Some(e);
            run.environment.teardown = "nothing to tear down".into();
            return run;
        }
    };
    run.event("environment ready", now());
    let conn = match &server {
        Server::Pg(s) => s.connection(&database),
        Server::Maria(s) => s.connection(&database),
    };
    let restored = SnapshotFiles::open(repo, services.key, snapshot).and_then(|files| {
        let mut read = |name: &str, out: &mut dyn std::io::Write| files.write(name, out, progress);
        let total = files.total();
        match kind {
            EnvironmentKind::Postgres => crate::source::postgres::restore(
                &conn,
                &crate::source::postgres::PostgresSource::dump_name(&database),
                1,
                &mut read,
            ),
            _ => crate::source::mariadb::restore(&conn, details, &mut read),
        }
        .map(|_| total)
    });
    match restored {
        Ok(bytes) => {
            run.event("restored", now());
            run.measured.push(("restored_bytes".into(), bytes));
            run.checks.push(Check {
                name: "restored dump matches the snapshot".into(),
                method: "sha256".into(),
                expected: "every chunk's SHA-256 as the snapshot records it".into(),
                actual: format!("{bytes} bytes streamed into the server, every chunk verified"),
                passed: true,
            });
            for (name, check) in &drill.checks {
                if time_left(deadline).is_none() {
                    run.checks
                        .push(out_of_time(name, drill.spec.time_limit.get_ref()));
                    continue;
                }
                let query = match check {
                    CheckKind::Sql { query, .. } | CheckKind::Newest { query, .. } => query,
                    _ => continue,
                };
                let answer = server_query(&conn, kind, query);
                run.checks
                    .push(sql_check(name, check, answer, services, &mut run.measured));
            }
            run.event("checks done", now());
        }
        Err(e) => {
            run.restore_error = Some(e.to_string());
            run.event("restore failed", now());
        }
    }
    let teardown = match server {
        Server::Pg(s) => s.teardown(),
        Server::Maria(s) => s.teardown(),
    };
    run.teardown(teardown, now());
    run
}

/// The first column of the first row `query` returns on the scratch server.
fn server_query(
    conn: &crate::source::connection::Connection,
    kind: EnvironmentKind,
    query: &str,
) -> Result<String, String> {
    use crate::source::tool;
    let cmd = match kind {
        EnvironmentKind::Postgres => {
            let mut c =
                crate::source::postgres::command(conn, "psql").map_err(|e| e.to_string())?;
            c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", query]);
            c
        }
        _ => {
            let mut c =
                crate::source::mariadb::command(conn, crate::source::mariadb::client_tool())
                    .map_err(|e| e.to_string())?;
            c.args(["--batch", "--skip-column-names", "--execute", query]);
            c.arg(format!("--database={}", conn.database));
            c
        }
    };
    let out = tool::output(cmd).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .next()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_databases_print_them() {
        let t = |s| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(t("1795420800"), Some("2026-11-23T08:00:00+00:00".into()));
        assert_eq!(
            t("2026-11-23 09:00:00+01"),
            Some("2026-11-23T08:00:00+00:00".into())
        );
        assert_eq!(
            t("2026-11-23 08:00:00.25"),
            Some("2026-11-23T08:00:00.250+00:00".into())
        );
        assert_eq!(
            t("2026-11-23T08:00:00Z"),
            Some("2026-11-23T08:00:00+00:00".into())
        );
        assert_eq!(t("yesterday"), None);
    }
}
