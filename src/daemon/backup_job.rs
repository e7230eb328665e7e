//! A backup job's work on one target: write the backup (its files, or the streams of a
//! database or a VM's disks), write its evidence (a failure too, even one that could not
//! start), and apply the tier's retention.

use super::*;

pub(super) fn backup_to(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    target_name: &str,
    target: &Target,
) -> anyhow::Result<String> {
    // Taken up again after its instance was cut off: a target done already is not backed
    // up twice for one job.
    if let Some(snapshot) = shared.catalog()?.backed_up_in_job(job.id, target_name)? {
        return Ok(format!(
            "snapshot {} taken by an earlier attempt of this job, its evidence written; \
             not backed up again",
            snapshot.get(..8).unwrap_or(&snapshot)
        ));
    }
    let mut database = source.database().map(|d| d.source());
    let streams = database
        .as_mut()
        .map(|d| d.as_mut() as &mut dyn backup::StreamSource);
    let started = shared.clock.now();
    let written = match write_backup(shared, job, source, tier, target_name, target, streams) {
        Ok(w) => w,
        Err(e) => {
            // The backup could not even start (the target unreachable, its repository
            // locked): a failed slot, and evidence all the same.
            let error = format!("{e:#}");
            let mut catalog = shared.catalog()?;
            let note = backup_evidence(
                shared,
                &mut catalog,
                None,
                None,
                &job.source,
                source,
                tier,
                scheduled_slot(job),
                started,
                Err(&error),
                None,
                None,
            )?;
            anyhow::bail!("{error}{note}");
        }
    };
    finish_backup(shared, job, source, tier, written, None)
}

/// The tier slot a job runs for: none for jobs asked for at once (an API trigger, a cold
/// backup by hand), which belong to no slot.
pub(super) fn scheduled_slot(job: &catalog::jobs::Job) -> Option<DateTime<Utc>> {
    (job.tier != IMMEDIATE && !job.source.contains('>')).then_some(job.scheduled)
}

/// A backup written (or failed) on one target, its evidence not yet written.
pub(super) struct Written {
    repo: Repository,
    /// The target's name.
    target: String,
    /// The repository's writer lock, held until retention is applied.
    _lock: std::fs::File,
    /// The run in the catalog.
    run: i64,
    started: DateTime<Utc>,
    snapshot: Result<crate::repo::snapshot::Snapshot, String>,
}

/// Backs a source up to one target (its files, or `streams`), recording the run in the
/// catalog. Errors are for what stops the backup from starting (no repository, a writer
/// holding it); a backup that fails is in `Written::snapshot`.
pub(super) fn write_backup(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    target_name: &str,
    target: &Target,
    streams: Option<&mut dyn backup::StreamSource>,
) -> anyhow::Result<Written> {
    let source_name = job.source.strip_suffix(COLD_SUFFIX).unwrap_or(&job.source);
    let tenant = source.tenant.get_ref();
    let mut catalog = shared.catalog()?;
    // Created by one instance of the service at a time: two on a shared catalog would each
    // write a config of their own.
    let mut repo = catalog.exclusive(&format!("repository/{target_name}/{tenant}"), || {
        let (backend, fresh) = target.open_or_create(tenant)?;
        // A store whose creation a crash cut off before the config was written is still blank.
        anyhow::Ok(if fresh || Repository::is_blank(backend.as_ref())? {
            if shared.recipients.is_empty() {
                anyhow::bail!(
                    "the target holds no repository of tenant '{tenant}' yet and [service] \
                     lists no recipients to create one for"
                );
            }
            Repository::init(backend, &shared.recipients_for(tenant), &shared.signing)?
        } else {
            Repository::open(backend, shared.signing.public())?
        })
    })??;
    check_pinned(shared, &repo)?;
    let lock = catalog::lock_repository(&shared.data_dir, &repo.config.id)?
        .ok_or_else(|| anyhow::anyhow!("another writer holds repository {}", repo.config.id))?;
    // The tenant's recipients changed: what is stored from now on follows at once
    // (`tenant rekey` re-encrypts what is stored already).
    let recipients = shared.recipients_for(tenant);
    if !shared.recipients.is_empty() && !repo.encrypts_to(&recipients) {
        repo.set_recipients(&shared.signing, &recipients)?;
    }
    let mut cache = catalog.for_repo(&repo)?;
    let now = shared.clock.now();
    let run = cache.start_run("backup", now)?;
    cache.tag_run(run, source_name, &tier.name, job.scheduled, job.id)?;
    cache.run_target(run, target_name)?;
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
        target: target_name.to_string(),
        _lock: lock,
        run,
        started: now,
        snapshot,
    })
}

/// Writes a backup's evidence and, when it succeeded, applies the tier's retention; the job's
/// summary for this target, or the backup's error.
pub(super) fn finish_backup(
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
        target,
        _lock,
        run,
        started,
        snapshot,
    } = written;
    let mut catalog = shared.catalog()?;
    // What the tenant's repository holds now, which the MSP bills by.
    let stored = match &snapshot {
        Ok(_) => match crate::backend::stored_bytes(repo.backend().as_ref()) {
            Ok(bytes) => {
                catalog.record_usage(
                    source.tenant.get_ref(),
                    &target,
                    bytes,
                    shared.clock.now(),
                )?;
                Some(bytes)
            }
            Err(_) => None,
        },
        Err(_) => None,
    };
    let note = backup_evidence(
        shared,
        &mut catalog,
        Some(&repo),
        Some(run),
        source_name,
        source,
        tier,
        scheduled_slot(job),
        started,
        snapshot.as_ref().map_err(String::as_str),
        cold,
        stored.map(|b| (target.as_str(), b)),
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
pub(super) struct ColdFacts {
    pub timeline: Vec<(String, DateTime<Utc>)>,
    pub downtime: Option<chrono::Duration>,
    pub came_back: Result<(), String>,
    pub forced: bool,
    pub vm: String,
}

/// Writes the evidence of a backup run (`run`, when it got as far as the catalog) into the
/// tenant's chain, and copies the tenant's records into the repository. A copy that fails
/// is caught up by the next run; what went wrong is returned as a note for the job's
/// summary.
#[allow(clippy::too_many_arguments)]
pub(super) fn backup_evidence(
    shared: &Shared,
    catalog: &mut Catalog,
    repo: Option<&Repository>,
    run: Option<i64>,
    source_name: &str,
    source: &crate::config::Source,
    tier: &crate::schedule::tier::Tier,
    slot: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    result: Result<&crate::repo::snapshot::Snapshot, &str>,
    cold: Option<&ColdFacts>,
    stored: Option<(&str, u64)>,
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
            if let Some((target, bytes)) = stored {
                record.measured.insert(
                    format!("{}{target}", crate::evidence::record::STORED_BYTES),
                    bytes,
                );
            }
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
    let succeeded = result.is_ok();
    let stored = crate::evidence::chain::append(catalog, &shared.signing, public)?;
    if let (Some(run), true) = (run, succeeded) {
        catalog.run_evidence(run, stored.sequence)?;
    }
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
