//! Jobs asked for at the centre for a source that runs at a site (backup now, a cold VM
//! backup). At the centre such a job waits, marked with its site, until that site's agent
//! takes it; the central daemon never claims it, and the agent says when it runs and how it
//! ended, so it reads like any other job. At the agent, the local job that runs it names the
//! centre's job (once: taking it again is a no-op) and notes when its end was reported.

use super::jobs::Job;
use super::{Catalog, Result};
use crate::args;
use chrono::{DateTime, Utc};

/// Where the instances of the service sharing a PostgreSQL catalog hear of a job queued for
/// a site (the message is the site's name), so that each wakes the agents of that site that
/// wait on it, whichever instance queued the job.
pub const QUEUED_CHANNEL: &str = "lifeboat_site_jobs";

/// Hears the jobs queued for sites by any instance of the service on the catalog at
/// `place`: `queued(Some(site))` for each, and `queued(None)` when a job may have been
/// queued unheard (the listening connection was made again). None for an embedded catalog,
/// which has one instance.
pub fn hear_queued(
    place: &super::Place,
    mut queued: impl FnMut(Option<&str>) + Send + 'static,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    use super::db::postgres::{listen, Heard};
    match place {
        super::Place::Embedded(_) => None,
        super::Place::Postgres(url) => {
            Some(listen(
                url.clone(),
                QUEUED_CHANNEL,
                move |heard| match heard {
                    Heard::Message(site) => queued(Some(&site)),
                    Heard::Listening => queued(None),
                },
            ))
        }
    }
}

const COLUMNS: &str = "id, source, tier, scheduled, missed, state, attempts, error";

/// A finished local job whose end the centre has not heard of yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreported {
    pub local: i64,
    pub centre_job: i64,
    pub key: String,
    pub scheduled: String,
    pub state: String,
    pub error: Option<String>,
}

impl Catalog {
    /// At the centre: queues `key` (tier `tier`, for `scheduled`) for `site`'s agent.
    /// Returns the job id.
    pub fn enqueue_at_site(
        &mut self,
        key: &str,
        tier: &str,
        site: &str,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let r = self.db.query_value(
            "INSERT INTO jobs (source, tier, scheduled, missed, state, queued, site)
             VALUES (?1, ?2, ?3, 0, 'queued', ?4, ?5) RETURNING id",
            args![key, tier, scheduled.to_rfc3339(), now.to_rfc3339(), site],
        );
        let id = self.sql(r)?;
        // Heard by the other instances, whose agents of the site may be waiting there.
        let r = self.db.announce(QUEUED_CHANNEL, site);
        self.sql(r)?;
        Ok(id)
    }

    /// At the centre: the jobs waiting for `site`'s agent, oldest first.
    pub fn queued_at_site(&self, site: &str) -> Result<Vec<Job>> {
        let rows = self.db.query_map(
            &format!("SELECT {COLUMNS} FROM jobs WHERE site = ?1 AND state = 'queued' ORDER BY id"),
            args![site],
            super::jobs::job,
        );
        self.sql(rows)
    }

    /// At the centre: what `site`'s agent says of job `id` (`running`, `done` or `failed`).
    /// False when it is not a job of that site.
    pub fn site_job_state(
        &mut self,
        id: i64,
        site: &str,
        state: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = now.to_rfc3339();
        let r = match state {
            "running" => self.db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started = ?3
                 WHERE id = ?1 AND site = ?2 AND state = 'queued'",
                args![id, site, &now],
            ),
            _ => self.db.execute(
                "UPDATE jobs SET state = ?3, finished = ?4, error = ?5
                 WHERE id = ?1 AND site = ?2 AND state IN ('queued', 'running')",
                args![id, site, state, &now, error],
            ),
        };
        let changed = self.sql(r)?;
        if changed == 1 {
            return Ok(true);
        }
        // Told again (an answer was lost): fine if it is that site's job.
        let r = self.db.query_opt(
            "SELECT 1 FROM jobs WHERE id = ?1 AND site = ?2",
            args![id, site],
        );
        Ok(self.sql(r)?.is_some())
    }

    /// At the agent: queues the local run of the centre's job `centre_job`, once, not
    /// before `scheduled`. Returns the local job's id, and whether it was new.
    pub fn take_centre_job(
        &mut self,
        centre_job: i64,
        key: &str,
        tier: &str,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool)> {
        let r = self.db.execute(
            "INSERT INTO jobs (source, tier, scheduled, missed, state, queued, centre_job,
             not_before)
             VALUES (?1, ?2, ?3, 0, 'queued', ?4, ?5, ?3)
             ON CONFLICT DO NOTHING",
            args![
                key,
                tier,
                scheduled.to_rfc3339(),
                now.to_rfc3339(),
                centre_job
            ],
        );
        let new = self.sql(r)? == 1;
        let r = self.db.query_value(
            "SELECT id FROM jobs WHERE centre_job = ?1",
            args![centre_job],
        );
        Ok((self.sql(r)?, new))
    }

    /// At the agent: local runs of the centre's jobs that ended, not yet reported.
    pub fn unreported(&self) -> Result<Vec<Unreported>> {
        let rows = self.db.query_map(
            "SELECT id, centre_job, source, scheduled, state, error FROM jobs
             WHERE centre_job IS NOT NULL AND reported IS NULL AND state IN ('done', 'failed')
             ORDER BY id",
            &[],
            |r| {
                Ok(Unreported {
                    local: r.get(0)?,
                    centre_job: r.get(1)?,
                    key: r.get(2)?,
                    scheduled: r.get(3)?,
                    state: r.get(4)?,
                    error: r.get(5)?,
                })
            },
        );
        self.sql(rows)
    }

    /// At the agent: the centre heard how local job `local` ended.
    pub fn reported(&mut self, local: i64, now: DateTime<Utc>) -> Result<()> {
        let r = self.db.execute(
            "UPDATE jobs SET reported = ?2 WHERE id = ?1",
            args![local, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_sites_job_waits_for_its_agent_and_reads_like_any_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut centre = Catalog::open(dir.path()).unwrap();
        let now = at("2026-11-25T12:00:00Z");
        let id = centre
            .enqueue_at_site("share", "now", "office", now, now)
            .unwrap();
        assert_eq!(
            centre.claim(now).unwrap(),
            None,
            "the central daemon leaves it"
        );
        assert_eq!(centre.queued_at_site("elsewhere").unwrap(), []);
        assert_eq!(centre.queued_at_site("office").unwrap()[0].id, id);

        // Another site cannot speak for it; its own agent can, twice over.
        assert!(!centre
            .site_job_state(id, "elsewhere", "running", None, now)
            .unwrap());
        assert!(centre
            .site_job_state(id, "office", "running", None, now)
            .unwrap());
        assert!(centre
            .site_job_state(id, "office", "running", None, now)
            .unwrap());
        assert_eq!(centre.queued_at_site("office").unwrap(), []);
        assert_eq!(
            centre
                .recover(now, crate::catalog::jobs::Recover::All)
                .unwrap(),
            [],
            "a centre's restart leaves it running"
        );
        assert!(centre
            .site_job_state(id, "office", "failed", Some("disk full"), now)
            .unwrap());
        let job = centre.job(id).unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.error.as_deref()),
            ("failed", Some("disk full"))
        );

        // At the agent: taken once, however often it is delivered; reported once it ended.
        let other = tempfile::tempdir().unwrap();
        let mut agent = Catalog::open(other.path()).unwrap();
        let (local, new) = agent.take_centre_job(id, "share", "now", now, now).unwrap();
        assert!(new);
        assert_eq!(
            agent.take_centre_job(id, "share", "now", now, now).unwrap(),
            (local, false)
        );
        assert_eq!(agent.unreported().unwrap(), []);
        let claimed = agent.claim(now).unwrap().unwrap();
        assert_eq!(claimed.id, local);
        agent.finish(local, Ok(()), now).unwrap();
        let ended = agent.unreported().unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].centre_job, ended[0].state.as_str()), (id, "done"));
        agent.reported(local, now).unwrap();
        assert_eq!(agent.unreported().unwrap(), []);
    }
}
