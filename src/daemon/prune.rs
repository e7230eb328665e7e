//! The scheduled prune of a target: each repository this daemon writes there, in turn.

use super::*;

/// A target's scheduled prune: each tenant's repository there in turn. It takes no turn on a
/// repository: prune works in two phases and leaves alone whatever a backup running
/// meanwhile may use.
pub(super) fn prune_job(
    shared: &Shared,
    job: &catalog::jobs::Job,
    target_name: &str,
) -> anyhow::Result<String> {
    let target = shared
        .loaded
        .config
        .targets
        .get(target_name)
        .ok_or_else(|| anyhow::anyhow!("target '{target_name}' is no longer configured"))?;
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for tenant in shared.loaded.config.tenants.keys() {
        // Another place's repository is pruned there, by whoever signs it.
        if shared.loaded.config.writer(target_name, tenant) != shared.site.as_deref() {
            continue;
        }
        let backend = match target.open_existing(tenant)? {
            Some(b) if !Repository::is_blank(b.as_ref())? => b,
            _ => continue,
        };
        match prune_repository(shared, job, backend, tenant, target_name) {
            Ok(summary) => summaries.push(format!("{tenant}: {summary}")),
            Err(e) => failures.push(format!("{tenant}: {e:#}")),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    if summaries.is_empty() {
        return Ok(format!("target '{target_name}' holds no repository yet"));
    }
    Ok(summaries.join("; "))
}

/// One repository's prune, recorded as a run.
fn prune_repository(
    shared: &Shared,
    job: &catalog::jobs::Job,
    backend: Arc<dyn crate::backend::Backend>,
    tenant: &str,
    target_name: &str,
) -> anyhow::Result<String> {
    use crate::repo::prune::{prune, PruneOptions};
    let repo = Repository::open(backend, shared.signing.public())?;
    check_pinned(shared, &repo)?;
    let mut catalog = shared.catalog()?;
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
            drop(memory);
            if let Ok(bytes) = crate::backend::stored_bytes(repo.backend().as_ref()) {
                catalog.record_usage(tenant, target_name, bytes, now)?;
            }
            Ok(summary)
        }
        Err(e) => {
            memory.finish_upkeep(run, Err(&e.to_string()), 0, now)?;
            Err(e.into())
        }
    }
}
