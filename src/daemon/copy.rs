//! The daily disaster-recovery copy of a source to its second site.

use super::*;

/// The daily disaster-recovery copy: the source's newest snapshot, from its first target to
/// its `copy_to` target (which becomes a replica of that repository), then the copy tier's
/// retention there.
pub(super) fn copy_job(
    shared: &Shared,
    job: &catalog::jobs::Job,
    source_name: &str,
) -> anyhow::Result<String> {
    let config = &shared.loaded.config;
    let source = shared.source(source_name)?;
    let (from_name, to_name) = match (source.targets.get_ref().first(), &source.copy_to) {
        (Some(from), Some(to)) => (from.clone(), to.get_ref().clone()),
        _ => anyhow::bail!("source '{source_name}' has no target or no copy_to"),
    };
    let tier = &shared.schedules[&format!("{source_name}{COPY_SUFFIX}")];
    let tenant = source.tenant.get_ref();
    // Both repositories' turns, taken in name order so that two copies in opposite
    // directions cannot wait for each other.
    let mut names = [&from_name, &to_name];
    names.sort();
    let turns: Vec<Turn> = names
        .iter()
        .map(|n| shared.repositories.take(n, tenant))
        .collect();
    let _held: Vec<_> = turns.iter().map(Turn::hold).collect();
    let (backend, fresh) = config.targets[&from_name].open_or_create(tenant)?;
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
    let (dest, fresh) = config.targets[&to_name].open_or_create(tenant)?;
    let copy_to = |dest: &Arc<dyn crate::backend::Backend>| {
        crate::repo::copy::copy(
            &repo,
            dest,
            std::slice::from_ref(&newest),
            &crate::progress::Silent,
        )
    };
    // A copy into a blank store creates the repository there: one instance at a time.
    let report = if fresh || Repository::is_blank(dest.as_ref())? {
        let catalog = shared.catalog()?;
        catalog.exclusive(&format!("repository/{to_name}/{tenant}"), || copy_to(&dest))??
    } else {
        copy_to(&dest)?
    };

    // Retention at the second site, for this source.
    let copy = Repository::open(dest, shared.signing.public())?;
    let _lock = catalog::lock_repository(&shared.data_dir, &copy.config.id)?;
    let mut catalog = shared.catalog()?;
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
