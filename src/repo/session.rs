//! How writers and prune share a repository: sessions and marks, the two phases of garbage
//! collection.
//!
//! A backup decides early that a chunk is already stored and commits a manifest naming its pack
//! only at the end. Prune must never delete such a pack in between, even when the backup runs on
//! another host. So prune deletes in two phases:
//!
//! 1. **Mark.** Packs no manifest names are listed in a *mark* object (`marks/`). Nothing is
//!    deleted.
//! 2. **Sweep.** A mark's packs that are still unreferenced are deleted once no writer that
//!    might use them is running: then the mark goes.
//!
//! Writers announce themselves with a *session* object (`sessions/`) before they look at the
//! repository, and keep it fresh while they work. A backup reads the marks right after
//! announcing itself, never reuses their packs, and *claims* those marks in its session. A
//! sweep, which announces itself too, first lists the sessions and waits for every live writer
//! that has not claimed a mark; only then does it list the manifests, which now include
//! whatever those writers committed, and delete what is still unreferenced.
//!
//! Every interleaving is safe because both sides write before they read: a sweep that lists the
//! sessions before a backup announced itself is over before the backup reads the marks, or the
//! backup still sees its mark (marks are deleted last) and avoids its packs. A copy, whose packs
//! keep their names, claims nothing and waits for running sweeps to end before it starts.
//!
//! A writer that stops refreshing its session (crashed, or frozen) is *stale* after
//! `Timing::stale` and no longer holds sweeps up. A writer that finds it went that long without
//! a refresh commits nothing: a prune may have deleted data it reuses.
//!
//! Sessions and marks are plain JSON, named by their SHA-256 like every object, never locked,
//! and not signed: the worst a forged one can do is hold a deletion up or make a backup store a
//! chunk again, because a sweep deletes only packs that no signed manifest names.

use super::ids::PackId;
use super::{Error, Result};
use crate::backend::{self, Backend, ObjectKind};
use crate::progress::Progress;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const SESSION_FORMAT: &str = "lifeboat-session";
pub const MARK_FORMAT: &str = "lifeboat-mark";

/// How often sessions are refreshed, and when a session counts as abandoned.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub refresh: std::time::Duration,
    /// A session not refreshed for this long is stale: its writer is presumed gone.
    pub stale: chrono::Duration,
    /// How often a copy looks again whether a sweep has ended.
    pub poll: std::time::Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            refresh: std::time::Duration::from_secs(5 * 60),
            stale: chrono::Duration::minutes(30),
            poll: std::time::Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Backup,
    Copy,
    Prune,
}

impl std::fmt::Display for SessionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionKind::Backup => "backup",
            SessionKind::Copy => "copy",
            SessionKind::Prune => "prune",
        })
    }
}

/// The stored form of a session (`sessions/<sha256>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub format: String,
    /// Random; the same across the refreshes of one session.
    pub id: String,
    pub kind: SessionKind,
    pub host: String,
    pub pid: u32,
    pub started: DateTime<Utc>,
    pub refreshed: DateTime<Utc>,
    /// Names of the marks whose packs this writer does not use.
    pub claims: Vec<String>,
}

impl SessionRecord {
    /// Whether the session no longer holds anything up: it went unrefreshed for the stale
    /// time, or its writer ran on this machine (same boot, same PID namespace) and has ended.
    pub fn is_stale(&self, now: DateTime<Utc>, timing: &Timing) -> bool {
        now - self.refreshed > timing.stale || self.writer_ended()
    }

    /// Whether the writer is known to have ended: a process of this machine that is gone, or
    /// whose PID now belongs to a younger process. Sessions carry their writer's place after
    /// an `@` in their id; of sessions without one, or of other places, nothing is known.
    pub fn writer_ended(&self) -> bool {
        let Some(place) = self
            .id
            .split_once('@')
            .and_then(|(_, tag)| backend::writer::Place::parse(tag))
        else {
            return false;
        };
        backend::writer::ended(&place, self.pid, self.started.into())
    }

    /// "backup on host (pid 12, started …, refreshed 40 s ago)", for messages.
    pub fn describe(&self) -> String {
        self.describe_at(Utc::now())
    }

    pub fn describe_at(&self, now: DateTime<Utc>) -> String {
        format!(
            "{} on {} (pid {}, started {}, refreshed {} s ago)",
            self.kind,
            self.host,
            self.pid,
            self.started.format("%Y-%m-%d %H:%M:%S UTC"),
            (now - self.refreshed).num_seconds().max(0)
        )
    }

    /// When it goes stale if it is not refreshed again.
    pub fn stale_at(&self, timing: &Timing) -> DateTime<Utc> {
        self.refreshed + timing.stale
    }
}

/// A new session id: random, then this writer's place (see `backend::writer`).
fn new_id() -> String {
    let random = hex::encode(rand::random::<[u8; 16]>());
    match backend::writer::here() {
        Some(place) => format!("{random}@{}", place.tag()),
        None => random,
    }
}

/// The stored form of a mark (`marks/<sha256>`): packs prune found unreferenced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRecord {
    pub format: String,
    pub repository: String,
    pub created: DateTime<Utc>,
    pub packs: Vec<PackId>,
}

/// This machine's name, for sessions and snapshots.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Objects of a coordination kind, by name, and descriptions of the unreadable ones.
pub struct Found<T> {
    pub objects: Vec<(String, T)>,
    pub problems: Vec<String>,
    /// Whether some object was listed but gone when read.
    pub vanished: bool,
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

/// Stores a coordination object under its SHA-256; returns the name.
pub(crate) fn put_json<T: Serialize>(
    backend: &dyn Backend,
    kind: ObjectKind,
    value: &T,
) -> Result<String> {
    let bytes = to_json(value)?;
    let name = super::ids::Hash::of(&bytes).to_hex();
    backend.put(kind, &name, bytes)?;
    Ok(name)
}

/// Reads every object of a coordination kind. Objects that vanish meanwhile are skipped (their
/// writer ended); damaged ones are returned as problems, not errors, so one bad object cannot
/// stop garbage collection for good.
pub(crate) fn read_all<T: for<'de> Deserialize<'de>>(
    backend: &dyn Backend,
    kind: ObjectKind,
    format: &str,
) -> Result<Found<T>> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut vanished = false;
    for (name, _) in backend.list(kind)? {
        let data = match backend.get(kind, &name) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                vanished = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = super::check_name(kind, &name, &data) {
            bad.push(e.to_string());
            continue;
        }
        let parsed: std::result::Result<serde_json::Value, _> = serde_json::from_slice(&data);
        let formatted = parsed
            .ok()
            .filter(|v| v.get("format").and_then(|f| f.as_str()) == Some(format));
        match formatted.map(serde_json::from_value::<T>) {
            Some(Ok(v)) => good.push((name, v)),
            _ => bad.push(format!(
                "{} is not a {format} object this version understands",
                kind.path(&name)
            )),
        }
    }
    Ok(Found {
        objects: good,
        problems: bad,
        vanished,
    })
}

/// The sessions in the repository now, and the unreadable ones.
///
/// A refresh stores the new record before it deletes the old one, so a record that vanished
/// between listing and reading has a successor: the listing is taken again until it holds
/// still, or a writer could be missed.
pub fn sessions(backend: &dyn Backend) -> Result<Found<SessionRecord>> {
    for _ in 0..50 {
        let found = read_all(backend, ObjectKind::Session, SESSION_FORMAT)?;
        if !found.vanished {
            return Ok(found);
        }
    }
    Err(Error::Interrupted(format!(
        "the sessions in {} kept changing while being read; try again",
        backend.location()
    )))
}

/// The marks in the repository now, and the unreadable ones. Marks of another repository
/// (copied by hand?) count as unreadable.
pub fn marks(backend: &dyn Backend, repository: &str) -> Result<Found<MarkRecord>> {
    let Found {
        objects: all,
        problems: mut bad,
        ..
    } = read_all::<MarkRecord>(backend, ObjectKind::Mark, MARK_FORMAT)?;
    let mut good = Vec::new();
    for (name, mark) in all {
        if mark.repository == repository {
            good.push((name, mark));
        } else {
            bad.push(format!(
                "{} belongs to repository {}, not {repository}",
                ObjectKind::Mark.path(&name),
                mark.repository
            ));
        }
    }
    Ok(Found {
        objects: good,
        problems: bad,
        vanished: false,
    })
}

/// Stores a mark naming `packs`; returns its name.
pub fn write_mark(
    backend: &dyn Backend,
    repository: &str,
    packs: Vec<PackId>,
    now: DateTime<Utc>,
) -> Result<String> {
    let mark = MarkRecord {
        format: MARK_FORMAT.into(),
        repository: repository.into(),
        created: now,
        packs,
    };
    put_json(backend, ObjectKind::Mark, &mark)
}

struct State {
    record: SessionRecord,
    /// The name of the stored record (`None` once the session ended).
    name: Option<String>,
    /// The longest time between two refreshes so far.
    worst_gap: chrono::Duration,
}

struct Shared {
    backend: Arc<dyn Backend>,
    timing: Timing,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a refresh panicked; the state itself is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a fresh copy of the record, then deletes the previous one.
    fn refresh(&self, claims: Option<Vec<String>>) -> Result<()> {
        let mut state = self.state();
        let Some(old) = state.name.clone() else {
            return Ok(());
        };
        let mut record = state.record.clone();
        let now = Utc::now();
        record.refreshed = now;
        if let Some(c) = claims {
            record.claims = c;
        }
        let name = put_json(self.backend.as_ref(), ObjectKind::Session, &record)?;
        let gap = now - state.record.refreshed;
        state.worst_gap = state.worst_gap.max(gap);
        state.record = record;
        state.name = Some(name.clone());
        drop(state);
        if name != old {
            // A leftover is harmless: it goes stale and prune removes it.
            let _ = self.backend.delete(ObjectKind::Session, &old);
        }
        Ok(())
    }

    fn end(&self) -> Result<()> {
        let mut state = self.state();
        match state.name.take() {
            Some(name) => Ok(self.backend.delete(ObjectKind::Session, &name)?),
            None => Ok(()),
        }
    }
}

/// A writer's or a sweep's presence in a repository, kept fresh by a thread until it ends.
pub struct Session {
    shared: Arc<Shared>,
    stop: Option<crossbeam_channel::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    /// The packs of the marks this session claims: a backup must not reuse them.
    condemned: HashSet<PackId>,
}

impl Session {
    /// Announces a writer or a sweep. A backup then reads the marks and claims them; a copy
    /// waits until no sweep is running.
    pub fn begin(
        backend: Arc<dyn Backend>,
        repository: &str,
        kind: SessionKind,
        timing: Timing,
        progress: &dyn Progress,
    ) -> Result<Session> {
        let now = Utc::now();
        let record = SessionRecord {
            format: SESSION_FORMAT.into(),
            id: new_id(),
            kind,
            host: this_host(),
            pid: std::process::id(),
            started: now,
            refreshed: now,
            claims: Vec::new(),
        };
        let name = put_json(backend.as_ref(), ObjectKind::Session, &record)?;
        let shared = Arc::new(Shared {
            backend,
            timing,
            state: Mutex::new(State {
                record,
                name: Some(name),
                worst_gap: chrono::Duration::zero(),
            }),
        });
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let heartbeat = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("lifeboat-session".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(shared.timing.refresh)
                    {
                        // A failed refresh is retried at the next tick; `guard` notices a gap.
                        let _ = shared.refresh(None);
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?
        };
        let mut session = Session {
            shared,
            stop: Some(stop),
            heartbeat: Some(heartbeat),
            condemned: HashSet::new(),
        };
        match kind {
            SessionKind::Backup => {
                let marks = marks(session.shared.backend.as_ref(), repository)?.objects;
                if !marks.is_empty() {
                    let claims = marks.iter().map(|(n, _)| n.clone()).collect();
                    session.condemned = marks.into_iter().flat_map(|(_, m)| m.packs).collect();
                    session.shared.refresh(Some(claims))?;
                }
            }
            SessionKind::Copy => session.wait_for_sweeps(progress)?,
            SessionKind::Prune => {}
        }
        Ok(session)
    }

    /// The packs a backup in this session must not reuse: a sweep may delete them.
    pub fn condemned(&self) -> &HashSet<PackId> {
        &self.condemned
    }

    pub fn record(&self) -> SessionRecord {
        self.shared.state().record.clone()
    }

    /// The stored name of this session's record.
    pub fn name(&self) -> Option<String> {
        self.shared.state().name.clone()
    }

    /// Waits until no other live sweep is running.
    fn wait_for_sweeps(&self, progress: &dyn Progress) -> Result<()> {
        let own = self.record().id;
        let mut told = false;
        loop {
            let now = Utc::now();
            let all = sessions(self.shared.backend.as_ref())?.objects;
            let sweep = all.into_iter().map(|(_, s)| s).find(|s| {
                s.kind == SessionKind::Prune && s.id != own && !s.is_stale(now, &self.shared.timing)
            });
            let Some(sweep) = sweep else {
                return Ok(());
            };
            if !told {
                let until = sweep.stale_at(&self.shared.timing);
                progress.note(&format!(
                    "waiting for the {} to end: it deletes data a copy could be sending; \
                     waiting while it runs, at most until {} if it stops refreshing its session",
                    sweep.describe_at(now),
                    until.format("%Y-%m-%d %H:%M:%S UTC")
                ));
                progress.phase("waiting for a prune", None, false);
                told = true;
            }
            std::thread::sleep(self.shared.timing.poll);
        }
    }

    /// Before a commit: fails if the session ever went so long without a refresh that a sweep
    /// may have taken it for abandoned. The margin is half the stale time, for clocks that
    /// disagree between hosts and for the commit itself.
    pub fn guard(&self) -> Result<()> {
        self.guard_at(Utc::now())
    }

    fn guard_at(&self, now: DateTime<Utc>) -> Result<()> {
        let state = self.shared.state();
        let gap = state.worst_gap.max(now - state.record.refreshed);
        if gap * 2 >= self.shared.timing.stale {
            return Err(Error::Interrupted(format!(
                "this {} went {} s without refreshing its session in the repository, so a \
                 prune elsewhere may have deleted data it reuses; nothing was committed. Run it \
                 again (check the connection to the store if this repeats)",
                state.record.kind,
                gap.num_seconds()
            )));
        }
        Ok(())
    }

    /// Ends the session: stops refreshing and deletes its record.
    pub fn end(mut self) -> Result<()> {
        self.stop_heartbeat();
        self.shared.end()
    }

    fn stop_heartbeat(&mut self) {
        self.stop.take();
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_heartbeat();
        // Best effort: a record left behind goes stale and prune removes it.
        let _ = self.shared.end();
    }
}

/// Deletes a coordination object; one already gone is fine.
pub fn remove(backend: &dyn Backend, kind: ObjectKind, name: &str) -> Result<()> {
    match backend.delete(kind, name) {
        Ok(()) => Ok(()),
        Err(backend::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::progress::Silent;

    fn store() -> (tempfile::TempDir, Arc<dyn Backend>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::create(&dir.path().join("repo")).expect("create");
        (dir, Arc::new(backend))
    }

    fn pack(n: u8) -> PackId {
        PackId(super::super::ids::Hash([n; 32]))
    }

    #[test]
    fn a_backup_claims_the_marks_it_saw_and_avoids_their_packs() {
        let (_dir, backend) = store();
        let mark = write_mark(backend.as_ref(), "r1", vec![pack(1), pack(2)], Utc::now()).unwrap();
        // A mark of another repository is a problem, not a mark.
        write_mark(backend.as_ref(), "r2", vec![pack(3)], Utc::now()).unwrap();
        let s = Session::begin(
            backend.clone(),
            "r1",
            SessionKind::Backup,
            Timing::default(),
            &Silent,
        )
        .unwrap();
        assert_eq!(s.condemned(), &HashSet::from([pack(1), pack(2)]));
        let stored = sessions(backend.as_ref()).unwrap();
        assert_eq!(
            stored.objects.len(),
            1,
            "the unclaimed first record is gone"
        );
        assert_eq!(stored.objects[0].1.claims, vec![mark]);
        assert_eq!(marks(backend.as_ref(), "r1").unwrap().problems.len(), 1);
        s.end().unwrap();
        assert!(backend.list(ObjectKind::Session).unwrap().is_empty());
    }

    #[test]
    fn a_session_that_went_unrefreshed_for_half_the_stale_time_may_not_commit() {
        let (_dir, backend) = store();
        let timing = Timing::default();
        let s = Session::begin(backend, "r", SessionKind::Backup, timing, &Silent).unwrap();
        let refreshed = s.record().refreshed;
        assert!(s.guard_at(refreshed + timing.stale / 3).is_ok());
        let err = s.guard_at(refreshed + timing.stale / 2).unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("nothing was committed"), "{err}");
        // A gap in the past counts even after a refresh closed it.
        s.shared.state().worst_gap = timing.stale;
        assert!(s.guard().is_err());
    }

    #[test]
    fn a_session_is_stale_only_after_the_stale_time() {
        let timing = Timing::default();
        let now = Utc::now();
        let record = SessionRecord {
            format: SESSION_FORMAT.into(),
            id: "x".into(),
            kind: SessionKind::Copy,
            host: "h".into(),
            pid: 1,
            started: now,
            refreshed: now,
            claims: vec![],
        };
        assert!(!record.is_stale(now + timing.stale, &timing));
        assert!(record.is_stale(now + timing.stale + chrono::Duration::seconds(1), &timing));
    }

    #[test]
    fn the_heartbeat_replaces_the_record_and_never_leaves_two() {
        let (_dir, backend) = store();
        let timing = Timing {
            refresh: std::time::Duration::from_millis(5),
            ..Timing::default()
        };
        let s = Session::begin(backend.clone(), "r", SessionKind::Copy, timing, &Silent).unwrap();
        let first = s.name();
        // Wait (bounded) until the heartbeat has refreshed the record at least once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while s.name() == first && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_ne!(s.name(), first, "the heartbeat refreshed the session");
        s.end().unwrap();
        assert!(backend.list(ObjectKind::Session).unwrap().is_empty());
    }
}
