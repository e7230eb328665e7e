//! Holds: snapshots that retention must keep whatever the policy says (a legal hold, a drill
//! restoring it right now).
//!
//! A hold is a small JSON object in `holds/`, in the repository itself, so that every host
//! that forgets snapshots sees it and a catalog rebuild cannot lose it. It is never locked, so
//! it can be released; like sessions and marks it is not signed: the most a forged hold can do
//! is keep a snapshot longer.

use super::ids::SnapshotId;
use super::session::{put_json, read_all, Found};
use super::Result;
use crate::backend::{Backend, ObjectKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const HOLD_FORMAT: &str = "lifeboat-hold";

/// The stored form of a hold (`holds/<sha256>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRecord {
    pub format: String,
    pub repository: String,
    pub snapshot: SnapshotId,
    pub reason: String,
    pub placed: DateTime<Utc>,
    pub host: String,
}

/// Places a hold on `snapshot`; returns its object name.
pub fn place(
    backend: &dyn Backend,
    repository: &str,
    snapshot: SnapshotId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let record = HoldRecord {
        format: HOLD_FORMAT.into(),
        repository: repository.into(),
        snapshot,
        reason: reason.into(),
        placed: now,
        host: super::session::this_host(),
    };
    put_json(backend, ObjectKind::Hold, &record)
}

/// The holds of this repository, and the unreadable hold objects.
pub fn list(backend: &dyn Backend, repository: &str) -> Result<Found<HoldRecord>> {
    let mut found = read_all::<HoldRecord>(backend, ObjectKind::Hold, HOLD_FORMAT)?;
    found.objects.retain(|(_, h)| h.repository == repository);
    found.objects.sort_by_key(|(_, h)| h.placed);
    Ok(found)
}

/// Why each held snapshot is held ("legal hold 2026-17; drill 12").
pub fn pins(backend: &dyn Backend, repository: &str) -> Result<HashMap<SnapshotId, String>> {
    let mut out: HashMap<SnapshotId, String> = HashMap::new();
    for (_, h) in list(backend, repository)?.objects {
        out.entry(h.snapshot)
            .and_modify(|r| {
                r.push_str("; ");
                r.push_str(&h.reason);
            })
            .or_insert(h.reason);
    }
    Ok(out)
}

/// Releases the holds on `snapshot` (only those with `reason`, when given); returns them.
pub fn release(
    backend: &dyn Backend,
    repository: &str,
    snapshot: &SnapshotId,
    reason: Option<&str>,
) -> Result<Vec<HoldRecord>> {
    let mut released = Vec::new();
    for (name, h) in list(backend, repository)?.objects {
        if h.snapshot == *snapshot && reason.is_none_or(|r| r == h.reason) {
            super::session::remove(backend, ObjectKind::Hold, &name)?;
            released.push(h);
        }
    }
    Ok(released)
}
