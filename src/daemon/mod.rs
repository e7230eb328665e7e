//! `lifeboat serve`: the daemon that keeps the tiers' promises.
//!
//! A loop plans due slots into the job queue in the catalog (one catch-up per source after
//! downtime), and up to `workers` jobs run at once, each after a random jitter. A job backs
//! up its source to each of its targets (creating the repository on first use), then applies
//! the tier's retention to that source's snapshots. Each target is pruned on the service's
//! prune schedule, beside running backups (prune is two-phase). SIGTERM or Ctrl-C stops planning and
//! claiming; running jobs finish before the daemon exits. Jobs cut off by a crash are found at
//! the next start and run again. One daemon per data directory.
//!
//! Time comes from a `Clock`, so tests can run days of schedule in seconds.

use crate::catalog::{self, Catalog};
use crate::config::{Loaded, SourceKind, Target};
use crate::repo::backup::{self, BackupOptions};
use crate::repo::crypto::{PublicCert, SecretKey};
use crate::repo::Repository;
use crate::schedule::due;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Where the daemon's "now" comes from: the real clock, or a fake one that starts at a given
/// instant and runs `speed` times faster (tests, simulations).
///
/// A fake clock stands still at its start until it is first read, and every copy shares that
/// moment: however long start-up takes (keys, catalog, a loaded machine), the daemon plans
/// from exactly the instant it was given.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: ClockKind,
}

#[derive(Debug, Clone)]
enum ClockKind {
    Real,
    Fake {
        anchor: Arc<std::sync::OnceLock<Instant>>,
        start: DateTime<Utc>,
        speed: f64,
    },
}

impl Clock {
    pub fn real() -> Clock {
        Clock {
            kind: ClockKind::Real,
        }
    }

    pub fn fake(start: DateTime<Utc>, speed: f64) -> Clock {
        Clock {
            kind: ClockKind::Fake {
                anchor: Arc::new(std::sync::OnceLock::new()),
                start,
                speed: speed.max(f64::MIN_POSITIVE),
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.kind {
            ClockKind::Real => Utc::now(),
            ClockKind::Fake {
                anchor,
                start,
                speed,
            } => {
                let elapsed = anchor.get_or_init(Instant::now).elapsed().as_secs_f64() * speed;
                *start + chrono::Duration::microseconds((elapsed * 1e6) as i64)
            }
        }
    }

    fn speed(&self) -> f64 {
        match &self.kind {
            ClockKind::Real => 1.0,
            ClockKind::Fake { speed, .. } => *speed,
        }
    }

    /// How long `d` of this clock's time lasts in real time.
    pub fn real_time(&self, d: chrono::Duration) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            (d.num_milliseconds().max(0) as f64 / 1000.0) / self.speed(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("another lifeboat daemon is running with data directory {0}; stop it first")]
    AlreadyRunning(PathBuf),
    #[error("{0}")]
    Setup(String),
    #[error("catalog: {0}")]
    Catalog(#[from] catalog::Error),
}

/// What every job needs, shared between the loop and the workers.
struct Shared {
    loaded: Loaded,
    /// Drill specs by name, and the key drills decrypt with.
    drills: BTreeMap<String, crate::drill::spec::Drill>,
    drill_key: Option<SecretKey>,
    /// What runs when: each source's backups under its name, and the daily copy of a source
    /// with `copy_to` under `SOURCE>copy` (tier `14/1`).
    schedules: BTreeMap<String, crate::schedule::tier::Tier>,
    /// One job at a time per target: jobs for the same target wait their turn (creating a
    /// repository and writing to it are not for two at once).
    targets: BTreeMap<String, std::sync::Mutex<()>>,
    data_dir: PathBuf,
    clock: Clock,
    signing: SecretKey,
    recipients: Vec<PublicCert>,
}

mod cold;
pub use cold::cold_backup_now;

/// Proof that this process is the one daemon of a data directory; held while it runs.
pub struct DaemonLock(#[allow(dead_code)] std::fs::File);

/// Takes the data directory's daemon lock, or says that another daemon holds it.
pub fn lock(data_dir: &std::path::Path) -> Result<DaemonLock, Error> {
    catalog::lock_file(data_dir, std::path::Path::new("daemon.lock"))
        .map_err(|e| Error::Setup(format!("cannot lock {}: {e}", data_dir.display())))?
        .map(DaemonLock)
        .ok_or_else(|| Error::AlreadyRunning(data_dir.to_path_buf()))
}

impl Shared {
    /// Loads the keys, resolves the schedules (sources, copies, prunes, drills).
    fn new(
        loaded: Loaded,
        drills: Vec<crate::drill::spec::Drill>,
        data_dir: PathBuf,
        clock: Clock,
    ) -> Result<Shared, Error> {
        let service = &loaded.config.service;
        let signing = SecretKey::load(&service.signing_key)
            .map_err(|e| Error::Setup(format!("signing key: {e}")))?;
        let recipients = service
            .recipients
            .iter()
            .map(|p| PublicCert::load(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Setup(format!("recipient: {e}")))?;
        let drill_key = service
            .drill_key
            .as_ref()
            .map(|p| SecretKey::load(p))
            .transpose()
            .map_err(|e| Error::Setup(format!("drill key: {e}")))?;
        let mut schedules = schedules(&loaded).map_err(Error::Setup)?;
        for d in &drills {
            if let Some(cron) = &d.spec.schedule {
                let tier = crate::schedule::tier::Tier::drill(&d.name, cron.get_ref())
                    .map_err(Error::Setup)?;
                schedules.insert(format!("{}{DRILL_SUFFIX}", d.name), tier);
            }
        }
        let targets = loaded
            .config
            .targets
            .keys()
            .map(|name| (name.clone(), std::sync::Mutex::new(())))
            .collect();
        Ok(Shared {
            drills: drills.into_iter().map(|d| (d.name.clone(), d)).collect(),
            drill_key,
            schedules,
            targets,
            loaded,
            data_dir,
            clock,
            signing,
            recipients,
        })
    }
}

/// Runs until `shutdown` completes, then gives running jobs `stop_timeout` to finish;
/// returns how many jobs finished. Jobs still running then are left to the next start,
/// which runs them again.
pub async fn serve(
    _lock: DaemonLock,
    loaded: Loaded,
    drills: Vec<crate::drill::spec::Drill>,
    data_dir: PathBuf,
    clock: Clock,
    shutdown: impl std::future::Future<Output = ()>,
    stop_timeout: std::time::Duration,
) -> Result<u64, Error> {
    let tz = loaded.config.service.time_zone();
    let workers = loaded.config.service.workers.max(1);
    let mut catalog = Catalog::open(&data_dir)?;
    let now = clock.now();
    for job in catalog.recover(now)? {
        log(
            &clock,
            &format!(
                "job {} ({} slot {}) was cut off by a stop; queued again (attempt {} of {})",
                job.id,
                job.source,
                job.scheduled,
                job.attempts,
                catalog::jobs::MAX_ATTEMPTS
            ),
        );
    }
    let shared = Arc::new(Shared::new(loaded, drills, data_dir, clock)?);
    for key in shared.schedules.keys() {
        catalog.plan_from(key, now)?;
    }
    log(
        &shared.clock,
        &format!(
            "serving {} schedule(s) in {tz} with {workers} worker(s)",
            shared.schedules.len()
        ),
    );
    let mut running: tokio::task::JoinSet<(i64, bool, Result<String, String>)> =
        tokio::task::JoinSet::new();
    let mut finished = 0u64;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let now = shared.clock.now();
        let last = catalog.planned()?;
        for d in due::due(&shared.schedules, &last, &tz, now) {
            let tier = &shared.schedules[&d.source].name;
            if let Some(id) = catalog.enqueue(&d.source, tier, d.scheduled, d.missed, now)? {
                let note = if d.missed > 0 {
                    format!(" (catch-up for {} missed slot(s))", d.missed)
                } else {
                    String::new()
                };
                log(
                    &shared.clock,
                    &format!("queued job {id}: {} slot {}{note}", d.source, d.scheduled),
                );
            }
        }
        // Drills planned for now or earlier (requested ones, and scheduled ones planned ahead).
        for d in catalog.due_drills(now)? {
            let key = format!("{}{DRILL_SUFFIX}", d.spec);
            if let Some(id) = catalog.enqueue(&key, "drill", d.planned_for, 0, now)? {
                log(
                    &shared.clock,
                    &format!(
                        "queued job {id}: {key} slot {} ({} drill {})",
                        d.planned_for, d.reason, d.id
                    ),
                );
            }
        }
        while running.len() < workers {
            let Some(job) = catalog.claim(shared.clock.now())? else {
                break;
            };
            log(
                &shared.clock,
                &format!(
                    "job {} started: {} slot {}",
                    job.id, job.source, job.scheduled
                ),
            );
            let shared = shared.clone();
            running.spawn_blocking(move || {
                let retry = !cold::is_cold(&shared, &job.source);
                (job.id, retry, run_job(&shared, &job))
            });
        }
        // Wake for the next minute of schedule time, when a job ends, or to stop.
        let tick = shared.clock.real_time(chrono::Duration::seconds(60)).clamp(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_secs(5),
        );
        tokio::select! {
            _ = &mut shutdown => break,
            Some(done) = running.join_next(), if !running.is_empty() => {
                finished += record(&mut catalog, &shared.clock, done)?;
            }
            _ = tokio::time::sleep(tick) => {}
        }
    }
    log(
        &shared.clock,
        &format!(
            "stopping: waiting up to {} s for {} running job(s)",
            stop_timeout.as_secs(),
            running.len()
        ),
    );
    let mut deadline = std::pin::pin!(tokio::time::sleep(stop_timeout));
    while !running.is_empty() {
        tokio::select! {
            Some(done) = running.join_next() => {
                finished += record(&mut catalog, &shared.clock, done)?;
            }
            _ = &mut deadline => {
                log(
                    &shared.clock,
                    &format!(
                        "{} job(s) still running after {} s; they were cut off and run again at \
                         the next start",
                        running.len(),
                        stop_timeout.as_secs()
                    ),
                );
                break;
            }
        }
    }
    running.detach_all();
    log(&shared.clock, "stopped");
    Ok(finished)
}

fn record(
    catalog: &mut Catalog,
    clock: &Clock,
    done: Result<(i64, bool, Result<String, String>), tokio::task::JoinError>,
) -> Result<u64, Error> {
    let (id, retry, outcome) = match done {
        Ok(v) => v,
        Err(e) => {
            log(clock, &format!("a job panicked: {e}"));
            return Ok(0);
        }
    };
    match &outcome {
        Ok(summary) => log(clock, &format!("job {id} done: {summary}")),
        Err(e) => log(clock, &format!("job {id} failed: {e}")),
    }
    catalog.finish_with(
        id,
        outcome.as_ref().map(|_| ()).map_err(String::as_str),
        clock.now(),
        retry,
    )?;
    Ok(1)
}

fn log(clock: &Clock, message: &str) {
    eprintln!("{} {message}", clock.now().format("%Y-%m-%dT%H:%M:%SZ"));
}

/// One job: back up the source to each target, then apply the tier's retention there.
/// The schedule key of a source's daily copy to its second site.
const COPY_SUFFIX: &str = ">copy";
/// The schedule key of a target's prune.
const PRUNE_SUFFIX: &str = ">prune";
/// The job key of a drill spec's runs.
const DRILL_SUFFIX: &str = ">drill";
/// The tier name of jobs asked for now (through the API): they run without jitter.
pub const IMMEDIATE: &str = "now";
/// The job key of a cold backup of a VM source (triggered through the API).
pub const COLD_SUFFIX: &str = ">cold";

fn schedules(loaded: &Loaded) -> Result<BTreeMap<String, crate::schedule::tier::Tier>, String> {
    let mut out = loaded.tiers.clone();
    let copy_tier = crate::schedule::tier::Tier::named("14/1")?;
    for (name, source) in &loaded.config.sources {
        if source.copy_to.is_some() {
            out.insert(format!("{name}{COPY_SUFFIX}"), copy_tier.clone());
        }
    }
    if let Some(prune) = crate::schedule::tier::Tier::prune(loaded.config.service.prune.get_ref())?
    {
        for name in loaded.config.targets.keys() {
            out.insert(format!("{name}{PRUNE_SUFFIX}"), prune.clone());
        }
    }
    Ok(out)
}

fn run_job(shared: &Shared, job: &catalog::jobs::Job) -> Result<String, String> {
    if let Some(source) = job.source.strip_suffix(COPY_SUFFIX) {
        return copy_job(shared, job, source).map_err(|e| format!("{e:#}"));
    }
    if let Some(target) = job.source.strip_suffix(PRUNE_SUFFIX) {
        return prune_job(shared, job, target).map_err(|e| format!("{e:#}"));
    }
    if let Some(spec) = job.source.strip_suffix(DRILL_SUFFIX) {
        return drill_job(shared, job, spec).map_err(|e| format!("{e:#}"));
    }
    if let Some(source) = job.source.strip_suffix(COLD_SUFFIX) {
        return cold::cold_job(shared, job, source).map_err(|e| format!("{e:#}"));
    }
    let source_name = job.source.as_str();
    let config = &shared.loaded.config;
    let source = config
        .sources
        .get(source_name)
        .ok_or_else(|| format!("source '{source_name}' is no longer configured"))?;
    let tier = &shared.loaded.tiers[source_name];
    if matches!(source.kind, SourceKind::Vm) {
        // A VM's scheduled backups (tier cold-vm-quarterly) are cold backups.
        return cold::cold_job(shared, job, source_name).map_err(|e| format!("{e:#}"));
    }
    let jitter = config.service.jitter();
    if jitter > chrono::Duration::zero() && job.tier != IMMEDIATE {
        let wait = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=jitter.num_milliseconds());
        std::thread::sleep(shared.clock.real_time(chrono::Duration::milliseconds(wait)));
    }
    let mut summaries = Vec::new();
    for target_name in source.targets.get_ref() {
        let target = &config.targets[target_name];
        // A poisoned lock only means another job panicked; the target itself is fine.
        let _turn = shared.targets[target_name]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let summary = backup_to(shared, job, source, tier, target)
            .map_err(|e| format!("target '{target_name}': {e:#}"))?;
        summaries.push(format!("{target_name}: {summary}"));
    }
    Ok(summaries.join("; "))
}

fn backup_to(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    target: &Target,
) -> anyhow::Result<String> {
    let mut database = source.database().map(|d| d.source());
    let streams = database
        .as_mut()
        .map(|d| d.as_mut() as &mut dyn backup::StreamSource);
    let started = shared.clock.now();
    let written = match write_backup(shared, job, source, tier, target, streams) {
        Ok(w) => w,
        Err(e) => {
            // The backup could not even start (the target unreachable, its repository
            // locked): a failed slot, and evidence all the same.
            let error = format!("{e:#}");
            let mut catalog = Catalog::open(&shared.data_dir)?;
            let note = backup_evidence(
                shared,
                &mut catalog,
                None,
                &job.source,
                source,
                tier,
                scheduled_slot(job),
                started,
                Err(&error),
                None,
            )?;
            anyhow::bail!("{error}{note}");
        }
    };
    finish_backup(shared, job, source, tier, written, None)
}

/// The tier slot a job runs for: none for jobs asked for at once (an API trigger, a cold
/// backup by hand), which belong to no slot.
fn scheduled_slot(job: &catalog::jobs::Job) -> Option<DateTime<Utc>> {
    (job.tier != IMMEDIATE && !job.source.contains('>')).then_some(job.scheduled)
}

/// A backup written (or failed) on one target, its evidence not yet written.
struct Written {
    repo: Repository,
    /// The repository's writer lock, held until retention is applied.
    _lock: std::fs::File,
    started: DateTime<Utc>,
    snapshot: Result<crate::repo::snapshot::Snapshot, String>,
}

/// Backs a source up to one target (its files, or `streams`), recording the run in the
/// catalog. Errors are for what stops the backup from starting (no repository, a writer
/// holding it); a backup that fails is in `Written::snapshot`.
fn write_backup(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    target: &Target,
    streams: Option<&mut dyn backup::StreamSource>,
) -> anyhow::Result<Written> {
    let source_name = job.source.strip_suffix(COLD_SUFFIX).unwrap_or(&job.source);
    let (backend, fresh) = target.open_or_create()?;
    // A store whose creation a crash cut off before the config was written is still blank.
    let repo = if fresh || Repository::is_blank(backend.as_ref())? {
        if shared.recipients.is_empty() {
            anyhow::bail!("the target holds no repository and [service] lists no recipients to create one for");
        }
        Repository::init(backend, &shared.recipients, &shared.signing)?
    } else {
        Repository::open(backend, shared.signing.public())?
    };
    check_pinned(shared, &repo)?;
    let lock = catalog::lock_repository(&shared.data_dir, &repo.config.id)?
        .ok_or_else(|| anyhow::anyhow!("another writer holds repository {}", repo.config.id))?;
    let mut catalog = Catalog::open(&shared.data_dir)?;
    let mut cache = catalog.for_repo(&repo)?;
    let now = shared.clock.now();
    let run = cache.start_run("backup", now)?;
    cache.tag_run(run, source_name, &tier.name, job.scheduled, job.id)?;
    let options = BackupOptions {
        paths: source.paths.clone(),
        tags: BTreeMap::from([
            ("source".to_string(), source_name.to_string()),
            ("tenant".to_string(), source.tenant.get_ref().clone()),
            ("tier".to_string(), tier.name.clone()),
        ]),
        hostname: "lifeboat".into(),
        threads: 0,
        retain_until: tier.retention.within.map(|w| now + w),
        time: Some(now),
    };
    let result = match streams {
        Some(streams) => backup::backup_streams(
            &repo,
            &shared.signing,
            &mut cache,
            &options,
            streams,
            &crate::progress::Silent,
        ),
        None => backup::backup(
            &repo,
            &shared.signing,
            &mut cache,
            &options,
            &crate::progress::Silent,
        ),
    };
    let snapshot = match result {
        Ok(outcome) => {
            let snapshot = outcome.snapshot;
            cache.record_snapshot(&snapshot)?;
            cache.save_file_cache(&outcome.paths_key, &snapshot.id, &outcome.file_cache)?;
            cache.finish_run(run, Ok(&snapshot), shared.clock.now())?;
            Ok(snapshot)
        }
        Err(e) => {
            cache.finish_run(run, Err(&e.to_string()), shared.clock.now())?;
            Err(e.to_string())
        }
    };
    Ok(Written {
        repo,
        _lock: lock,
        started: now,
        snapshot,
    })
}

/// Writes a backup's evidence and, when it succeeded, applies the tier's retention; the job's
/// summary for this target, or the backup's error.
fn finish_backup(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    written: Written,
    cold: Option<&ColdFacts>,
) -> anyhow::Result<String> {
    let source_name = job.source.strip_suffix(COLD_SUFFIX).unwrap_or(&job.source);
    let Written {
        repo,
        _lock,
        started,
        snapshot,
    } = written;
    let mut catalog = Catalog::open(&shared.data_dir)?;
    let note = backup_evidence(
        shared,
        &mut catalog,
        Some(&repo),
        source_name,
        source,
        tier,
        scheduled_slot(job),
        started,
        snapshot.as_ref().map_err(String::as_str),
        cold,
    )?;
    let snapshot = snapshot.map_err(|e| anyhow::anyhow!("{e}{note}"))?;
    // Retention for this source, on this target.
    let mut cache = catalog.for_repo(&repo)?;
    let forgotten =
        forget_by_retention(shared, job, &repo, &mut cache, source_name, tier, started)?;
    Ok(format!(
        "snapshot {} ({} files, {} bytes added), {} forgotten by retention{note}",
        snapshot.id.short(),
        snapshot.manifest.stats.files,
        snapshot.manifest.stats.bytes_added,
        forgotten.forgotten.len()
    ))
}

/// A cold backup's steps go into the record's timeline (in time order), its downtime into
/// `measured`; a VM that did not come back makes the record a failure with a critical incident,
/// whatever became of the backup.
fn add_cold_facts(record: &mut crate::evidence::Record, cold: &ColdFacts, source_name: &str) {
    use crate::evidence::record::time;
    use crate::evidence::{Event, Incident, Outcome};
    for (event, at) in &cold.timeline {
        record.timeline.push(Event {
            event: format!("vm {event}"),
            time: time(*at),
        });
    }
    record.timeline.sort_by(|a, b| a.time.cmp(&b.time));
    if let Some(d) = cold
        .downtime
        .and_then(|d| u64::try_from(d.num_milliseconds()).ok())
    {
        record.measured.insert("downtime_ms".into(), d);
    }
    record
        .measured
        .insert("forced_power_off".into(), u64::from(cold.forced));
    if let Err(why) = &cold.came_back {
        record.outcome = Outcome::Failure;
        let summary = format!(
            "{} ({source_name}) did not come back after its cold backup: {why}",
            cold.vm
        );
        record.error = Some(match record.error.take() {
            Some(e) => format!("{e}; {summary}"),
            None => summary.clone(),
        });
        record.incident = Some(Incident {
            severity: "critical".into(),
            summary,
        });
    }
}

/// What a cold backup adds to its evidence: each step's time, the downtime, and whether the
/// VM came back.
pub(crate) struct ColdFacts {
    pub timeline: Vec<(String, DateTime<Utc>)>,
    pub downtime: Option<chrono::Duration>,
    pub came_back: Result<(), String>,
    pub forced: bool,
    pub vm: String,
}

/// Writes the evidence of a backup run into the tenant's chain, and copies the tenant's
/// records into the repository. A copy that fails is caught up by the next run; what went
/// wrong is returned as a note for the job's summary.
#[allow(clippy::too_many_arguments)]
fn backup_evidence(
    shared: &Shared,
    catalog: &mut Catalog,
    repo: Option<&Repository>,
    source_name: &str,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    slot: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    result: Result<&crate::repo::snapshot::Snapshot, &str>,
    cold: Option<&ColdFacts>,
) -> anyhow::Result<String> {
    use crate::evidence::record::{time, SnapshotRef};
    use crate::evidence::{Event, Incident, Outcome, Record, RecordKind};
    let tenant = source.tenant.get_ref();
    let now = shared.clock.now();
    let mut record = Record::new(RecordKind::Backup, tenant, now);
    record.contract = Some(source.contract.get_ref().clone());
    record.source = Some(source_name.to_string());
    record.tier = Some(tier.name.clone());
    record.slot = slot.map(time);
    if let Some(contract) = shared
        .loaded
        .config
        .contracts
        .get(source.contract.get_ref())
    {
        let ms = |d: chrono::Duration| u64::try_from(d.num_milliseconds()).ok();
        record.objectives.rpo_ms = contract.rpo().and_then(ms);
        record.objectives.rto_ms = contract.rto().and_then(ms);
    }
    record.timeline.push(Event {
        event: "started".into(),
        time: time(started),
    });
    match result {
        Ok(snapshot) => {
            let s = &snapshot.manifest.stats;
            record.snapshot = Some(SnapshotRef {
                id: snapshot.id.to_hex(),
                time: time(snapshot.manifest.time),
            });
            record.measured.extend([
                ("files".to_string(), s.files),
                ("bytes".to_string(), s.bytes),
                ("bytes_read".to_string(), s.bytes_read),
                ("bytes_added".to_string(), s.bytes_added),
                ("duration_ms".to_string(), s.duration_ms),
            ]);
            record.timeline.push(Event {
                event: "snapshot committed".into(),
                time: time(now),
            });
        }
        Err(error) => {
            record.outcome = Outcome::Failure;
            record.error = Some(error.to_string());
            record.incident = Some(Incident {
                severity: "high".into(),
                summary: format!("backup of {source_name} failed: {error}"),
            });
            record.timeline.push(Event {
                event: "failed".into(),
                time: time(now),
            });
        }
    }
    if let Some(cold) = cold {
        add_cold_facts(&mut record, cold, source_name);
    }
    // The customer reads the record: what failed, not where the MSP keeps things. The
    // webhook (the MSP's own) gets the error whole.
    let mut public = record.clone();
    crate::evidence::redact::record(&mut public, &shared.loaded.config.confidential());
    let stored = crate::evidence::chain::append(catalog, &shared.signing, public)?;
    let mut note = String::new();
    if let Some(repo) = repo {
        if let Err(e) =
            crate::evidence::chain::copy_to(catalog, repo.backend().as_ref(), Some(tenant))
        {
            note.push_str(&format!(
                "; evidence not yet copied into the repository: {e}"
            ));
        }
    }
    if let Some(url) = shared.loaded.config.service.webhook() {
        if let Err(e) = crate::evidence::incident::notify(url, &record, &stored) {
            note.push_str(&format!("; {e}"));
        }
    }
    Ok(note)
}

/// A drill's run: the planned drill of that slot (a request), or for a scheduled slot a new
/// one, if the contract's test restores for the year are not used up.
fn drill_job(shared: &Shared, job: &catalog::jobs::Job, spec: &str) -> anyhow::Result<String> {
    let drill = shared
        .drills
        .get(spec)
        .ok_or_else(|| anyhow::anyhow!("drill '{spec}' is no longer configured"))?;
    let key = shared
        .drill_key
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [service] drill_key to decrypt with"))?;
    let config = &shared.loaded.config;
    let source = &config.sources[drill.spec.source.get_ref()];
    let contract = source.contract.get_ref();
    let mut catalog = Catalog::open(&shared.data_dir)?;
    let (planned, reason) = match catalog.planned_drill(spec, job.scheduled)? {
        Some(row) => (
            row.id,
            if row.reason == "requested" {
                crate::drill::Reason::Requested
            } else {
                crate::drill::Reason::Scheduled
            },
        ),
        None => {
            let terms = crate::drill::quota::Terms::of(config, contract);
            let tz = config.service.time_zone();
            if let Err(why) = crate::drill::quota::may_plan(
                terms,
                &catalog.drills(Some(contract))?,
                contract,
                job.scheduled,
                job.scheduled,
                tz,
            ) {
                return Ok(format!("drill {spec} not run: {why}"));
            }
            let id = catalog.plan_drill(&catalog::drills::NewDrill {
                spec,
                tenant: source.tenant.get_ref(),
                contract,
                source: drill.spec.source.get_ref(),
                reason: "scheduled",
                planned_for: job.scheduled,
                requested_by: None,
            })?;
            (id, crate::drill::Reason::Scheduled)
        }
    };
    drop(catalog);
    let now = || shared.clock.now();
    let services = crate::drill::Services {
        loaded: &shared.loaded,
        data_dir: &shared.data_dir,
        signing: &shared.signing,
        key,
        now: &now,
    };
    let outcome = crate::drill::run(
        &services,
        drill,
        reason,
        Some(planned),
        &crate::progress::Silent,
    )?;
    let r = &outcome.record;
    let summary = format!(
        "drill {spec} ({}) {}: evidence #{} of {}{}",
        reason.name(),
        match r.outcome {
            crate::evidence::Outcome::Success => "passed".to_string(),
            crate::evidence::Outcome::Failure => format!(
                "FAILED ({} incident: {})",
                r.incident.as_ref().map_or("", |i| i.severity.as_str()),
                r.error.as_deref().unwrap_or_default()
            ),
        },
        outcome.evidence.sequence,
        r.tenant,
        outcome
            .problems
            .iter()
            .map(|p| format!("; {p}"))
            .collect::<String>()
    );
    Ok(summary)
}

/// Refuses a repository signed by another service than this one.
fn check_pinned(shared: &Shared, repo: &Repository) -> anyhow::Result<()> {
    if let Some(pinned) =
        catalog::pin_signer(&shared.data_dir, &repo.config.id, &shared.signing.public())?
    {
        anyhow::bail!(
            "repository {} is pinned to service certificate {}, not this service's {}",
            repo.config.id,
            pinned.describe(),
            shared.signing.public().describe()
        );
    }
    Ok(())
}

/// A target's scheduled prune. It takes no turn on the target: prune works in two phases and
/// leaves alone whatever a backup running meanwhile may use.
fn prune_job(
    shared: &Shared,
    job: &catalog::jobs::Job,
    target_name: &str,
) -> anyhow::Result<String> {
    use crate::repo::prune::{prune, PruneOptions};
    let target = shared
        .loaded
        .config
        .targets
        .get(target_name)
        .ok_or_else(|| anyhow::anyhow!("target '{target_name}' is no longer configured"))?;
    let backend = match target.open_existing()? {
        Some(b) if !Repository::is_blank(b.as_ref())? => b,
        _ => return Ok(format!("target '{target_name}' holds no repository yet")),
    };
    let repo = Repository::open(backend, shared.signing.public())?;
    check_pinned(shared, &repo)?;
    let mut catalog = Catalog::open(&shared.data_dir)?;
    let mut memory = catalog.for_repo(&repo)?;
    let run = memory.start_run("prune", shared.clock.now())?;
    memory.tag_run(run, &job.source, "prune", job.scheduled, job.id)?;
    let outcome = prune(
        &repo,
        &mut memory,
        PruneOptions::default(),
        &crate::progress::Silent,
    );
    let now = shared.clock.now();
    match outcome {
        Ok(report) => {
            let mut summary = format!(
                "deleted {} pack(s) ({} bytes) and {} index(es); marked {} for deletion",
                report.packs_deleted,
                report.bytes_freed,
                report.indexes_deleted,
                report.packs_marked
            );
            for w in &report.waiting {
                summary.push_str(&format!(
                    "; {} marked pack(s) wait for {}",
                    w.packs,
                    w.sessions.join(", ")
                ));
            }
            if !report.still_locked.is_empty() {
                summary.push_str(&format!(
                    "; {} object(s) kept under Object Lock",
                    report.still_locked.len()
                ));
            }
            memory.finish_upkeep(run, Ok(&summary), report.bytes_freed, now)?;
            Ok(summary)
        }
        Err(e) => {
            memory.finish_upkeep(run, Err(&e.to_string()), 0, now)?;
            Err(e.into())
        }
    }
}

/// The daily disaster-recovery copy: the source's newest snapshot, from its first target to
/// its `copy_to` target (which becomes a replica of that repository), then the copy tier's
/// retention there.
fn copy_job(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source_name: &str,
) -> anyhow::Result<String> {
    let config = &shared.loaded.config;
    let source = config
        .sources
        .get(source_name)
        .ok_or_else(|| anyhow::anyhow!("source '{source_name}' is no longer configured"))?;
    let (from_name, to_name) = match (source.targets.get_ref().first(), &source.copy_to) {
        (Some(from), Some(to)) => (from.clone(), to.get_ref().clone()),
        _ => anyhow::bail!("source '{source_name}' has no target or no copy_to"),
    };
    let tier = &shared.schedules[&format!("{source_name}{COPY_SUFFIX}")];
    // Both targets' turns, taken in name order so that two copies in opposite directions
    // cannot wait for each other.
    let mut names = [&from_name, &to_name];
    names.sort();
    let _turns: Vec<_> = names
        .iter()
        .map(|n| {
            shared.targets[*n]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
        .collect();
    let (backend, fresh) = config.targets[&from_name].open_or_create()?;
    if fresh {
        anyhow::bail!("target '{from_name}' holds no backup of '{source_name}' yet");
    }
    let repo = Repository::open(backend, shared.signing.public())?;
    let (all, _) = repo.snapshots()?;
    let newest = all
        .into_iter()
        .filter(|s| s.manifest.tags.get("source").map(String::as_str) == Some(source_name))
        .max_by_key(|s| s.manifest.time)
        .ok_or_else(|| {
            anyhow::anyhow!("target '{from_name}' holds no backup of '{source_name}' yet")
        })?;
    let (dest, _) = config.targets[&to_name].open_or_create()?;
    let report = crate::repo::copy::copy(
        &repo,
        &dest,
        std::slice::from_ref(&newest),
        &crate::progress::Silent,
    )?;

    // Retention at the second site, for this source.
    let copy = Repository::open(dest, shared.signing.public())?;
    let _lock = catalog::lock_repository(&shared.data_dir, &copy.config.id)?;
    let mut catalog = Catalog::open(&shared.data_dir)?;
    let mut memory = catalog.for_repo(&copy)?;
    let forgotten = forget_by_retention(
        shared,
        job,
        &copy,
        &mut memory,
        source_name,
        tier,
        shared.clock.now(),
    )?;
    Ok(format!(
        "copied snapshot {} from '{from_name}' to '{to_name}' ({} pack(s), {} bytes sent), {} forgotten there by retention",
        newest.id.short(),
        report.packs_copied,
        report.bytes_copied,
        forgotten.forgotten.len()
    ))
}

/// Applies `tier`'s retention to the snapshots of `source` in `repo`: forgets those it does
/// not keep (never the newest, never a held or locked one), and records that as a run of
/// `job`.
fn forget_by_retention(
    shared: &Shared,
    job: &catalog::jobs::Job,
    repo: &Repository,
    memory: &mut catalog::RepoCatalog<'_>,
    source: &str,
    tier: &crate::schedule::tier::Tier,
    now: DateTime<Utc>,
) -> anyhow::Result<crate::repo::prune::ForgetReport> {
    let (all, _) = repo.snapshots()?;
    let mine: Vec<_> = all
        .iter()
        .filter(|s| s.manifest.tags.get("source").map(String::as_str) == Some(source))
        .collect();
    let zone = shared.loaded.config.service.time_zone();
    let pins = crate::repo::hold::pins(repo.backend().as_ref(), &repo.config.id)?;
    let (_, doomed) = crate::repo::prune::by_policy(&mine, &tier.retention, &zone, now, &pins);
    if doomed.is_empty() {
        return Ok(Default::default());
    }
    let run = memory.start_run("forget", now)?;
    memory.tag_run(run, &job.source, &tier.name, job.scheduled, job.id)?;
    match crate::repo::prune::forget(repo, memory, &doomed, false) {
        Ok(report) => {
            let ids: Vec<String> = report.forgotten.iter().map(|id| id.short()).collect();
            let mut summary = format!(
                "forgot {} snapshot(s) of '{source}' by the retention of tier {}: {}",
                ids.len(),
                tier.name,
                ids.join(" ")
            );
            if !report.still_locked.is_empty() {
                summary.push_str(&format!(
                    "; kept {} still under Object Lock",
                    report.still_locked.len()
                ));
            }
            memory.finish_upkeep(run, Ok(&summary), 0, shared.clock.now())?;
            Ok(report)
        }
        Err(e) => {
            memory.finish_upkeep(run, Err(&e.to_string()), 0, shared.clock.now())?;
            Err(e.into())
        }
    }
}
