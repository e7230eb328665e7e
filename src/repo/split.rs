//! Splitting a repository: a set of its snapshots moved (`transfer`) into another
//! repository, re-encrypted to that one's recipients, each tagged `migrated-from` = its id in
//! the source; their holds follow them. The source is only read. (`migrate split-tenants`
//! splits the shared repository of earlier versions this way, one destination per tenant.)
//!
//! Resumable: a snapshot whose successor (by its tag) is in the destination is done; its
//! holds are placed again if a run was cut off between the two.

use super::ids::SnapshotId;
use super::session::{Session, SessionKind, Timing};
use super::snapshot::Snapshot;
use super::transfer::{transfer, Held};
use super::{hold, ChunkMap, Repository, Result};
use crate::progress::Progress;
use crate::repo::crypto::SecretKey;
use std::collections::{BTreeSet, HashMap};

pub const MIGRATED_TAG: &str = "migrated-from";

/// What moving one set of snapshots did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SplitReport {
    /// Snapshots moved now, and those an earlier run moved.
    pub migrated: u64,
    pub already: u64,
    pub chunks_sent: u64,
    pub chunks_reused: u64,
    pub bytes_written: u64,
    pub holds_placed: u64,
    /// Ids in the source → ids in the destination.
    pub renamed: Vec<(String, String)>,
    /// The indexes written, with their packs (for the catalog).
    #[serde(skip)]
    pub indexes: Vec<(super::ids::IndexId, Vec<super::index::PackInfo>)>,
}

/// Moves `snapshots` (of `src`, whose chunks `map` locates) into `dst`, with their holds.
pub fn split_into(
    src: &Repository,
    key: &SecretKey,
    dst: &Repository,
    signing: &SecretKey,
    snapshots: &[&Snapshot],
    map: &ChunkMap,
    progress: &dyn Progress,
) -> Result<SplitReport> {
    let mut report = SplitReport::default();
    let session = Session::begin(
        dst.backend().clone(),
        &dst.config.id,
        SessionKind::Backup,
        Timing::default(),
        progress,
    )?;
    let (present, _) = dst.snapshots()?;
    // Source id → destination id, for what earlier runs moved.
    let mut moved: HashMap<SnapshotId, SnapshotId> = present
        .iter()
        .filter_map(|s| {
            let from = s.manifest.tags.get(MIGRATED_TAG)?.parse().ok()?;
            Some((from, s.id))
        })
        .collect();
    // Whatever the destination holds already (earlier runs, its own backups) is not stored
    // twice.
    let packs: BTreeSet<_> = present
        .iter()
        .flat_map(|s| s.manifest.packs.iter().copied())
        .collect();
    let mut held = Held::of_packs(dst, key, &packs)?;
    for s in snapshots {
        if moved.contains_key(&s.id) {
            report.already += 1;
            continue;
        }
        let tags = [(MIGRATED_TAG, s.id.to_hex())];
        let (new, t) = transfer(
            src, key, dst, signing, s, map, &tags, &mut held, &session, progress,
        )?;
        report.migrated += 1;
        report.chunks_sent += t.chunks_sent;
        report.chunks_reused += t.chunks_reused;
        report.bytes_written += t.bytes_written;
        report.renamed.push((s.id.to_hex(), new.id.to_hex()));
        report.indexes.extend(t.index);
        moved.insert(s.id, new.id);
    }
    session.end()?;
    // The holds, placed as they were (reason and time), once each.
    let have: BTreeSet<(SnapshotId, String)> = hold::list(dst.backend().as_ref(), &dst.config.id)?
        .objects
        .into_iter()
        .map(|(_, h)| (h.snapshot, h.reason))
        .collect();
    for (_, h) in hold::list(src.backend().as_ref(), &src.config.id)?.objects {
        let Some(to) = moved.get(&h.snapshot) else {
            continue;
        };
        if !snapshots.iter().any(|s| s.id == h.snapshot) || have.contains(&(*to, h.reason.clone()))
        {
            continue;
        }
        hold::place(
            dst.backend().as_ref(),
            &dst.config.id,
            *to,
            &h.reason,
            h.placed,
        )?;
        report.holds_placed += 1;
    }
    Ok(report)
}
