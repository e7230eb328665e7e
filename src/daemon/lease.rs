//! Leases on running jobs, so that instances of the service sharing one catalog never run a
//! job twice and never leave one behind.
//!
//! Each instance has a name of its own (`HOST-ID`, kept in its data directory). A job it
//! claims is leased to it for a while, and it renews the leases of its running jobs at every
//! turn of its loop. On a shared (PostgreSQL) catalog every instance also looks for jobs whose
//! lease ran out: their instance was killed or cut off, and the job is queued again for
//! whichever instance claims it next. On the embedded catalog only one daemon can run (it
//! holds the data directory's lock), so at its start every job still marked running was its
//! own, cut off.

use super::clock::Clock;
use crate::catalog::db::Engine;
use crate::catalog::jobs::{Job, Lease, Recover};
use crate::catalog::{self, Catalog};
use chrono::{DateTime, Utc};
use std::path::Path;

/// A lease lasts at least this long of the service's time...
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// ...and at least this long in real time (a clock running faster in tests and simulations
/// must not make leases run out between two turns of the loop).
const LEASE_REAL: std::time::Duration = std::time::Duration::from_secs(15);

pub(super) struct Leases {
    /// This instance's name.
    pub owner: String,
    span: chrono::Duration,
    /// Whether other instances may share the catalog.
    shared: bool,
}

impl Leases {
    pub fn new(data_dir: &Path, clock: &Clock, engine: Engine) -> std::io::Result<Leases> {
        Ok(Leases {
            owner: instance_name(data_dir)?,
            span: LEASE.max(clock.clock_time(LEASE_REAL)),
            shared: engine == Engine::Postgres,
        })
    }

    /// The lease of a job claimed at `now`.
    pub fn lease(&self, now: DateTime<Utc>) -> Lease<'_> {
        Lease {
            owner: &self.owner,
            until: now + self.span,
        }
    }

    /// The jobs cut off that this instance takes back at its start.
    pub fn at_start(&self) -> Recover<'_> {
        if self.shared {
            Recover::StartOf(&self.owner)
        } else {
            Recover::All
        }
    }

    /// At each turn of the loop: renews this instance's leases (`running`: it holds some), and (on a shared catalog)
    /// takes back the jobs of instances that stopped renewing theirs. Returns those.
    pub fn turn(
        &self,
        catalog: &mut Catalog,
        now: DateTime<Utc>,
        running: bool,
    ) -> catalog::Result<Vec<Job>> {
        // Nothing held, nothing to renew: an idle loop writes nothing.
        if running {
            catalog.renew_leases(&self.owner, now + self.span)?;
        }
        if self.shared {
            catalog.recover(now, Recover::Expired)
        } else {
            Ok(Vec::new())
        }
    }
}

/// This instance's name: the host's, and an id made at its first start and kept in the data
/// directory (so that a restarted instance knows its own jobs).
fn instance_name(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    let id = match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
        Ok(_) => new_id(&path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_id(&path)?,
        Err(e) => return Err(e),
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    Ok(if host.is_empty() {
        id
    } else {
        format!("{host}-{id}")
    })
}

fn new_id(path: &Path) -> std::io::Result<String> {
    let id = hex::encode(rand::random::<[u8; 6]>());
    crate::files::write_atomically(path, format!("{id}\n").as_bytes(), None)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_keeps_its_name_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let first = instance_name(dir.path()).unwrap();
        assert_eq!(instance_name(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(instance_name(other.path()).unwrap(), first);
    }

    #[test]
    fn a_fast_clock_does_not_shorten_a_lease_below_real_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fast = Clock::fake(start, 600.0);
        let leases = Leases::new(dir.path(), &fast, Engine::Postgres).unwrap();
        // 15 real seconds at 600 times: 2.5 hours of the clock's time.
        assert_eq!(
            leases.lease(start).until - start,
            chrono::Duration::minutes(150)
        );
        let real = Leases::new(dir.path(), &Clock::real(), Engine::Sqlite).unwrap();
        assert_eq!(real.lease(start).until - start, LEASE);
    }
}
