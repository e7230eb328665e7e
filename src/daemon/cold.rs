//! Cold backups of VM sources: triggered (`SOURCE>cold`, from the API or `lifeboat vm
//! cold-backup`) or on the source's tier (`cold-vm-quarterly`). The VM is shut down, its disks
//! are backed up to every target of the source while it is off, it is started again and
//! checked, and each target's evidence records the steps and the downtime.

use super::*;
use crate::hypervisor::{cold, health};

/// Whether a job key is a cold VM backup (not retried on failure: each try costs downtime).
pub(super) fn is_cold(shared: &Shared, key: &str) -> bool {
    key.ends_with(COLD_SUFFIX)
        || shared
            .loaded
            .config
            .sources
            .get(key)
            .is_some_and(|s| matches!(s.kind, SourceKind::Vm))
}

pub(super) fn cold_job(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source_name: &str,
) -> anyhow::Result<String> {
    let config = &shared.loaded.config;
    let source = shared.source(source_name)?;
    let vm = source
        .vm
        .as_ref()
        .filter(|_| matches!(source.kind, SourceKind::Vm))
        .ok_or_else(|| anyhow::anyhow!("source '{source_name}' is not a VM (kind vm)"))?;
    if !shared.runs(source) {
        anyhow::bail!("{}", elsewhere(source_name, source));
    }
    let tier = &shared.loaded.tiers[source_name];
    // One cold backup of a VM at a time, whichever process runs it.
    let _vm_lock = catalog::lock_file(
        &shared.data_dir,
        &std::path::Path::new("vms").join(format!("{source_name}.lock")),
    )?
    .ok_or_else(|| {
        anyhow::anyhow!("another cold backup of {source_name} is running; the VM was not touched")
    })?;
    let driver = crate::hypervisor::driver(source_name, vm)?;
    let say = |m: &str| log(&shared.clock, &format!("{source_name}: {m}"));
    let now = || shared.clock.now();
    let plan = cold::Plan {
        vm: driver.as_ref(),
        disks: vm.disks.clone(),
        shutdown_timeout: vm.shutdown_timeout(),
        force_off: vm.force_off,
        health: vm.health.as_ref().map(health::Check::from_config),
        now: &now,
        log: &say,
    };
    let started = shared.clock.now();
    let report = cold::run(&plan, |disks| {
        let mut written = Vec::new();
        for target_name in source.targets.get_ref() {
            let target = &config.targets[target_name];
            let turn = shared
                .repositories
                .take(target_name, source.tenant.get_ref());
            let _turn = turn.hold();
            let mut images = crate::source::vm::DiskImages::new(source_name, disks.to_vec());
            say(&format!(
                "backing up {} disk(s) to {target_name}",
                disks.len()
            ));
            written.push((
                target_name.clone(),
                write_backup(
                    shared,
                    job,
                    source,
                    tier,
                    target_name,
                    target,
                    Some(&mut images),
                ),
            ));
        }
        Ok::<_, String>(written)
    });
    let report = match report {
        Ok(r) => r,
        Err(refused) => {
            // Nothing was backed up; the failure is evidence all the same.
            let mut catalog = shared.catalog()?;
            let note = backup_evidence(
                shared,
                &mut catalog,
                None,
                None,
                source_name,
                source,
                tier,
                super::scheduled_slot(job),
                started,
                Err(&refused.0),
                None,
                None,
            )?;
            anyhow::bail!("{}{note}", refused.0);
        }
    };
    let facts = ColdFacts {
        timeline: report.timeline,
        downtime: report.downtime,
        came_back: report.came_back,
        forced: report.forced,
        vm: driver.describe(),
    };
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for (target_name, written) in report.backup.unwrap_or_default() {
        match written.and_then(|w| finish_backup(shared, job, source, tier, w, Some(&facts))) {
            Ok(summary) => summaries.push(format!("{target_name}: {summary}")),
            Err(e) => failures.push(format!("target '{target_name}': {e:#}")),
        }
    }
    let downtime = facts
        .downtime
        .map(|d| format!(", down {:.1} s", d.num_milliseconds() as f64 / 1000.0))
        .unwrap_or_default();
    if let Err(why) = &facts.came_back {
        failures.insert(
            0,
            format!("CRITICAL: {} did not come back: {why}", facts.vm),
        );
    }
    if failures.is_empty() {
        Ok(format!("cold backup{downtime}; {}", summaries.join("; ")))
    } else {
        anyhow::bail!(
            "cold backup{downtime}: {}{}",
            failures.join("; "),
            if summaries.is_empty() {
                String::new()
            } else {
                format!(" (done: {})", summaries.join("; "))
            }
        )
    }
}

/// A cold backup run at once in this process (`lifeboat vm cold-backup`), recorded as a job;
/// the daemon need not run. Returns the summary, or what went wrong.
pub fn cold_backup_now(loaded: Loaded, data_dir: PathBuf, source: &str) -> Result<String, String> {
    let kind_ok = loaded
        .config
        .sources
        .get(source)
        .map(|s| matches!(s.kind, SourceKind::Vm));
    match kind_ok {
        None => return Err(format!("source '{source}' is not configured")),
        Some(false) => {
            return Err(format!(
                "source '{source}' is not a VM (kind vm); back it up with the daemon or \
                 `lifeboat backup`"
            ))
        }
        Some(true) => {}
    }
    let shared = Shared::new(Work {
        loaded,
        drills: Vec::new(),
        data_dir,
        clock: Clock::real(),
        site: None,
    })
    .map_err(|e| e.to_string())?;
    let mut catalog = shared.catalog().map_err(|e| e.to_string())?;
    let job = catalog
        .start_now(
            &format!("{source}{COLD_SUFFIX}"),
            IMMEDIATE,
            shared.clock.now(),
        )
        .map_err(|e| e.to_string())?;
    let outcome = cold_job(&shared, &job, source).map_err(|e| format!("{e:#}"));
    catalog
        .finish_with(
            job.id,
            outcome.as_ref().map(|_| ()).map_err(String::as_str),
            shared.clock.now(),
            false,
        )
        .map_err(|e| e.to_string())?;
    outcome
}
