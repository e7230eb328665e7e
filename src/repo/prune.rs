//! Forgetting snapshots, and pruning the data no remaining snapshot needs.
//!
//! Prune runs while backups run, here or on other hosts: it deletes in two phases, marking
//! first and sweeping only what no running writer may use (see `session`). Neither ever asks the store to delete an object under Object Lock: such objects are kept
//! and reported with the date their lock ends.
//!
//! Indexes are not rewritten: an index whose packs are all gone is deleted, and one that still
//! lists some removed packs stays; readers prefer locations in packs a manifest names (see
//! `ChunkMap::insert`), and the catalog forgets the removed packs, so no backup deduplicates
//! against them.

use super::ids::{IndexId, PackId, SnapshotId};
use super::session::{self, Session, SessionKind, Timing};
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

/// A snapshot kept because it is held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Held {
    pub snapshot: SnapshotId,
    pub reason: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ForgetReport {
    pub forgotten: Vec<SnapshotId>,
    pub still_locked: Vec<Locked>,
    /// Snapshots asked for but held (see `hold`): kept.
    pub held: Vec<Held>,
    pub dry_run: bool,
}

/// Applies a retention policy to the snapshots of one source: the decisions (newest first,
/// with reasons) and the snapshots the policy forgets. Held snapshots (`pins`, from
/// `hold::pins`) are kept.
pub fn by_policy<Tz: chrono::TimeZone>(
    snapshots: &[&Snapshot],
    policy: &retention::Policy,
    tz: &Tz,
    now: DateTime<Utc>,
    pins: &HashMap<SnapshotId, String>,
) -> (Vec<retention::Decision>, Vec<Snapshot>) {
    let candidates: Vec<retention::Candidate> = snapshots
        .iter()
        .map(|s| retention::Candidate {
            id: s.id.to_hex(),
            time: s.manifest.time,
            pinned: pins.get(&s.id).map(|why| format!("held: {why}")),
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

/// Deletes the manifests of `snapshots`, except those held or still locked.
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
    let pins = super::hold::pins(backend.as_ref(), &repo.config.id)?;
    for s in snapshots {
        if let Some(reason) = pins.get(&s.id) {
            report.held.push(Held {
                snapshot: s.id,
                reason: reason.clone(),
            });
            continue;
        }
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

/// How prune runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Report what would be marked and deleted; change nothing.
    pub dry_run: bool,
    pub timing: Timing,
}

/// A mark whose packs wait for writers that might still use them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Waiting {
    pub mark: String,
    pub packs: u64,
    /// The writers it waits for.
    pub sessions: Vec<String>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct PruneReport {
    pub snapshots: u64,
    /// Packs some snapshot names.
    pub packs_kept: u64,
    /// Unreferenced packs this run marked for deletion.
    pub packs_marked: u64,
    pub packs_deleted: u64,
    pub bytes_freed: u64,
    /// Marked packs that a snapshot committed since the mark names: kept.
    pub packs_spared: u64,
    pub indexes_deleted: u64,
    pub marks_swept: u64,
    /// Marks left for a later prune because writers that may use their packs are running.
    pub waiting: Vec<Waiting>,
    /// Sessions of writers that ended (their process is gone) or stopped refreshing them
    /// (crashed elsewhere): removed, each with the reason.
    pub stale_sessions: Vec<String>,
    /// Unreadable session or mark objects, ignored.
    pub problems: Vec<String>,
    pub still_locked: Vec<Locked>,
    pub dry_run: bool,
}

/// The packs the repository's manifests name. `known` caches manifests already read (names
/// are content hashes, so a name read once never changes); manifests forgotten meanwhile drop
/// out of it.
fn referenced_packs(
    repo: &Repository,
    known: &mut HashMap<String, Vec<PackId>>,
) -> Result<HashSet<String>> {
    let backend = repo.backend();
    let names: HashSet<String> = backend
        .list(ObjectKind::Snapshot)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    known.retain(|n, _| names.contains(n));
    for name in names {
        if known.contains_key(&name) {
            continue;
        }
        let data = match backend.get(ObjectKind::Snapshot, &name) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => continue, // forgotten meanwhile
            Err(e) => return Err(e.into()),
        };
        let snapshot = repo.parse_snapshot(&name, &data).map_err(|e| {
            Error::Invalid(format!(
                "{e}; prune cannot know what an unreadable snapshot needs, so it deletes \
                 nothing (run 'lifeboat check' first)"
            ))
        })?;
        known.insert(name, snapshot.manifest.packs);
    }
    Ok(known.values().flatten().map(|p| p.to_hex()).collect())
}

/// Garbage collection in two phases (see `session`): marks the packs no snapshot names, then
/// deletes the packs of every mark no running writer may still use, and the indexes all of
/// whose packs are gone. On a repository nobody writes to, one run does both; while backups
/// run, what they might use waits for a later prune.
pub fn prune(
    repo: &Repository,
    memory: &mut dyn PruneMemory,
    options: PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let backend = repo.backend();
    let timing = options.timing;
    let dry_run = options.dry_run;
    let mut report = PruneReport {
        dry_run,
        ..Default::default()
    };
    // Announced before anything is read: a copy that starts later waits for this sweep.
    let session = if dry_run {
        None
    } else {
        Some(Session::begin(
            backend.clone(),
            &repo.config.id,
            SessionKind::Prune,
            timing,
            progress,
        )?)
    };

    // Phase 1: mark what no snapshot names.
    progress.phase("reading snapshots", None, false);
    let mut manifests = HashMap::new();
    let referenced = referenced_packs(repo, &mut manifests)?;
    report.snapshots = manifests.len() as u64;
    let stored: HashMap<String, u64> = backend.list(ObjectKind::Data)?.into_iter().collect();
    let found = session::marks(backend.as_ref(), &repo.config.id)?;
    report.problems.extend(found.problems);
    let mut marks = found.objects;
    let marked: HashSet<PackId> = marks.iter().flat_map(|(_, m)| m.packs.clone()).collect();
    let mut unreferenced = Vec::new();
    for name in stored.keys() {
        if referenced.contains(name) {
            report.packs_kept += 1;
            continue;
        }
        let Ok(id) = name.parse::<PackId>() else {
            report.problems.push(format!(
                "{} is not a pack name",
                ObjectKind::Data.path(name)
            ));
            continue;
        };
        if marked.contains(&id) {
            continue;
        }
        match backend.locked_until(ObjectKind::Data, name)? {
            Some(until) => report.still_locked.push(Locked {
                object: ObjectKind::Data.path(name),
                until,
            }),
            None => unreferenced.push(id),
        }
    }
    unreferenced.sort();
    report.packs_marked = unreferenced.len() as u64;
    if !unreferenced.is_empty() {
        let now = Utc::now();
        let name = if dry_run {
            "(new)".to_string()
        } else {
            session::write_mark(backend.as_ref(), &repo.config.id, unreferenced.clone(), now)?
        };
        let mark = session::MarkRecord {
            format: session::MARK_FORMAT.into(),
            repository: repo.config.id.clone(),
            created: now,
            packs: unreferenced,
        };
        marks.push((name, mark));
    }

    // Phase 2: sweep the marks no running writer may still use.
    let now = Utc::now();
    let own = session.as_ref().map(|s| s.record().id);
    let found = session::sessions(backend.as_ref())?;
    report.problems.extend(found.problems);
    let mut writers = Vec::new();
    let mut stale = Vec::new();
    for (name, s) in found.objects {
        if Some(&s.id) == own.as_ref() {
            continue;
        }
        if s.is_stale(now, &timing) {
            stale.push((name, s));
        } else if s.kind != SessionKind::Prune {
            writers.push(s);
        }
    }
    let mut sweepable = Vec::new();
    for (name, mark) in marks {
        let blockers: Vec<String> = writers
            .iter()
            .filter(|w| !w.claims.contains(&name))
            .map(|w| {
                format!(
                    "{} (stale, if it stops refreshing, at {})",
                    w.describe_at(now),
                    w.stale_at(&timing).format("%Y-%m-%d %H:%M:%S UTC")
                )
            })
            .collect();
        if blockers.is_empty() {
            sweepable.push((name, mark));
        } else {
            report.waiting.push(Waiting {
                mark: name,
                packs: mark.packs.len() as u64,
                sessions: blockers,
            });
        }
    }
    if !sweepable.is_empty() {
        sweep(
            repo,
            memory,
            &sweepable,
            &stored,
            &mut manifests,
            &mut report,
            progress,
        )?;
    }
    for (name, s) in &stale {
        if !dry_run {
            session::remove(backend.as_ref(), ObjectKind::Session, name)?;
        }
        let why = if s.writer_ended() {
            "its process has ended"
        } else {
            "it stopped refreshing it"
        };
        report
            .stale_sessions
            .push(format!("{}: {why}", s.describe_at(now)));
    }
    if let Some(s) = session {
        s.end()?;
    }
    progress.finish();
    Ok(report)
}

/// Deletes the still unreferenced packs of `marks`, the indexes all of whose packs are gone,
/// then the marks.
fn sweep(
    repo: &Repository,
    memory: &mut dyn PruneMemory,
    marks: &[(String, session::MarkRecord)],
    stored: &HashMap<String, u64>,
    manifests: &mut HashMap<String, Vec<PackId>>,
    report: &mut PruneReport,
    progress: &dyn Progress,
) -> Result<()> {
    let backend = repo.backend();
    let dry_run = report.dry_run;
    // Listed after the sessions: whatever the writers that ended committed is in here.
    let referenced = referenced_packs(repo, manifests)?;
    report.snapshots = manifests.len() as u64;
    // Read before anything changes: the catalog forgets deleted packs as they go.
    let coverage = memory.index_coverage()?;
    let mut doomed = std::collections::BTreeSet::new();
    for (_, mark) in marks {
        for p in &mark.packs {
            if referenced.contains(&p.to_hex()) {
                report.packs_spared += 1;
            } else {
                doomed.insert(*p);
            }
        }
    }
    progress.phase("pruning", Some(doomed.len() as u64), false);
    let mut gone: HashSet<String> = HashSet::new();
    for id in &doomed {
        let name = id.to_hex();
        progress.advance(1);
        let Some(size) = stored.get(&name) else {
            // Deleted by another prune meanwhile.
            if !dry_run {
                memory.forget_packs(&[*id])?;
            }
            gone.insert(name);
            continue;
        };
        if !dry_run {
            if !delete(
                backend.as_ref(),
                ObjectKind::Data,
                &name,
                &mut report.still_locked,
            )? {
                continue;
            }
            memory.forget_packs(&[*id])?;
        }
        gone.insert(name);
        report.packs_deleted += 1;
        report.bytes_freed += size;
    }

    // An index goes when this sweep deleted every pack it still covers. Packs that are merely
    // absent from the listing taken at the start may be new: a backup running meanwhile writes
    // packs, then their index.
    for (name, _) in backend.list(ObjectKind::Index)? {
        let Ok(id) = name.parse::<IndexId>() else {
            continue;
        };
        let Some(packs) = coverage.get(&id) else {
            continue; // unknown to the catalog: keep it
        };
        if !packs.iter().all(|p| gone.contains(&p.to_hex())) {
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
    // Last: a backup that still sees a mark does not reuse its packs.
    for (name, _) in marks {
        if !dry_run {
            session::remove(backend.as_ref(), ObjectKind::Mark, name)?;
        }
        report.marks_swept += 1;
    }
    Ok(())
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
