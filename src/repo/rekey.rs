//! Re-encrypting a repository to its current recipients (an escrow key added,
//! replaced or removed): the config first (what is stored from then on), then each snapshot
//! moved into the repository itself (`transfer`), then a prune for the old packs.
//!
//! Crash-safe and resumable: a rekeyed snapshot is tagged `rekey=REVISION` (the config's)
//! and `rekeyed-from=OLD`; its holds are moved, then the old manifest deleted. A run cut off
//! anywhere is run again: snapshots already rekeyed at this revision are kept (their packs
//! reused), an old manifest whose successor exists is finished off, and the rest are done.

use super::ids::{PackId, SnapshotId};
use super::prune::{prune, Locked, PruneMemory, PruneOptions, PruneReport};
use super::session::{Session, SessionKind, Timing};
use super::transfer::{transfer, Held};
use super::{hold, Repository, Result};
use crate::backend::ObjectKind;
use crate::progress::Progress;
use crate::repo::crypto::{PublicCert, SecretKey};
use std::collections::BTreeSet;

pub const REKEY_TAG: &str = "rekey";
pub const FROM_TAG: &str = "rekeyed-from";

#[derive(Debug, Default, serde::Serialize)]
pub struct RekeyReport {
    /// The config's revision the repository is encrypted to now.
    pub revision: u64,
    /// Whether the config changed in this run.
    pub recipients_changed: bool,
    /// Snapshots re-encrypted now, and those found done by an earlier run.
    pub rekeyed: u64,
    pub already: u64,
    pub chunks_sent: u64,
    pub bytes_written: u64,
    pub holds_moved: u64,
    /// The snapshots' new ids: old → new.
    pub renamed: Vec<(String, String)>,
    pub prune: Option<PruneReport>,
    /// Old indexes deleted once every pack they list was gone.
    pub indexes_deleted: u64,
    /// Old manifests Object Lock keeps (their snapshots stay listed, and readable with the
    /// old recipients' keys, until then; a later run deletes them).
    pub still_locked: Vec<Locked>,
    /// The indexes written, with their packs (for the catalog).
    #[serde(skip)]
    pub indexes: Vec<(super::ids::IndexId, Vec<super::index::PackInfo>)>,
}

/// Moves the holds of `from` onto `to`, then deletes `from`'s manifest; false when Object
/// Lock keeps it (listed in the report, with until when).
fn retire(
    repo: &Repository,
    from: &SnapshotId,
    to: &SnapshotId,
    report: &mut RekeyReport,
) -> Result<bool> {
    let backend = repo.backend();
    for (_, h) in hold::list(backend.as_ref(), &repo.config.id)?.objects {
        if h.snapshot == *from {
            // Placed as it was: its reason and its time.
            hold::place(backend.as_ref(), &repo.config.id, *to, &h.reason, h.placed)?;
            report.holds_moved += 1;
        }
    }
    hold::release(backend.as_ref(), &repo.config.id, from, None)?;
    match super::session::remove(backend.as_ref(), ObjectKind::Snapshot, &from.to_hex()) {
        Ok(()) => Ok(true),
        Err(super::Error::Backend(crate::backend::Error::Locked { until, .. })) => {
            report.still_locked.push(Locked {
                object: ObjectKind::Snapshot.path(&from.to_hex()),
                until,
            });
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Re-encrypts `repo` to `recipients`; the catalog (`memory`) forgets the old snapshots and
/// packs as they go.
pub fn rekey(
    repo: &mut Repository,
    key: &SecretKey,
    signing: &SecretKey,
    recipients: &[PublicCert],
    memory: &mut dyn PruneMemory,
    progress: &dyn Progress,
) -> Result<RekeyReport> {
    repo.check_key(key)?;
    let mut report = RekeyReport::default();
    if !repo.encrypts_to(recipients) {
        repo.set_recipients(signing, recipients)?;
        report.recipients_changed = true;
    }
    let revision = repo.config.revision.to_string();
    report.revision = repo.config.revision;
    let session = Session::begin(
        repo.backend().clone(),
        &repo.config.id,
        SessionKind::Backup,
        Timing::default(),
        progress,
    )?;
    let (snapshots, _) = repo.snapshots()?;
    let is_done = |s: &super::snapshot::Snapshot| s.manifest.tags.get(REKEY_TAG) == Some(&revision);
    let done: Vec<_> = snapshots.iter().filter(|s| is_done(s)).collect();
    // Finish what an earlier run cut off: old manifests whose successors exist.
    let mut retired: BTreeSet<SnapshotId> = BTreeSet::new();
    for d in &done {
        if let Some(old) = d.manifest.tags.get(FROM_TAG).and_then(|o| o.parse().ok()) {
            if snapshots.iter().any(|s| s.id == old) && retire(repo, &old, &d.id, &mut report)? {
                memory.forget_snapshot(&old)?;
            }
            retired.insert(old);
        }
    }
    report.already = done.len() as u64;
    let packs: BTreeSet<PackId> = done
        .iter()
        .flat_map(|d| d.manifest.packs.iter().copied())
        .collect();
    let mut held = Held::of_packs(repo, key, &packs)?;
    let todo: Vec<_> = snapshots
        .iter()
        .filter(|s| !is_done(s) && !retired.contains(&s.id))
        .collect();
    let map = super::transfer::source_map(repo, key, &todo)?;
    for s in todo {
        let tags = [(REKEY_TAG, revision.clone()), (FROM_TAG, s.id.to_hex())];
        let (new, moved) = transfer(
            repo, key, repo, signing, s, &map, &tags, &mut held, &session, progress,
        )?;
        if retire(repo, &s.id, &new.id, &mut report)? {
            memory.forget_snapshot(&s.id)?;
        }
        report.rekeyed += 1;
        report.chunks_sent += moved.chunks_sent;
        report.bytes_written += moved.bytes_written;
        report.renamed.push((s.id.to_hex(), new.id.to_hex()));
        report.indexes.extend(moved.index);
    }
    session.end()?;
    // The old packs: no manifest names them any more.
    report.prune = Some(prune(repo, memory, PruneOptions::default(), progress)?);
    // The old indexes, whether the catalog knew them or not: every pack they list is gone.
    let present: std::collections::HashSet<String> = repo
        .backend()
        .list(ObjectKind::Data)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for id in repo.index_ids()? {
        let stale = match repo.load_index(key, &id) {
            Ok(packs) => packs.iter().all(|p| !present.contains(&p.id.to_hex())),
            Err(e) if e.is_integrity() => false,
            Err(e) => return Err(e),
        };
        if stale {
            super::session::remove(repo.backend().as_ref(), ObjectKind::Index, &id.to_hex())?;
            report.indexes_deleted += 1;
        }
    }
    Ok(report)
}
