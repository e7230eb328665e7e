//! Object Lock: on a store that supports it, a snapshot's objects (its manifest, every pack it
//! needs, the indexes that map those packs, the config) are locked in compliance mode at least
//! until the snapshot's retain-until date. A pack reused by a newer snapshot has its lock
//! lengthened before that snapshot is committed, so a locked snapshot never points at data
//! that could be deleted before it.
//!
//! Locks are set with headroom (a tenth of the retention, one to thirty days) so that a
//! source backed up every 30 minutes does not re-lock every pack on every run. The catalog
//! remembers the dates it set; the store is asked only when the catalog does not know.

use super::Result;
use crate::backend::{Backend, ObjectKind};
use chrono::{DateTime, Duration, Utc};

/// Where lock dates already set are remembered.
pub trait LockMemory {
    fn known_lock(&mut self, object: &str) -> Result<Option<DateTime<Utc>>>;
    fn record_lock(&mut self, object: &str, until: DateTime<Utc>) -> Result<()>;
}

/// Remembers nothing: every question goes to the store.
pub struct NoMemory;

impl LockMemory for NoMemory {
    fn known_lock(&mut self, _: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }
    fn record_lock(&mut self, _: &str, _: DateTime<Utc>) -> Result<()> {
        Ok(())
    }
}

/// The date to lock until when a snapshot must be kept until `needed`: `needed` plus headroom.
pub fn lock_target(now: DateTime<Utc>, needed: DateTime<Utc>) -> DateTime<Utc> {
    let headroom = ((needed - now) / 10).clamp(Duration::days(1), Duration::days(30));
    needed + headroom
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LockStats {
    /// Objects whose lock was set or lengthened.
    pub locked: u64,
    /// Objects already locked long enough.
    pub already: u64,
}

/// Makes sure each object is locked at least until `needed`, lengthening to `target` where it
/// is not.
pub fn ensure_locked(
    backend: &dyn Backend,
    memory: &mut dyn LockMemory,
    objects: &[(ObjectKind, String)],
    needed: DateTime<Utc>,
    target: DateTime<Utc>,
) -> Result<LockStats> {
    let mut stats = LockStats::default();
    if !backend.object_lock() {
        return Ok(stats);
    }
    for (kind, name) in objects {
        let object = kind.path(name);
        if memory.known_lock(&object)?.is_some_and(|k| k >= needed) {
            stats.already += 1;
            continue;
        }
        if let Some(current) = backend.locked_until(*kind, name)? {
            if current >= needed {
                memory.record_lock(&object, current)?;
                stats.already += 1;
                continue;
            }
        }
        backend.lock_until(*kind, name, target)?;
        memory.record_lock(&object, target)?;
        stats.locked += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_a_tenth_within_bounds() {
        let now = Utc::now();
        assert_eq!(
            lock_target(now, now + Duration::days(90)),
            now + Duration::days(99)
        );
        assert_eq!(
            lock_target(now, now + Duration::days(2)),
            now + Duration::days(3)
        );
        assert_eq!(
            lock_target(now, now + Duration::days(3650)),
            now + Duration::days(3680)
        );
    }
}
