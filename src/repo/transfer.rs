//! Moving a snapshot into a repository re-encrypted to that repository's recipients: every
//! chunk it needs is read (decrypted, authenticated by its id) and packed again for the
//! destination, unless the destination holds it already in a pack of its own recipients;
//! then an index for the new packs, then the manifest, tagged with where it came from, as
//! the commit point. What `migrate split-tenants` (a shared repository into each tenant's)
//! and `tenant rekey` (a repository into itself, to its current recipients) are made of.
//!
//! The source is only read. A transfer cut off leaves packs no manifest names in the
//! destination (prune removes them); run it again and it starts that snapshot over.

use super::ids::{ChunkId, PackId, SnapshotId};
use super::index::PackInfo;
use super::lock::{ensure_locked, lock_target, LockMemory};
use super::pack::PackBuilder;
use super::snapshot::{Manifest, Snapshot, SNAPSHOT_FORMAT};
use super::tree::{ChunkRef, EntryKind};
use super::{crypto, ChunkMap, ChunkReader, Error, Repository, Result};
use crate::backend::ObjectKind;
use crate::progress::Progress;
use crate::repo::crypto::SecretKey;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

/// The chunks the destination holds in packs of its recipients, and where; and the Object
/// Lock dates seen there in this run.
#[derive(Default)]
pub struct Held {
    pub chunks: HashMap<ChunkId, PackId>,
    locks: HashMap<String, DateTime<Utc>>,
}

impl Held {
    /// What `packs` hold, from the destination's indexes.
    pub fn of_packs(dst: &Repository, key: &SecretKey, packs: &BTreeSet<PackId>) -> Result<Held> {
        let prefer = packs.iter().copied().collect();
        let map = dst.chunk_map(key, &prefer)?;
        Ok(Held {
            chunks: map
                .chunks
                .into_iter()
                .filter(|(_, (p, _))| packs.contains(p))
                .map(|(c, (p, _))| (c, p))
                .collect(),
            locks: HashMap::new(),
        })
    }
}

impl LockMemory for Held {
    fn known_lock(&mut self, object: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.locks.get(object).copied())
    }
    fn record_lock(&mut self, object: &str, until: DateTime<Utc>) -> Result<()> {
        self.locks.insert(object.to_string(), until);
        Ok(())
    }
}

/// What one transfer did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Transferred {
    pub from: String,
    pub to: String,
    pub chunks_sent: u64,
    pub chunks_reused: u64,
    pub packs_written: u64,
    pub bytes_written: u64,
    /// The index written for the new packs, with them (for the catalog).
    #[serde(skip)]
    pub index: Option<(super::ids::IndexId, Vec<PackInfo>)>,
}

/// The source's chunks, for every snapshot to transfer (built once for them all).
pub fn source_map(src: &Repository, key: &SecretKey, snapshots: &[&Snapshot]) -> Result<ChunkMap> {
    let packs = snapshots
        .iter()
        .flat_map(|s| s.manifest.packs.iter().copied())
        .collect();
    src.chunk_map(key, &packs)
}

/// Moves `snapshot` of `src` into `dst` (which may be `src` itself), its manifest with
/// `tags` added (where it came from). `map` is the source's (`source_map`). `held` is what `dst` holds in packs of its recipients; it grows
/// with what this transfer stores. `session` is the caller's backup session in `dst`: a
/// prune there leaves the new packs alone, and the manifest is committed only if the
/// session never lapsed.
#[allow(clippy::too_many_arguments)]
pub fn transfer(
    src: &Repository,
    key: &SecretKey,
    dst: &Repository,
    signing: &SecretKey,
    snapshot: &Snapshot,
    map: &ChunkMap,
    tags: &[(&str, String)],
    held: &mut Held,
    session: &super::session::Session,
    progress: &dyn Progress,
) -> Result<(Snapshot, Transferred)> {
    dst.check_signing_key(signing)?;
    let mut reader = ChunkReader::new(src, key, map);
    let entries = src.read_tree(&mut reader, snapshot)?;
    // Every chunk the snapshot needs, tree first, each once, in the order of the source's
    // packs (each pack is then read once).
    let mut needed: Vec<ChunkId> = snapshot.manifest.tree.clone();
    for e in &entries {
        if let EntryKind::File { chunks } = &e.kind {
            for c in chunks {
                if let ChunkRef::Data { id, .. } = c {
                    needed.push(*id);
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    needed.retain(|c| seen.insert(*c));
    let mut order: Vec<(PackId, u64, ChunkId)> = Vec::with_capacity(needed.len());
    for c in &needed {
        let (pack, entry) = map.locate(c, "the snapshot")?;
        order.push((pack, entry.offset, *c));
    }
    order.sort();
    let mut report = Transferred {
        from: snapshot.id.to_hex(),
        ..Default::default()
    };
    // On a destination with Object Lock, what the snapshot needs is locked until its
    // retention ends: new objects as they are stored, the others before the commit.
    let lock_dates = snapshot
        .manifest
        .retain_until
        .filter(|_| dst.backend().object_lock())
        .map(|needed| (needed, lock_target(Utc::now(), needed)));
    dst.backend()
        .lock_new_objects_until(lock_dates.map(|(_, target)| target));
    progress.phase("transferring", Some(order.len() as u64), false);
    let pack_size = dst.config.pack_size as usize;
    let mut builder = PackBuilder::new(dst.config.zstd_level, 0);
    let mut written: Vec<PackInfo> = Vec::new();
    let mut used: BTreeSet<PackId> = BTreeSet::new();
    let mut pending: Vec<ChunkId> = Vec::new();
    for (_, _, chunk) in &order {
        progress.advance(1);
        if let Some(pack) = held
            .chunks
            .get(chunk)
            .filter(|p| !session.condemned().contains(*p))
        {
            used.insert(*pack);
            report.chunks_reused += 1;
            continue;
        }
        let plain = reader.read(chunk)?;
        builder.add(*chunk, &plain)?;
        pending.push(*chunk);
        report.chunks_sent += 1;
        if builder.plain_len() >= pack_size {
            let full = std::mem::replace(&mut builder, PackBuilder::new(dst.config.zstd_level, 0));
            let info = store(dst, full, &mut report)?;
            for c in pending.drain(..) {
                held.chunks.insert(c, info.id);
            }
            used.insert(info.id);
            written.push(info);
        }
    }
    if !builder.is_empty() {
        let info = store(dst, builder, &mut report)?;
        for c in pending.drain(..) {
            held.chunks.insert(c, info.id);
        }
        used.insert(info.id);
        written.push(info);
    }
    let mut index = None;
    if !written.is_empty() {
        index = Some(dst.write_index(signing, &written)?);
    }
    if let Some((needed, target)) = lock_dates {
        let new: BTreeSet<PackId> = written.iter().map(|p| p.id).collect();
        for p in &new {
            held.record_lock(&ObjectKind::Data.path(&p.to_hex()), target)?;
        }
        let mut objects = vec![(ObjectKind::Config, dst.config_id.to_hex())];
        objects.extend(
            dst.index_ids()?
                .into_iter()
                .filter(|i| Some(*i) != index)
                .map(|i| (ObjectKind::Index, i.to_hex())),
        );
        objects.extend(
            used.iter()
                .filter(|p| !new.contains(p))
                .map(|p| (ObjectKind::Data, p.to_hex())),
        );
        ensure_locked(dst.backend().as_ref(), held, &objects, needed, target)?;
    }
    if let Some(index) = index {
        report.index = Some((index, written));
    }
    let m = &snapshot.manifest;
    let mut all_tags = m.tags.clone();
    for (k, v) in tags {
        all_tags.insert(k.to_string(), v.clone());
    }
    let mut stats = m.stats.clone();
    stats.bytes_added = report.bytes_written;
    stats.packs_added = report.packs_written;
    let manifest = Manifest {
        format: SNAPSHOT_FORMAT.into(),
        version: super::FORMAT_VERSION,
        repository: dst.config.id.clone(),
        time: m.time,
        hostname: m.hostname.clone(),
        paths: m.paths.clone(),
        tags: all_tags,
        parent: None,
        tree: m.tree.clone(),
        packs: used.into_iter().collect(),
        stats,
        retain_until: m.retain_until,
        details: m.details.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let signed = crypto::sign(signing, &json)?;
    let id = SnapshotId::of(&signed);
    session.guard()?;
    dst.backend()
        .put(ObjectKind::Snapshot, &id.to_hex(), signed)?;
    report.to = id.to_hex();
    Ok((Snapshot { id, manifest }, report))
}

fn store(dst: &Repository, builder: PackBuilder, report: &mut Transferred) -> Result<PackInfo> {
    let (info, sealed) = builder.seal(dst.recipients())?;
    report.bytes_written += sealed.len() as u64;
    report.packs_written += 1;
    dst.backend()
        .put(ObjectKind::Data, &info.id.to_hex(), sealed)?;
    Ok(info)
}
