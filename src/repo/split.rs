//! Splitting a shared repository (every tenant's snapshots in one, as Lifeboat stored them
//! before each tenant had a repository of its own) into the tenants' repositories: each
//! snapshot is moved (`transfer`) into its tenant's repository, re-encrypted to that
//! repository's recipients, tagged `migrated-from` = its id in the shared one; its holds
//! follow it. The shared repository is only read.
//!
//! Resumable: a snapshot whose successor (by its tag) is in the tenant's repository is done;
//! its holds are placed again if a run was cut off between the two.

use super::ids::SnapshotId;
use super::session::{Session, SessionKind, Timing};
use super::snapshot::Snapshot;
use super::transfer::{transfer, Held};
use super::{hold, ChunkMap, Repository, Result};
use crate::progress::Progress;
use crate::repo::crypto::SecretKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const MIGRATED_TAG: &str = "migrated-from";

/// Which tenant a snapshot of a shared repository belongs to: its `tenant` tag, else the
/// tenant of the source its `source` tag names (`tenant_of_source`).
pub fn tenant_of(s: &Snapshot, tenant_of_source: &BTreeMap<String, String>) -> Option<String> {
    if let Some(t) = s.manifest.tags.get("tenant").filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    s.manifest
        .tags
        .get("source")
        .and_then(|source| tenant_of_source.get(source))
        .cloned()
}

/// What moving one tenant's snapshots did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SplitReport {
    /// Snapshots moved now, and those an earlier run moved.
    pub migrated: u64,
    pub already: u64,
    pub chunks_sent: u64,
    pub chunks_reused: u64,
    pub bytes_written: u64,
    pub holds_placed: u64,
    /// Ids in the shared repository → ids in the tenant's.
    pub renamed: Vec<(String, String)>,
    /// The indexes written, with their packs (for the catalog).
    #[serde(skip)]
    pub indexes: Vec<(super::ids::IndexId, Vec<super::index::PackInfo>)>,
}

/// Moves `snapshots` (one tenant's, of the shared repository `src`, whose chunks `map`
/// locates) into `dst`, the tenant's repository on the same target, with their holds.
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
    // Shared id → the tenant repository's, for what earlier runs moved.
    let mut moved: HashMap<SnapshotId, SnapshotId> = present
        .iter()
        .filter_map(|s| {
            let from = s.manifest.tags.get(MIGRATED_TAG)?.parse().ok()?;
            Some((from, s.id))
        })
        .collect();
    // Whatever the tenant's repository holds already (earlier runs, backups since the
    // upgrade) is not stored twice.
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
