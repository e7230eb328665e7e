//! Repairs: indexes rebuilt from the packs, and snapshots saved from lost data.
//!
//! **Indexes.** A pack's plaintext is one zstd frame per chunk, and a chunk's id is the
//! SHA-256 of its plaintext, so the packs alone say what every index should. `repair_index`
//! scans each pack no readable index covers, writes new signed indexes for them, and only
//! then removes the damaged indexes they replace.
//!
//! **Snapshots.** A snapshot whose data is partly gone (a pack lost or damaged, a chunk no
//! index lists) still has what remains. `repair_snapshots` writes, for each such snapshot, a
//! new one with the files whose data is all there, tagged `repaired-from=ID`, and lists what
//! was lost. The original stays (forgetting it is the caller's, through `prune::forget`, so
//! holds and locks apply); a snapshot whose tree itself is lost cannot be saved and is only
//! reported.

use super::ids::{ChunkId, IndexId, PackId, SnapshotId};
use super::index::{PackEntry, PackInfo};
use super::pack::PackBuilder;
use super::session::{Session, SessionKind, Timing};
use super::snapshot::{Manifest, Snapshot, SnapshotStats, SNAPSHOT_FORMAT};
use super::tree::{ChunkRef, Entry, EntryKind};
use super::{check_name, crypto, Error, Repository, Result};
use crate::backend::ObjectKind;
use crate::progress::Progress;
use crate::repo::crypto::SecretKey;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Packs per new index.
const PACKS_PER_INDEX: usize = 1000;

/// What a pack holds, read from the pack itself.
pub fn scan_pack(repo: &Repository, key: &SecretKey, id: &PackId) -> Result<PackInfo> {
    let name = id.to_hex();
    let stored = repo.backend().get(ObjectKind::Data, &name)?;
    check_name(ObjectKind::Data, &name, &stored)?;
    let plain = crypto::decrypt(key, None, &stored).map_err(|e| Error::Corrupt {
        object: ObjectKind::Data.path(&name),
        reason: e.to_string(),
    })?;
    let bad = |why: String| Error::Corrupt {
        object: ObjectKind::Data.path(&name),
        reason: why,
    };
    let mut entries = Vec::new();
    let mut offset = 0usize;
    while offset < plain.len() {
        let frame = &plain[offset..];
        let length = zstd::zstd_safe::find_frame_compressed_size(frame)
            .map_err(|_| bad(format!("no zstd frame at byte {offset}")))?;
        let raw = zstd::stream::decode_all(&frame[..length]).map_err(|e| {
            bad(format!(
                "the frame at byte {offset} does not decompress: {e}"
            ))
        })?;
        entries.push(PackEntry {
            chunk: ChunkId::of(&raw),
            offset: offset as u64,
            length: length as u64,
            raw_length: raw.len() as u64,
        });
        offset += length;
    }
    Ok(PackInfo {
        id: *id,
        size: stored.len() as u64,
        entries,
    })
}

#[derive(Debug, Default, serde::Serialize)]
pub struct IndexRepair {
    /// Indexes that were readable and kept.
    pub indexes_kept: u64,
    /// Damaged or unauthentic indexes, each with why.
    pub damaged: Vec<String>,
    /// Packs read to rebuild their index entries.
    pub packs_scanned: u64,
    pub chunks_found: u64,
    /// Packs that could not be read (damaged): their chunks are lost; `repair snapshots`
    /// saves what remains of the snapshots that need them.
    pub packs_unreadable: Vec<String>,
    /// New indexes, with the packs each covers (for the catalog).
    #[serde(skip)]
    pub written: Vec<(IndexId, Vec<PackInfo>)>,
    pub indexes_written: u64,
    /// Damaged indexes removed once their replacements were stored.
    pub indexes_removed: u64,
    /// Damaged indexes that could not be removed (Object Lock), with until when.
    pub still_locked: Vec<String>,
    pub dry_run: bool,
}

/// Rebuilds the index entries of every pack that no readable index covers, and removes the
/// damaged indexes afterwards.
pub fn repair_index(
    repo: &Repository,
    key: &SecretKey,
    signing: &SecretKey,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<IndexRepair> {
    repo.check_key(key)?;
    repo.check_signing_key(signing)?;
    let backend = repo.backend();
    let mut report = IndexRepair {
        dry_run,
        ..Default::default()
    };
    progress.phase("reading indexes", None, false);
    let mut covered: HashSet<PackId> = HashSet::new();
    let mut damaged = Vec::new();
    for id in repo.index_ids()? {
        match repo.load_index(key, &id) {
            Ok(packs) => {
                report.indexes_kept += 1;
                covered.extend(packs.iter().map(|p| p.id));
            }
            Err(e) if e.is_integrity() => {
                report.damaged.push(e.to_string());
                damaged.push(id);
            }
            Err(Error::Backend(e)) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let stored = backend.list(ObjectKind::Data)?;
    let todo: Vec<PackId> = stored
        .iter()
        .filter_map(|(name, _)| name.parse::<PackId>().ok())
        .filter(|p| !covered.contains(p))
        .collect();
    progress.phase("scanning packs", Some(todo.len() as u64), false);
    let mut found = Vec::new();
    for id in &todo {
        progress.advance(1);
        match scan_pack(repo, key, id) {
            Ok(info) => {
                report.packs_scanned += 1;
                report.chunks_found += info.entries.len() as u64;
                found.push(info);
            }
            Err(e) if e.is_integrity() => report.packs_unreadable.push(e.to_string()),
            // Removed by a prune since the listing.
            Err(Error::Backend(e)) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if dry_run {
        report.indexes_written = found.chunks(PACKS_PER_INDEX).count() as u64;
        report.indexes_removed = damaged.len() as u64;
        progress.finish();
        return Ok(report);
    }
    // The replacements first, then what they replace.
    for batch in found.chunks(PACKS_PER_INDEX) {
        let id = repo.write_index(signing, batch)?;
        report.written.push((id, batch.to_vec()));
        report.indexes_written += 1;
    }
    for id in damaged {
        match backend.delete(ObjectKind::Index, &id.to_hex()) {
            Ok(()) => report.indexes_removed += 1,
            Err(crate::backend::Error::Locked { until, .. }) => report.still_locked.push(format!(
                "{} (locked until {until})",
                ObjectKind::Index.path(&id.to_hex())
            )),
            Err(e) => return Err(e.into()),
        }
    }
    progress.finish();
    Ok(report)
}

/// One snapshot's repair.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotRepair {
    pub snapshot: String,
    /// Paths whose data is gone, in whole or in part.
    pub lost: Vec<String>,
    /// Why its data is gone: damaged or missing packs, chunks in no index.
    pub causes: Vec<String>,
    /// The new snapshot with what remains (none when nothing could be saved, or dry run).
    pub repaired: Option<String>,
    /// Whether the original was forgotten (`--forget`, after the repaired one is stored).
    pub forgotten: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SnapshotsRepair {
    /// Snapshots read, and of them those whose data is all there.
    pub checked: u64,
    pub intact: u64,
    pub repairs: Vec<SnapshotRepair>,
    /// The repaired snapshots, for the catalog.
    #[serde(skip)]
    pub written: Vec<Written>,
    pub dry_run: bool,
}

pub struct RepairSnapshotsOptions {
    /// The snapshots to look at; all when empty.
    pub snapshots: Vec<SnapshotId>,
    pub dry_run: bool,
}

/// Which packs can be read whole, and which cannot (with why), of `packs`.
fn readable_packs(repo: &Repository, packs: &BTreeSet<PackId>) -> Result<HashMap<PackId, String>> {
    let mut bad = HashMap::new();
    for id in packs {
        let name = id.to_hex();
        match repo.backend().get(ObjectKind::Data, &name) {
            Ok(data) => {
                if let Err(e) = check_name(ObjectKind::Data, &name, &data) {
                    bad.insert(*id, e.to_string());
                }
            }
            Err(e) if e.is_not_found() => {
                bad.insert(*id, format!("{} is missing", ObjectKind::Data.path(&name)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(bad)
}

/// Writes, for each snapshot whose data is partly gone, a new snapshot with what remains.
pub fn repair_snapshots(
    repo: &Repository,
    key: &SecretKey,
    signing: &SecretKey,
    options: &RepairSnapshotsOptions,
    progress: &dyn Progress,
) -> Result<SnapshotsRepair> {
    repo.check_key(key)?;
    repo.check_signing_key(signing)?;
    let mut report = SnapshotsRepair {
        dry_run: options.dry_run,
        ..Default::default()
    };
    let (all, _unreadable) = repo.snapshots()?;
    let chosen: Vec<Snapshot> = if options.snapshots.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|s| options.snapshots.contains(&s.id))
            .collect()
    };
    // A prune meanwhile leaves alone what the new snapshots reuse, as for a backup.
    let session = if options.dry_run {
        None
    } else {
        Some(Session::begin(
            repo.backend().clone(),
            &repo.config.id,
            SessionKind::Backup,
            Timing::default(),
            progress,
        )?)
    };
    progress.phase("checking snapshots", Some(chosen.len() as u64), false);
    for snapshot in chosen {
        progress.advance(1);
        report.checked += 1;
        let outcome = repair_one(repo, key, signing, &snapshot, options, session.as_ref())?;
        match outcome {
            None => report.intact += 1,
            Some((repair, written)) => {
                if let Some(w) = written {
                    report.written.push(w);
                }
                report.repairs.push(repair);
            }
        }
    }
    if let Some(s) = session {
        s.end()?;
    }
    progress.finish();
    Ok(report)
}

/// A repaired snapshot, and the index of the pack its new tree went into (if one was needed).
pub type Written = (Snapshot, Option<(IndexId, Vec<PackInfo>)>);

fn repair_one(
    repo: &Repository,
    key: &SecretKey,
    signing: &SecretKey,
    snapshot: &Snapshot,
    options: &RepairSnapshotsOptions,
    session: Option<&Session>,
) -> Result<Option<(SnapshotRepair, Option<Written>)>> {
    let packs: BTreeSet<PackId> = snapshot.manifest.packs.iter().copied().collect();
    let map = repo.chunk_map(key, &packs.iter().copied().collect())?;
    let bad_packs = readable_packs(repo, &packs)?;
    let usable = |chunk: &ChunkId| -> std::result::Result<PackId, String> {
        match map.chunks.get(chunk) {
            None => Err(format!("chunk {chunk} is listed in no readable index")),
            Some((pack, _)) => match bad_packs.get(pack) {
                Some(why) => Err(why.clone()),
                None => Ok(*pack),
            },
        }
    };
    let mut causes: BTreeSet<String> = BTreeSet::new();
    let repair = |lost: Vec<String>, repaired: Option<String>, forgotten: bool| SnapshotRepair {
        snapshot: snapshot.id.to_hex(),
        lost,
        causes: Vec::new(),
        repaired,
        forgotten,
    };
    // The tree first: without it nothing can be saved.
    for chunk in &snapshot.manifest.tree {
        if let Err(why) = usable(chunk) {
            causes.insert(why);
        }
    }
    if !causes.is_empty() {
        let mut r = repair(
            vec!["(the whole snapshot: its tree is lost)".into()],
            None,
            false,
        );
        r.causes = causes.into_iter().collect();
        return Ok(Some((r, None)));
    }
    let mut reader = super::ChunkReader::new(repo, key, &map);
    let entries = repo.read_tree(&mut reader, snapshot)?;
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut lost: Vec<String> = Vec::new();
    let mut lost_paths: HashSet<Vec<u8>> = HashSet::new();
    let mut used: BTreeSet<PackId> = BTreeSet::new();
    for e in entries {
        match &e.kind {
            EntryKind::File { chunks } => {
                let mut packs_of_file = Vec::new();
                let mut whole = true;
                for c in chunks {
                    if let ChunkRef::Data { id, .. } = c {
                        match usable(id) {
                            Ok(p) => packs_of_file.push(p),
                            Err(why) => {
                                causes.insert(why);
                                whole = false;
                            }
                        }
                    }
                }
                if whole {
                    used.extend(packs_of_file);
                    kept.push(e);
                } else {
                    lost.push(e.path_lossy());
                    lost_paths.insert(e.path.clone());
                }
            }
            EntryKind::Hardlink { target } if lost_paths.contains(target) => {
                lost.push(e.path_lossy());
            }
            _ => kept.push(e),
        }
    }
    if lost.is_empty() {
        return Ok(None);
    }
    let mut r = repair(lost, None, false);
    r.causes = causes.into_iter().collect();
    if options.dry_run {
        return Ok(Some((r, None)));
    }
    // The new tree, stored in a pack of its own (tree chunks the repository already has in
    // a readable pack are reused).
    let tree_bytes = super::tree::serialize(&kept);
    let mut tree = Vec::new();
    let mut builder = PackBuilder::new(repo.config.zstd_level, tree_bytes.len());
    let mut queued = HashSet::new();
    for piece in repo.config.chunker.chunk_slice(&tree_bytes) {
        let id = ChunkId::of(piece);
        tree.push(id);
        if let Ok(pack) = usable(&id) {
            used.insert(pack);
        } else if queued.insert(id) {
            builder.add(id, piece)?;
        }
    }
    let mut new_index = None;
    let mut bytes_added = 0;
    if !builder.is_empty() {
        let (info, sealed) = builder.seal(repo.recipients())?;
        bytes_added = sealed.len() as u64;
        repo.backend()
            .put(ObjectKind::Data, &info.id.to_hex(), sealed)?;
        used.insert(info.id);
        let index = repo.write_index(signing, std::slice::from_ref(&info))?;
        new_index = Some((index, vec![info]));
    }
    let m = &snapshot.manifest;
    let mut tags = m.tags.clone();
    tags.insert("repaired-from".into(), snapshot.id.to_hex());
    let files = kept
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. } | EntryKind::Hardlink { .. }))
        .count() as u64;
    let stats = SnapshotStats {
        files,
        dirs: kept.iter().filter(|e| e.kind == EntryKind::Dir).count() as u64,
        symlinks: kept
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Symlink { .. }))
            .count() as u64,
        bytes: kept
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .map(|e| e.size)
            .sum(),
        bytes_read: 0,
        bytes_added,
        bytes_new: 0,
        packs_added: u64::from(bytes_added > 0),
        duration_ms: 0,
    };
    let mut details = m.details.clone();
    details.insert("repaired_lost_entries".into(), r.lost.len().to_string());
    let manifest = Manifest {
        format: SNAPSHOT_FORMAT.into(),
        version: super::FORMAT_VERSION,
        repository: repo.config.id.clone(),
        time: m.time,
        hostname: m.hostname.clone(),
        paths: m.paths.clone(),
        tags,
        parent: m.parent,
        tree,
        packs: used.into_iter().collect(),
        stats,
        retain_until: m.retain_until,
        details,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let signed = crypto::sign(signing, &json)?;
    let id = SnapshotId::of(&signed);
    if let Some(s) = session {
        s.guard()?;
    }
    repo.backend()
        .put(ObjectKind::Snapshot, &id.to_hex(), signed)?;
    r.repaired = Some(id.to_hex());
    Ok(Some((r, Some((Snapshot { id, manifest }, new_index)))))
}
