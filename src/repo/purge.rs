//! Erasing a repository: everything goes, except what Object Lock or a legal hold keeps (a
//! held snapshot keeps its manifest, its packs, every index and its holds, so that it still
//! restores). What stays is reported with the date its lock ends; a later run finishes the
//! job. Manifests go first, so that at no point does the repository name data it lacks;
//! the config goes last, and only when nothing else is left.

use super::prune::{Held, Locked};
use super::{Repository, Result};
use crate::backend::{self, ObjectKind};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PurgeReport {
    /// Objects deleted (or that would be, on a dry run), by kind (`data`, `index`, …).
    pub deleted: BTreeMap<String, u64>,
    pub bytes_deleted: u64,
    /// Snapshots kept by a legal hold (with what they need).
    pub held: Vec<Held>,
    /// Objects kept by Object Lock, with until when.
    pub still_locked: Vec<Locked>,
    /// Objects left in all (held or locked): 0 once the repository is gone.
    pub objects_left: u64,
    pub dry_run: bool,
}

impl PurgeReport {
    pub fn complete(&self) -> bool {
        self.objects_left == 0
    }

    pub fn objects_deleted(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// Deletes everything of `repo` that no hold or lock keeps.
pub fn purge(repo: &Repository, dry_run: bool) -> Result<PurgeReport> {
    let backend = repo.backend();
    let mut report = PurgeReport {
        dry_run,
        ..Default::default()
    };
    let pins = super::hold::pins(backend.as_ref(), &repo.config.id)?;
    // What the held snapshots need to restore.
    let mut keep: HashSet<(ObjectKind, String)> = HashSet::new();
    for (id, reason) in &pins {
        report.held.push(Held {
            snapshot: *id,
            reason: reason.clone(),
        });
        keep.insert((ObjectKind::Snapshot, id.to_hex()));
        if let Ok(s) = repo.load_snapshot(id) {
            for p in &s.manifest.packs {
                keep.insert((ObjectKind::Data, p.to_hex()));
            }
        }
    }
    let held = !pins.is_empty();
    let order = [
        ObjectKind::Snapshot,
        ObjectKind::Data,
        ObjectKind::Index,
        ObjectKind::Session,
        ObjectKind::Mark,
        ObjectKind::Evidence,
        ObjectKind::Hold,
    ];
    for kind in order {
        for (name, size) in backend.list(kind)? {
            // A held snapshot keeps every index (which covers which pack is only known with
            // a key) and its holds.
            let kept = keep.contains(&(kind, name.clone()))
                || (held && matches!(kind, ObjectKind::Index | ObjectKind::Hold));
            if kept {
                report.objects_left += 1;
                continue;
            }
            erase(backend.as_ref(), kind, &name, size, &mut report)?;
        }
    }
    // The config last, once nothing else is left: until then the repository stays readable.
    for (name, size) in backend.list(ObjectKind::Config)? {
        if report.objects_left > 0 {
            report.objects_left += 1;
            continue;
        }
        erase(
            backend.as_ref(),
            ObjectKind::Config,
            &name,
            size,
            &mut report,
        )?;
    }
    Ok(report)
}

/// Deletes one object of `size` bytes (counts it, on a dry run), unless Object Lock keeps it:
/// then it is reported with its date, also when the listing did not show the lock.
fn erase(
    backend: &dyn backend::Backend,
    kind: ObjectKind,
    name: &str,
    size: u64,
    report: &mut PurgeReport,
) -> Result<()> {
    let locked = match backend.locked_until(kind, name)? {
        Some(until) => Some(until),
        None if report.dry_run => None,
        None => match backend.delete(kind, name) {
            Ok(()) => None,
            Err(backend::Error::Locked { until, .. }) => Some(until),
            Err(e) => return Err(e.into()),
        },
    };
    match locked {
        Some(until) => {
            report.still_locked.push(Locked {
                object: kind.path(name),
                until,
            });
            report.objects_left += 1;
        }
        None => {
            *report.deleted.entry(kind.dir().to_string()).or_default() += 1;
            report.bytes_deleted += size;
        }
    }
    Ok(())
}
