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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("another lifeboat daemon is running with data directory {0}; stop it first")]
    AlreadyRunning(PathBuf),
    #[error("{0}")]
    Setup(String),
    #[error("catalog: {0}")]
    Catalog(#[from] catalog::Error),
}

/// How often the loop empties the embedded catalog's write-ahead log.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What every job needs, shared between the loop and the workers.
struct Shared {
    loaded: Loaded,
    /// Drill specs by name, and the key drills decrypt with.
    drills: BTreeMap<String, crate::drill::spec::Drill>,
    drill_key: Option<SecretKey>,
    /// What runs when: each source's backups under its name, and the daily copy of a source
    /// with `copy_to` under `SOURCE>copy` (tier `14/1`).
    schedules: BTreeMap<String, crate::schedule::tier::Tier>,
    /// One job at a time per repository (a tenant's on a target): jobs for the same one
    /// wait their turn (creating a repository and writing to it are not for two at once);
    /// different tenants' repositories on one target are worked on at once.
    repositories: RepositoryTurns,
    data_dir: PathBuf,
    /// The catalog: in the data directory, or shared with other instances in PostgreSQL.
    catalog: catalog::Place,
    clock: Clock,
    signing: SecretKey,
    /// `[service] recipients`, which every repository is encrypted to.
    recipients: Vec<PublicCert>,
    /// Each tenant's own recipients (`[tenants.ID] recipients`), added for its repositories.
    tenant_recipients: BTreeMap<String, Vec<PublicCert>>,
    /// Where this daemon runs: at a site (an agent), or `None`, the central service. It runs
    /// the sources of that place only, and prunes only the repositories it writes.
    site: Option<String>,
}

/// What a daemon is given to work with.
pub struct Work {
    pub loaded: Loaded,
    pub drills: Vec<crate::drill::spec::Drill>,
    pub data_dir: PathBuf,
    pub clock: Clock,
    /// The site it works at (an agent's daemon), or `None` for the central service.
    pub site: Option<String>,
}

/// The turns of the repositories, keyed `TARGET/TENANT`, made as they are first needed.
#[derive(Default)]
struct RepositoryTurns(std::sync::Mutex<BTreeMap<String, Arc<std::sync::Mutex<()>>>>);

impl RepositoryTurns {
    /// Waits for the turn of `tenant`'s repository on `target`; held until dropped.
    fn take(&self, target: &str, tenant: &str) -> Turn {
        let lock = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(format!("{target}/{tenant}")).or_default().clone()
        };
        Turn(lock)
    }
}

/// A repository's turn: lock it with `hold`.
struct Turn(Arc<std::sync::Mutex<()>>);

impl Turn {
    fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock only means another job panicked; the repository itself is fine.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Shared {
    /// What `tenant`'s repositories are encrypted to: the service's recipients and its own.
    fn recipients_for(&self, tenant: &str) -> Vec<PublicCert> {
        let mut all = self.recipients.clone();
        all.extend(
            self.tenant_recipients
                .get(tenant)
                .cloned()
                .unwrap_or_default(),
        );
        all
    }
}

mod backup_job;
mod clock;
mod cold;
mod copy;
use copy::copy_job;
mod lease;
mod prune;
use prune::prune_job;
mod sites;
use backup_job::{
    backup_evidence, backup_to, finish_backup, scheduled_slot, write_backup, ColdFacts,
};
pub use clock::Clock;
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
    fn new(work: Work) -> Result<Shared, Error> {
        let Work {
            loaded,
            mut drills,
            data_dir,
            clock,
            site,
        } = work;
        let here = |source: &str| {
            loaded
                .config
                .sources
                .get(source)
                .is_some_and(|s| s.site() == site.as_deref())
        };
        drills.retain(|d| here(d.spec.source.get_ref()));
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
        let mut schedules = schedules(&loaded, site.as_deref()).map_err(Error::Setup)?;
        for d in &drills {
            if let Some(cron) = &d.spec.schedule {
                let tier = crate::schedule::tier::Tier::drill(&d.name, cron.get_ref())
                    .map_err(Error::Setup)?;
                schedules.insert(format!("{}{DRILL_SUFFIX}", d.name), tier);
            }
        }
        let mut tenant_recipients = BTreeMap::new();
        for (id, tenant) in &loaded.config.tenants {
            let certs = tenant
                .recipients
                .iter()
                .map(|p| PublicCert::load(p.get_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Setup(format!("tenant '{id}': recipient: {e}")))?;
            tenant_recipients.insert(id.clone(), certs);
        }
        Ok(Shared {
            drills: drills.into_iter().map(|d| (d.name.clone(), d)).collect(),
            drill_key,
            schedules,
            repositories: RepositoryTurns::default(),
            catalog: catalog::Place::of(&data_dir, &loaded.config),
            loaded,
            data_dir,
            clock,
            signing,
            recipients,
            tenant_recipients,
            site,
        })
    }

    fn catalog(&self) -> Result<Catalog, catalog::Error> {
        self.catalog.open()
    }

    /// The configured source `name`; an error when the configuration no longer has it.
    fn source(&self, name: &str) -> anyhow::Result<&crate::config::Source> {
        self.loaded
            .config
            .sources
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("source '{name}' is no longer configured"))
    }

    /// Whether this daemon runs source `name` (it is at this daemon's place).
    fn runs(&self, source: &crate::config::Source) -> bool {
        source.site() == self.site.as_deref()
    }
}

/// Runs until `shutdown` completes, then gives running jobs `stop_timeout` to finish;
/// returns how many jobs finished. Jobs still running then are left to the next start,
/// which runs them again.
pub async fn serve(
    _lock: DaemonLock,
    work: Work,
    shutdown: impl std::future::Future<Output = ()>,
    stop_timeout: std::time::Duration,
) -> Result<u64, Error> {
    let tz = work.loaded.config.service.time_zone();
    let workers = work.loaded.config.service.workers.max(1);
    let mut catalog = catalog::Place::of(&work.data_dir, &work.loaded.config).open()?;
    let clock = work.clock.clone();
    let now = clock.now();
    let leases = lease::Leases::new(&work.data_dir, &clock, catalog.engine()).map_err(|e| {
        Error::Setup(format!(
            "cannot name this instance in {}: {e}",
            work.data_dir.display()
        ))
    })?;
    for job in catalog.recover(now, leases.at_start())? {
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
    let shared = Arc::new(Shared::new(work)?);
    // Opening a store blocks (S3 has a runtime of its own): off the async threads.
    // Only the centre can hold the shared repositories of earlier versions. Looking takes
    // as long as reaching every target does (an S3 server away, credentials refused and
    // retried): it is said when it is known, and the daemon does not wait for it.
    if shared.site.is_none() {
        let looked = shared.clone();
        tokio::task::spawn_blocking(move || {
            for line in shared_layouts(&looked.loaded) {
                log(&looked.clock, &line);
            }
        });
    }
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
    let mut watched: Option<DateTime<Utc>> = None;
    let mut checkpointed = std::time::Instant::now();
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
            // A site's drill: its agent runs it (told with a job of the site).
            let place = shared
                .loaded
                .config
                .sources
                .get(&d.source)
                .map(|s| s.site());
            if place.is_some_and(|p| p != shared.site.as_deref()) {
                continue;
            }
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
        // Sites are looked at once a minute of schedule time, not at every wake-up.
        if watched.is_none_or(|at| now - at >= chrono::Duration::minutes(1)) {
            watched = Some(now);
            if let Err(e) = sites::watch(&shared, &mut catalog, now) {
                log(&shared.clock, &e);
            }
        }
        // The embedded catalog's log, emptied now and then (real time: it is upkeep).
        if checkpointed.elapsed() >= CHECKPOINT_EVERY {
            checkpointed = std::time::Instant::now();
            if let Err(e) = catalog.checkpoint() {
                log(&shared.clock, &format!("catalog checkpoint: {e}"));
            }
            // Agents' nonces too old for a request to be taken: a replay of one is refused
            // for its time.
            let before = now - crate::agent::request::MAX_SKEW * 2;
            if let Err(e) = catalog.forget_nonces(&crate::evidence::record::time(before)) {
                log(&shared.clock, &format!("agents' nonces: {e}"));
            }
        }
        // Leases: this instance's renewed, those of instances gone quiet taken back.
        for job in leases.turn(&mut catalog, now, !running.is_empty())? {
            log(
                &shared.clock,
                &format!(
                    "job {} ({} slot {}) was taken back: {}",
                    job.id,
                    job.source,
                    job.scheduled,
                    job.error.as_deref().unwrap_or("its lease ran out")
                ),
            );
        }
        while running.len() < workers {
            let now = shared.clock.now();
            let Some(job) = catalog.claim_leased(now, Some(&leases.lease(now)))? else {
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
                finished += record(&mut catalog, &shared.clock, &leases, done)?;
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
                finished += record(&mut catalog, &shared.clock, &leases, done)?;
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

/// A line for each target that still holds the shared repository of earlier versions.
fn shared_layouts(loaded: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    for (name, target) in &loaded.config.targets {
        if let Ok(Some(b)) = target.open_shared() {
            if !Repository::is_blank(b.as_ref()).unwrap_or(true) {
                out.push(format!(
                    "target '{name}' holds a shared repository of every tenant, made before \
                     each tenant had its own: new backups go to each tenant's own repository \
                     there ({}); to carry the old snapshots and evidence over, run 'lifeboat \
                     migrate split-tenants --config CONFIG --key RECOVERY.key' (it copies, \
                     checks, and deletes nothing)",
                    target.location_for("TENANT")
                ));
            }
        }
    }
    out
}

fn record(
    catalog: &mut Catalog,
    clock: &Clock,
    leases: &lease::Leases,
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
    let kept = catalog.finish_leased(
        id,
        &leases.owner,
        outcome.as_ref().map(|_| ()).map_err(String::as_str),
        clock.now(),
        retry,
    )?;
    if !kept {
        log(
            clock,
            &format!(
                "job {id}: its lease had run out and another instance took it over; this \
                 outcome is not recorded"
            ),
        );
    }
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
const DRILL_SUFFIX: &str = crate::drill::JOB_SUFFIX;
/// The tier name of jobs asked for now (through the API): they run without jitter.
pub const IMMEDIATE: &str = "now";
/// The job key of a cold backup of a VM source (triggered through the API).
pub const COLD_SUFFIX: &str = ">cold";

/// What runs when at the place `site` (`None`: the central service): its sources' tiers,
/// their copies, and the prune of every target.
fn schedules(
    loaded: &Loaded,
    site: Option<&str>,
) -> Result<BTreeMap<String, crate::schedule::tier::Tier>, String> {
    let mut out = loaded.tiers.clone();
    out.retain(|name, _| {
        loaded
            .config
            .sources
            .get(name)
            .is_some_and(|s| s.site() == site)
    });
    let copy_tier = crate::schedule::tier::Tier::named("14/1")?;
    for (name, source) in &loaded.config.sources {
        if source.copy_to.is_some() && source.site() == site {
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

/// The error of a job for a source that runs at another place than this daemon.
fn elsewhere(name: &str, source: &crate::config::Source) -> String {
    match source.site() {
        Some(site) => format!("source '{name}' runs at site '{site}': its agent runs its jobs"),
        None => format!("source '{name}' runs on the central service, not at this site"),
    }
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
    if !shared.runs(source) {
        return Err(elsewhere(source_name, source));
    }
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
    let tenant = source.tenant.get_ref();
    for target_name in source.targets.get_ref() {
        let target = &config.targets[target_name];
        let turn = shared.repositories.take(target_name, tenant);
        let _turn = turn.hold();
        let summary = backup_to(shared, job, source, tier, target_name, target)
            .map_err(|e| format!("target '{target_name}': {e:#}"))?;
        summaries.push(format!("{target_name}: {summary}"));
    }
    Ok(summaries.join("; "))
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
    let mut catalog = shared.catalog()?;
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
