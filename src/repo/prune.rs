//! Forgetting snapshots, and pruning the data no remaining snapshot needs.
//!
//! The caller holds the repository's lock, so no backup of this service runs meanwhile.
//! Neither ever asks the store to delete an object under Object Lock: such objects are kept
//! and reported with the date their lock ends.
//!
//! Indexes are not rewritten: an index whose packs are all gone is deleted, and one that still
//! lists some removed packs stays; readers prefer locations in packs a manifest names (see
//! `ChunkMap::insert`), and the catalog forgets the removed packs, so no backup deduplicates
//! against them.

use super::ids::{IndexId, PackId, SnapshotId};
use super::{Error, Repository, Result, Snapshot};
use crate::backend::{self, ObjectKind};
use crate::progress::Progress;
use crate::schedule::retention;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// What prune needs from the catalog.
pub trait PruneMemory {
    /// Which packs each index covers, as far as the catalog knows.
    fn index_coverage(&mut self) -> Result<HashMap<IndexId, Vec<PackId>>>;
    /// Packs deleted from the repository: never deduplicate against them again.
    fn forget_packs(&mut self, packs: &[PackId]) -> Result<()>;
    /// A snapshot whose manifest was deleted.
    fn forget_snapshot(&mut self, id: &SnapshotId) -> Result<()>;
}

/// An object kept because it is under Object Lock.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Locked {
    pub object: String,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ForgetReport {
    pub forgotten: Vec<SnapshotId>,
    pub still_locked: Vec<Locked>,
    pub dry_run: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct PruneReport {
    pub snapshots: u64,
    pub packs_kept: u64,
    pub packs_deleted: u64,
    pub bytes_freed: u64,
    pub indexes_deleted: u64,
    pub still_locked: Vec<Locked>,
    pub dry_run: bool,
}

/// Applies a retention policy to the snapshots of one source: the decisions (newest first,
/// with reasons) and the snapshots the policy forgets.
pub fn by_policy<Tz: chrono::TimeZone>(
    snapshots: &[&Snapshot],
    policy: &retention::Policy,
    tz: &Tz,
    now: DateTime<Utc>,
) -> (Vec<retention::Decision>, Vec<Snapshot>) {
    let candidates: Vec<retention::Candidate> = snapshots
        .iter()
        .map(|s| retention::Candidate {
            id: s.id.to_hex(),
            time: s.manifest.time,
            pinned: None,
        })
        .collect();
    let decisions = retention::plan(&candidates, policy, tz, now);
    let forgotten: HashSet<&str> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.as_str())
        .collect();
    let doomed = snapshots
        .iter()
        .filter(|s| forgotten.contains(s.id.to_hex().as_str()))
        .map(|s| (*s).clone())
        .collect();
    (decisions, doomed)
}

/// Deletes the manifests of `snapshots`, except those still locked.
pub fn forget(
    repo: &Repository,
    memory: &mut dyn PruneMemory,
    snapshots: &[Snapshot],
    dry_run: bool,
) -> Result<ForgetReport> {
    let backend = repo.backend();
    let mut report = ForgetReport {
        dry_run,
        ..Default::default()
    };
    for s in snapshots {
        let name = s.id.to_hex();
        if let Some(until) = backend.locked_until(ObjectKind::Snapshot, &name)? {
            report.still_locked.push(Locked {
                object: ObjectKind::Snapshot.path(&name),
                until,
            });
            continue;
        }
        if !dry_run {
            delete(
                backend.as_ref(),
                ObjectKind::Snapshot,
                &name,
                &mut report.still_locked,
            )?;
            memory.forget_snapshot(&s.id)?;
        }
        report.forgotten.push(s.id);
    }
    Ok(report)
}

/// Deletes the packs no snapshot needs, then the indexes all of whose packs are gone.
pub fn prune(
    repo: &Repository,
    memory: &mut dyn PruneMemory,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let backend = repo.backend();
    let (snapshots, bad) = repo.snapshots()?;
    if let Some(e) = bad.into_iter().next() {
        return Err(Error::Invalid(format!(
            "{e}; prune cannot know what an unreadable snapshot needs, so it deletes nothing \
             (run 'lifeboat check' first)"
        )));
    }
    let referenced: HashSet<String> = snapshots
        .iter()
        .flat_map(|s| s.manifest.packs.iter().map(|p| p.to_hex()))
        .collect();
    let stored = backend.list(ObjectKind::Data)?;
    let mut report = PruneReport {
        snapshots: snapshots.len() as u64,
        dry_run,
        ..Default::default()
    };
    // Read before anything changes: the catalog forgets deleted packs as they go.
    let coverage = memory.index_coverage()?;

    let mut doomed = Vec::new();
    for (name, size) in &stored {
        if referenced.contains(name) {
            report.packs_kept += 1;
            continue;
        }
        match backend.locked_until(ObjectKind::Data, name)? {
            Some(until) => report.still_locked.push(Locked {
                object: ObjectKind::Data.path(name),
                until,
            }),
            None => doomed.push((name.clone(), *size)),
        }
    }
    progress.phase("pruning", Some(doomed.len() as u64), false);
    let mut gone: HashSet<String> = HashSet::new();
    for (name, size) in &doomed {
        if !dry_run {
            let id: PackId = name.parse().map_err(Error::Invalid)?;
            if !delete(
                backend.as_ref(),
                ObjectKind::Data,
                name,
                &mut report.still_locked,
            )? {
                continue;
            }
            memory.forget_packs(&[id])?;
        }
        gone.insert(name.clone());
        report.packs_deleted += 1;
        report.bytes_freed += size;
        progress.advance(1);
    }

    let remaining: HashSet<&String> = stored
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !gone.contains(*n))
        .collect();
    for (name, _) in backend.list(ObjectKind::Index)? {
        let Ok(id) = name.parse::<IndexId>() else {
            continue;
        };
        let Some(packs) = coverage.get(&id) else {
            continue; // unknown to the catalog: keep it
        };
        if packs.iter().any(|p| remaining.contains(&p.to_hex())) {
            continue;
        }
        if let Some(until) = backend.locked_until(ObjectKind::Index, &name)? {
            report.still_locked.push(Locked {
                object: ObjectKind::Index.path(&name),
                until,
            });
            continue;
        }
        if dry_run
            || delete(
                backend.as_ref(),
                ObjectKind::Index,
                &name,
                &mut report.still_locked,
            )?
        {
            report.indexes_deleted += 1;
        }
    }
    progress.finish();
    Ok(report)
}

/// Deletes one object; a lock found only now is reported, not an error. Returns whether the
/// object was deleted.
fn delete(
    backend: &dyn backend::Backend,
    kind: ObjectKind,
    name: &str,
    still_locked: &mut Vec<Locked>,
) -> Result<bool> {
    match backend.delete(kind, name) {
        Ok(()) => Ok(true),
        Err(backend::Error::Locked { until, .. }) => {
            still_locked.push(Locked {
                object: kind.path(name),
                until,
            });
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
