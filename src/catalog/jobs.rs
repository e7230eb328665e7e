//! The daemon's job queue, in the catalog so that it survives restarts and crashes.
//!
//! A job is one scheduled run of one source. It is queued once per slot (planning twice is
//! harmless), claimed by a worker, and finished as done or failed. A job found running at
//! start-up was cut off by a crash or a kill: it is put back in the queue with the reason, and
//! after `MAX_ATTEMPTS` it is marked failed for good.

use super::db::{Arg, Begin, DbError, DbResult, Engine, Row};
use super::{Catalog, Result};
use crate::args;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How often a job is tried before it is marked failed for good.
pub const MAX_ATTEMPTS: u32 = 3;

/// A failed job waits this long times its attempts before it is tried again.
pub const RETRY_AFTER_MINUTES: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub source: String,
    pub tier: String,
    pub scheduled: DateTime<Utc>,
    pub missed: u32,
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
}

pub(super) fn time(text: String) -> DbResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Decode {
            column: 0,
            reason: format!("'{text}' is not a time: {e}"),
        })
}

pub(super) fn job(row: &Row) -> DbResult<Job> {
    Ok(Job {
        id: row.get(0)?,
        source: row.get(1)?,
        tier: row.get(2)?,
        scheduled: time(row.get(3)?)?,
        missed: row.get(4)?,
        state: row.get(5)?,
        attempts: row.get(6)?,
        error: row.get(7)?,
    })
}

const COLUMNS: &str = "id, source, tier, scheduled, missed, state, attempts, error";

/// Who runs a claimed job, and until when it holds it unless it renews.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    /// The instance of the service (`HOST-ID`, kept in its data directory).
    pub owner: &'a str,
    pub until: DateTime<Utc>,
}

/// Which running jobs [`Catalog::recover`] takes back.
#[derive(Debug, Clone, Copy)]
pub enum Recover<'a> {
    /// All of them: at the start of the only daemon on the catalog (the embedded catalog's
    /// daemon holds the data directory's lock).
    All,
    /// At the start of instance `owner` on a shared catalog: the ones it ran before it
    /// stopped, and those whose lease ran out.
    StartOf(&'a str),
    /// Those whose lease ran out: their instance stopped without a word.
    Expired,
}

/// Leases are compared as text: one fixed format, so that the order of the text is the
/// order of the times.
fn lease_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Catalog {
    /// The newest slot planned for each source.
    pub fn planned(&self) -> Result<BTreeMap<String, DateTime<Utc>>> {
        let rows = self
            .db
            .query_map("SELECT source, last FROM planned", &[], |r| {
                Ok((r.get::<String>(0)?, time(r.get(1)?)?))
            });
        Ok(self.sql(rows)?.into_iter().collect())
    }

    /// The first slot the daemon queued for `key` (a source's backups): when the service
    /// began to keep its schedule. Jobs asked for at once do not count.
    pub fn first_slot(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        let r = self.db.query_value::<Option<String>>(
            "SELECT MIN(scheduled) FROM jobs WHERE source = ?1 AND tier != ?2",
            args![key, crate::daemon::IMMEDIATE],
        );
        match self.sql(r)? {
            Some(t) => self.sql(time(t)).map(Some),
            None => Ok(None),
        }
    }

    /// Starts planning a source from `from` if it has never been planned.
    pub fn plan_from(&mut self, source: &str, from: DateTime<Utc>) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO planned (source, last) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            args![source, from.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    /// Queues the run of `source` for slot `scheduled` and records the slot as planned, in one
    /// transaction. Returns the job id, or `None` if that slot was queued before (by this
    /// instance of the service or another one on the same catalog).
    pub fn enqueue(
        &mut self,
        source: &str,
        tier: &str,
        scheduled: DateTime<Utc>,
        missed: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let db = &*self.db;
        let queued = (|| {
            let tx = db.begin(Begin::Deferred)?;
            let id = tx.query_opt(
                "INSERT INTO jobs (source, tier, scheduled, missed, state, queued)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5)
                 ON CONFLICT DO NOTHING RETURNING id",
                args![
                    source,
                    tier,
                    scheduled.to_rfc3339(),
                    missed,
                    now.to_rfc3339()
                ],
            )?;
            let id = id.map(|r| r.get::<i64>(0)).transpose()?;
            tx.execute(
                "INSERT INTO planned (source, last) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET last = CASE
                   WHEN excluded.last > planned.last THEN excluded.last ELSE planned.last END",
                args![source, scheduled.to_rfc3339()],
            )?;
            tx.commit()?;
            Ok(id)
        })();
        self.sql(queued)
    }

    /// Takes the oldest queued job (of a source not already running) and marks it running.
    /// Instances of the service sharing a PostgreSQL catalog each skip the jobs another is
    /// taking; a source's second job waits for its first whichever instance runs it.
    pub fn claim(&mut self, now: DateTime<Utc>) -> Result<Option<Job>> {
        self.claim_leased(now, None)
    }

    /// Claims as [`Catalog::claim`] does, the job held by `lease` (renewed with
    /// [`Catalog::renew_leases`] while it runs).
    pub fn claim_leased(
        &mut self,
        now: DateTime<Utc>,
        lease: Option<&Lease<'_>>,
    ) -> Result<Option<Job>> {
        let (how, skip) = match self.db.engine() {
            Engine::Sqlite => (Begin::Immediate, ""),
            Engine::Postgres => (Begin::Deferred, " FOR UPDATE SKIP LOCKED"),
        };
        let db = &*self.db;
        let claimed = (|| {
            let tx = db.begin(how)?;
            let Some(row) = tx.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE state = 'queued' AND site IS NULL
                     AND (not_before IS NULL OR not_before <= ?1)
                     AND source NOT IN (SELECT source FROM jobs WHERE state = 'running')
                     ORDER BY scheduled, id LIMIT 1{skip}"
                ),
                args![now.to_rfc3339()],
            )?
            else {
                return Ok(None);
            };
            let mut j = job(&row)?;
            // One job of a source at a time: checked again under the source's lock, since
            // another instance may have claimed a job of it since the query began.
            tx.serialise(&format!("job-source/{}", j.source))?;
            let running: i64 = tx.query_value(
                "SELECT COUNT(*) FROM jobs WHERE source = ?1 AND state = 'running'",
                args![&j.source],
            )?;
            if running > 0 {
                return Ok(None);
            }
            let changed = tx.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started = ?2,
                 owner = ?3, lease_until = ?4
                 WHERE id = ?1 AND state = 'queued'",
                args![
                    j.id,
                    now.to_rfc3339(),
                    lease.map(|l| l.owner),
                    lease.map(|l| lease_time(l.until))
                ],
            )?;
            if changed != 1 {
                return Ok(None);
            }
            tx.commit()?;
            j.state = "running".into();
            j.attempts += 1;
            Ok(Some(j))
        })();
        self.sql(claimed)
    }

    /// Records how a running job ended. A failure is queued again until `MAX_ATTEMPTS`.
    pub fn finish(
        &mut self,
        id: i64,
        outcome: std::result::Result<(), &str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.finish_with(id, outcome, now, true)
    }

    /// Records how a running job ended; a failure is queued again only if `retry` (a cold VM
    /// backup is not: each try costs downtime, so an admin decides).
    pub fn finish_with(
        &mut self,
        id: i64,
        outcome: std::result::Result<(), &str>,
        now: DateTime<Utc>,
        retry: bool,
    ) -> Result<()> {
        let attempts_allowed = if retry { MAX_ATTEMPTS } else { 0 };
        let db = &*self.db;
        let finished = (|| match outcome {
            Ok(()) => db.execute(
                "UPDATE jobs SET state = 'done', finished = ?2, error = NULL WHERE id = ?1",
                args![id, now.to_rfc3339()],
            ),
            Err(e) => {
                let tx = db.begin(Begin::Immediate)?;
                let attempts: Option<i64> =
                    tx.query_value("SELECT attempts FROM jobs WHERE id = ?1", args![id])?;
                let wait = chrono::Duration::minutes(attempts.unwrap_or(0) * RETRY_AFTER_MINUTES);
                let not_before = (now + wait).format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
                let n = tx.execute(
                    "UPDATE jobs SET state = CASE WHEN attempts >= ?3 THEN 'failed' ELSE 'queued' END,
                     finished = ?2, error = ?4, not_before = ?5
                     WHERE id = ?1",
                    args![id, now.to_rfc3339(), attempts_allowed, e, not_before],
                )?;
                tx.commit()?;
                Ok(n)
            }
        })();
        self.sql(finished).map(|_| ())
    }

    /// Jobs still marked running that were cut off, each recorded as such and queued again
    /// (or failed for good after `MAX_ATTEMPTS`); returns them. Which ones were cut off,
    /// `which` says. Each is taken back in one statement that checks it still qualifies, so
    /// an instance renewing its lease at that moment keeps its job.
    pub fn recover(&mut self, now: DateTime<Utc>, which: Recover<'_>) -> Result<Vec<Job>> {
        let (max, finished, lease_now) = (MAX_ATTEMPTS.into(), now.to_rfc3339(), lease_time(now));
        let (cut, reason, args): (_, _, Vec<Arg>) = match which {
            Recover::All => (
                "TRUE",
                "'interrupted: the daemon stopped while this job ran (attempt '",
                vec![max, finished.into()],
            ),
            Recover::StartOf(owner) => (
                "(owner = ?4 OR lease_until < ?3)",
                "'interrupted: the instance running it stopped (attempt '",
                vec![max, finished.into(), lease_now.into(), owner.into()],
            ),
            Recover::Expired => (
                "lease_until < ?3",
                "'taken over: ' || owner || ', which ran it, stopped renewing its lease (attempt '",
                vec![max, finished.into(), lease_now.into()],
            ),
        };
        let r = self.db.query_map(
            &format!(
                "UPDATE jobs SET
                   state = CASE WHEN attempts >= ?1 THEN 'failed' ELSE 'queued' END,
                   finished = ?2, error = {reason} || attempts || ')',
                   not_before = NULL, owner = NULL, lease_until = NULL
                 WHERE state = 'running' AND site IS NULL AND {cut}
                 RETURNING {COLUMNS}"
            ),
            &args,
            job,
        );
        let mut cut = self.sql(r)?;
        cut.sort_by_key(|j| j.id);
        // Their runs that were under way end with them.
        for j in &cut {
            let r = self.db.execute(
                "UPDATE runs SET finished = ?2, result = 'failure', error = ?3
                 WHERE job = ?1 AND result = 'running'",
                args![j.id, now.to_rfc3339(), &j.error],
            );
            self.sql(r)?;
        }
        Ok(cut)
    }

    /// Notes that backup run `run`'s evidence is written, as record `sequence` of its
    /// tenant's chain.
    pub fn run_evidence(&mut self, run: i64, sequence: u64) -> Result<()> {
        let r = self.db.execute(
            "UPDATE runs SET evidence = ?2 WHERE id = ?1",
            args![run, sequence as i64],
        );
        self.sql(r).map(|_| ())
    }

    /// The snapshot an earlier attempt of job `job` took on `target`, if it did and wrote
    /// its evidence: that target is done for the job.
    pub fn backed_up_in_job(&self, job: i64, target: &str) -> Result<Option<String>> {
        let r = self.db.query_opt(
            "SELECT snapshot FROM runs WHERE job = ?1 AND target = ?2 AND kind = 'backup'
               AND result = 'success' AND evidence IS NOT NULL
             ORDER BY id LIMIT 1",
            args![job, target],
        );
        match self.sql(r)? {
            Some(row) => self.sql(row.get(0)),
            None => Ok(None),
        }
    }

    /// Extends the leases of the running jobs `owner` holds to `until`; returns how many.
    pub fn renew_leases(&mut self, owner: &str, until: DateTime<Utc>) -> Result<u64> {
        let r = self.db.execute(
            "UPDATE jobs SET lease_until = ?2 WHERE owner = ?1 AND state = 'running'",
            args![owner, lease_time(until)],
        );
        self.sql(r)
    }

    /// Records how job `id` ended if `owner` still holds it; false when another instance
    /// took it over (its lease had run out), and the outcome is not recorded.
    pub fn finish_leased(
        &mut self,
        id: i64,
        owner: &str,
        outcome: std::result::Result<(), &str>,
        now: DateTime<Utc>,
        retry: bool,
    ) -> Result<bool> {
        let r = self.db.query_opt(
            "SELECT 1 FROM jobs WHERE id = ?1 AND owner = ?2 AND state = 'running'",
            args![id, owner],
        );
        if self.sql(r)?.is_none() {
            return Ok(false);
        }
        self.finish_with(id, outcome, now, retry)?;
        let r = self.db.execute(
            "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE id = ?1",
            args![id],
        );
        self.sql(r).map(|_| true)
    }

    /// Queues a run asked for now (an immediate or cold backup) without touching the
    /// schedule's planning. Returns the job id.
    pub fn enqueue_now(&mut self, key: &str, tier: &str, now: DateTime<Utc>) -> Result<i64> {
        let r = self.db.query_value(
            "INSERT INTO jobs (source, tier, scheduled, missed, state, queued)
             VALUES (?1, ?2, ?3, 0, 'queued', ?3) RETURNING id",
            args![key, tier, now.to_rfc3339()],
        );
        self.sql(r)
    }

    /// Records a job run outside the daemon (a cold backup from the command line) as running
    /// now, so that the job list shows it. Returns it.
    pub fn start_now(&mut self, key: &str, tier: &str, now: DateTime<Utc>) -> Result<Job> {
        let r = self.db.query_value(
            "INSERT INTO jobs (source, tier, scheduled, missed, state, queued, attempts, started)
             VALUES (?1, ?2, ?3, 0, 'running', ?3, 1, ?3) RETURNING id",
            args![key, tier, now.to_rfc3339()],
        );
        let id: i64 = self.sql(r)?;
        self.job(id)?
            .ok_or_else(|| self.other(format!("job {id} vanished after its insert")))
    }

    /// The newest `limit` jobs, newest first.
    pub fn jobs(&self, limit: u32) -> Result<Vec<Job>> {
        let rows = self.db.query_map(
            &format!("SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"),
            args![limit],
            job,
        );
        self.sql(rows)
    }

    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        let r = self.db.query_opt(
            &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
            args![id],
        );
        self.sql(r)?.map(|row| self.sql(job(&row))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn queue_claim_finish_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let now = at("2026-11-23T10:00:00Z");
        c.plan_from("erp", now).unwrap();
        c.plan_from("erp", at("2030-01-01T00:00:00Z")).unwrap(); // already planned: unchanged
        assert_eq!(c.planned().unwrap()["erp"], now);

        let slot = at("2026-11-23T10:30:00Z");
        let id = c.enqueue("erp", "90/48", slot, 0, now).unwrap().unwrap();
        assert_eq!(
            c.enqueue("erp", "90/48", slot, 0, now).unwrap(),
            None,
            "queued once"
        );
        assert_eq!(c.planned().unwrap()["erp"], slot);
        c.enqueue("share", "90/4", at("2026-11-23T10:00:00Z"), 2, now)
            .unwrap();

        // Oldest slot first; one job per source at a time.
        let first = c.claim(now).unwrap().unwrap();
        assert_eq!((first.source.as_str(), first.missed), ("share", 2));
        let second = c.claim(now).unwrap().unwrap();
        assert_eq!(second.id, id);
        assert_eq!(c.claim(now).unwrap(), None);
        c.finish(first.id, Ok(()), now).unwrap();
        assert_eq!(c.job(first.id).unwrap().unwrap().state, "done");

        // A crash while `second` runs: at start-up it is queued again, with the reason.
        let mut c = Catalog::open(dir.path()).unwrap();
        let cut = c.recover(now, Recover::All).unwrap();
        assert_eq!(cut.len(), 1);
        let j = c.job(id).unwrap().unwrap();
        assert_eq!(j.state, "queued");
        assert!(j.error.unwrap().contains("interrupted"), "reason kept");
        // It fails twice more, each retry waiting 5 minutes per attempt: then it is failed for
        // good.
        let mut t = now;
        for wait in [10, 15] {
            let j = c.claim(t).unwrap().unwrap();
            c.finish(j.id, Err("source unreadable"), t).unwrap();
            if wait == 10 {
                let soon = t + chrono::Duration::minutes(wait - 1);
                assert_eq!(c.claim(soon).unwrap(), None, "not retried before its time");
            }
            t += chrono::Duration::minutes(wait);
        }
        let j = c.job(id).unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.attempts), ("failed", 3));
        assert_eq!(j.error.as_deref(), Some("source unreadable"));

        // A cold VM backup run from the command line: listed as running, and failed for good
        // on its first failure (no retry costs the VM more downtime).
        let cold = c.start_now("web>cold", "now", t).unwrap();
        assert_eq!((cold.state.as_str(), cold.attempts), ("running", 1));
        assert_eq!(c.claim(t).unwrap(), None, "a running job is not claimed");
        c.finish_with(cold.id, Err("did not shut down"), t, false)
            .unwrap();
        let cold = c.job(cold.id).unwrap().unwrap();
        assert_eq!(cold.state, "failed");
        assert_eq!(c.claim(t + chrono::Duration::days(1)).unwrap(), None);
        assert_eq!(c.claim(now).unwrap(), None);
    }
}
