//! Copying snapshots between repositories (local to S3, S3 to S3, S3 to local).
//!
//! The destination is a replica of the source: the same config object, so the same repository
//! id, keys and signer. Objects travel byte for byte, each checked against its SHA-256 name on
//! the way, so no key is needed: a disaster-recovery copy job never holds a decryption key.
//! Only packs the destination lacks are sent; snapshots it already has are skipped.
//!
//! Order is packs, then indexes, then manifests: a manifest is the commit point, so a copy cut
//! off at any moment leaves the destination healthy, and the next copy reuses what arrived.

use super::ids::{PackId, SnapshotId};
use super::lock::{ensure_locked, lock_target, LockStats, NoMemory};
use super::session::{Session, SessionKind, Timing};
use super::{check_name, Error, Repository, Result, Snapshot};
use crate::backend::{Backend, ObjectKind};
use crate::progress::Progress;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CopyReport {
    /// Snapshots written to the destination.
    pub snapshots_copied: Vec<SnapshotId>,
    /// Snapshots the destination had already.
    pub snapshots_present: Vec<SnapshotId>,
    pub packs_copied: u64,
    pub packs_present: u64,
    pub bytes_copied: u64,
    pub indexes_copied: u64,
    /// Whether the destination was empty and received the source's config.
    pub created: bool,
    /// Objects already at the destination whose Object Lock was set or lengthened.
    pub locks: LockStats,
}

/// Makes `dest` a replica of `source` if it is empty; refuses if it is another repository.
/// Returns whether it was created.
pub fn prepare_destination(source: &Repository, dest: &dyn Backend) -> Result<bool> {
    let src_config = source.config_id.to_hex();
    let existing = dest.list(ObjectKind::Config)?;
    match existing.as_slice() {
        [] => {
            let data = source.backend().get(ObjectKind::Config, &src_config)?;
            check_name(ObjectKind::Config, &src_config, &data)?;
            dest.put(ObjectKind::Config, &src_config, data)?;
            Ok(true)
        }
        [(name, _)] if *name == src_config => Ok(false),
        _ => Err(Error::Target(format!(
            "{} holds another repository (config {}), not a copy of repository {}; copy into \
             an empty place or into an earlier copy of this repository",
            dest.location(),
            existing
                .iter()
                .map(|(n, _)| &n[..n.len().min(12)])
                .collect::<Vec<_>>()
                .join(", "),
            source.config.id
        ))),
    }
}

/// Copies `snapshots` (all of the source's when empty) from `source` to `dest`.
pub fn copy(
    source: &Repository,
    dest: &Arc<dyn Backend>,
    snapshots: &[Snapshot],
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let mut report = CopyReport {
        created: prepare_destination(source, dest.as_ref())?,
        ..Default::default()
    };
    // Packs keep their names in a copy, so what the destination already has is reused as it
    // is: announced before looking, this copy holds up every sweep there until it is done, and
    // it starts only once no sweep is running.
    let session = Session::begin(
        dest.clone(),
        &source.config.id,
        SessionKind::Copy,
        Timing::default(),
        progress,
    )?;
    let have_snapshots: HashSet<String> = dest
        .list(ObjectKind::Snapshot)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let (todo, present): (Vec<&Snapshot>, Vec<&Snapshot>) = snapshots
        .iter()
        .partition(|s| !have_snapshots.contains(&s.id.to_hex()));
    report.snapshots_present = present.iter().map(|s| s.id).collect();
    if todo.is_empty() {
        return Ok(report);
    }
    // On a destination with Object Lock, what the copied snapshots need is locked as long as
    // the longest of their retentions: new objects as they arrive, present ones before the
    // manifests are committed.
    let lock_dates = todo
        .iter()
        .filter_map(|s| s.manifest.retain_until)
        .max()
        .filter(|_| dest.object_lock())
        .map(|needed| (needed, lock_target(chrono::Utc::now(), needed)));
    dest.lock_new_objects_until(lock_dates.map(|(_, target)| target));

    // 1. Packs the destination lacks.
    let have_packs: HashSet<String> = dest
        .list(ObjectKind::Data)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let needed_packs: BTreeSet<PackId> = todo
        .iter()
        .flat_map(|s| s.manifest.packs.iter().copied())
        .collect();
    let sizes: HashMap<String, u64> = source
        .backend()
        .list(ObjectKind::Data)?
        .into_iter()
        .collect();
    let missing: Vec<String> = needed_packs
        .iter()
        .map(|p| p.to_hex())
        .filter(|p| !have_packs.contains(p))
        .collect();
    report.packs_present = (needed_packs.len() - missing.len()) as u64;
    for name in &missing {
        if !sizes.contains_key(name) {
            return Err(Error::Corrupt {
                object: ObjectKind::Data.path(name),
                reason: "missing in the source, which a snapshot being copied needs; run \
                         'lifeboat check' on the source"
                    .into(),
            });
        }
    }
    let total: u64 = missing.iter().filter_map(|n| sizes.get(n)).sum();
    progress.phase("copying packs", Some(total), true);
    let copied = transfer(source.backend(), dest, ObjectKind::Data, &missing, progress)?;
    report.packs_copied = missing.len() as u64;
    report.bytes_copied += copied;

    // 2. Indexes: all of them (they are small). An index may list packs of snapshots not
    //    copied; those entries are never needed here.
    let have_indexes: HashSet<String> = dest
        .list(ObjectKind::Index)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let indexes: Vec<String> = source
        .backend()
        .list(ObjectKind::Index)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !have_indexes.contains(n))
        .collect();
    progress.phase("copying indexes", Some(indexes.len() as u64), false);
    report.bytes_copied += transfer(
        source.backend(),
        dest,
        ObjectKind::Index,
        &indexes,
        progress,
    )?;
    report.indexes_copied = indexes.len() as u64;
    if let Some((needed, target)) = lock_dates {
        let mut present: Vec<(ObjectKind, String)> =
            vec![(ObjectKind::Config, source.config_id.to_hex())];
        present.extend(have_indexes.iter().map(|n| (ObjectKind::Index, n.clone())));
        present.extend(
            needed_packs
                .iter()
                .map(|p| p.to_hex())
                .filter(|p| have_packs.contains(p))
                .map(|p| (ObjectKind::Data, p)),
        );
        report.locks = ensure_locked(dest.as_ref(), &mut NoMemory, &present, needed, target)?;
    }

    // 3. Manifests, last: each one commits its snapshot at the destination.
    session.guard()?;
    let manifests: Vec<String> = todo.iter().map(|s| s.id.to_hex()).collect();
    progress.phase("copying snapshots", Some(manifests.len() as u64), false);
    report.bytes_copied += transfer(
        source.backend(),
        dest,
        ObjectKind::Snapshot,
        &manifests,
        progress,
    )?;
    report.snapshots_copied = todo.iter().map(|s| s.id).collect();
    // A session left behind goes stale and prune removes it.
    let _ = session.end();
    progress.finish();
    Ok(report)
}

/// Moves objects of one kind, `dest.uploads()` at a time, each checked against its name.
/// Returns the bytes moved.
fn transfer(
    from: &Arc<dyn Backend>,
    to: &Arc<dyn Backend>,
    kind: ObjectKind,
    names: &[String],
    progress: &dyn Progress,
) -> Result<u64> {
    let queue = Mutex::new(names.iter());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let moved = std::sync::atomic::AtomicU64::new(0);
    let workers = to.uploads().max(1).min(names.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let next = queue.lock().map(|mut q| q.next().cloned()).unwrap_or(None);
                let Some(name) = next else { return };
                let result = from.get(kind, &name).map_err(Error::from).and_then(|data| {
                    check_name(kind, &name, &data)?;
                    let len = data.len() as u64;
                    to.put(kind, &name, data)?;
                    Ok(len)
                });
                match result {
                    Ok(n) => {
                        moved.fetch_add(n, Ordering::Relaxed);
                        progress.advance(if kind == ObjectKind::Data { n } else { 1 });
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(moved.into_inner()),
    }
}
