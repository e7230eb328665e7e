//! Jobs asked for at the centre that run at the site: a backup now, a cold VM backup. The
//! agent waits for them with a long poll (the centre answers as soon as one is queued, or
//! after `WAIT` with none), queues each in its own catalog once, tells the centre it runs,
//! and tells it how it ended once the site's daemon has finished it.

use super::client::Centre;
use super::Result;
use crate::catalog::Catalog;
use crate::daemon::Clock;
use crate::repo::crypto::SecretKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const PATH: &str = "/api/v1/agent/jobs";

/// How long the centre holds a poll open with nothing to say, at most.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A job for the site, as the centre queued it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteJob {
    /// The centre's job id (`/api/v1/jobs/ID`).
    pub id: i64,
    /// What runs: a source's name, or `SOURCE>cold` for a cold VM backup.
    pub key: String,
    pub tier: String,
}

/// What the agent says of a job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobState {
    /// `running`, `done` or `failed`.
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// Waits (up to `wait`) for the site's jobs, queues each one locally and says it runs;
/// then reports the ends of finished ones. Returns how many it took.
pub fn take(
    data_dir: &Path,
    centre: &Centre,
    key: &SecretKey,
    clock: &Clock,
    wait: std::time::Duration,
) -> Result<usize> {
    let path = format!("{PATH}?wait={}", wait.as_secs());
    let jobs: Vec<SiteJob> = centre.call::<(), _>("GET", &path, None, Some((key, clock.now())))?;
    let mut catalog = Catalog::open(data_dir)?;
    for job in &jobs {
        catalog.take_centre_job(job.id, &job.key, &job.tier, clock.now())?;
        say(centre, key, clock, job.id, "running", None)?;
    }
    report(&mut catalog, centre, key, clock)?;
    Ok(jobs.len())
}

/// Tells the centre how the site's runs of its jobs ended (those not told yet).
pub fn report(
    catalog: &mut Catalog,
    centre: &Centre,
    key: &SecretKey,
    clock: &Clock,
) -> Result<()> {
    for done in catalog.unreported()? {
        say(
            centre,
            key,
            clock,
            done.centre_job,
            &done.state,
            done.error.as_deref(),
        )?;
        catalog.reported(done.local, clock.now())?;
    }
    Ok(())
}

fn say(
    centre: &Centre,
    key: &SecretKey,
    clock: &Clock,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<()> {
    let body = JobState {
        state: state.into(),
        error: error.map(str::to_string),
    };
    centre.call::<_, serde_json::Value>(
        "POST",
        &format!("{PATH}/{id}"),
        Some(&body),
        Some((key, clock.now())),
    )?;
    Ok(())
}
