//! Jobs asked for at the centre that run at the site: a backup now, a cold VM backup. The
//! agent waits for them with a long poll (the centre answers as soon as one is queued, or
//! after `WAIT` with none), queues each in its own catalog once, tells the centre it runs,
//! and tells it how it ended once the site's daemon has finished it.

use super::client::Centre;
use super::{Error, Result};
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
    /// What runs: a source's name, `SOURCE>cold` for a cold VM backup, or `SPEC>drill` for a
    /// requested drill.
    pub key: String,
    pub tier: String,
    /// Not before this moment (a drill's planned time).
    pub scheduled: String,
    /// For a drill: what the centre planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<SiteDrill>,
}

/// A drill requested at the centre, as the site's agent plans it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteDrill {
    pub tenant: String,
    pub contract: String,
    pub source: String,
    pub requested_by: Option<String>,
}

/// What the agent says of a job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobState {
    /// `running`, `done` or `failed`.
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
    /// For a drill that ran: its outcome (`success` or `failure`).
    #[serde(default)]
    pub outcome: Option<String>,
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
        let scheduled = chrono::DateTime::parse_from_rfc3339(&job.scheduled)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| Error::Other(format!("job {}: scheduled: {e}", job.id)))?;
        let (_, new) =
            catalog.take_centre_job(job.id, &job.key, &job.tier, scheduled, clock.now())?;
        if let (true, Some(d), Some(spec)) = (
            new,
            &job.drill,
            job.key.strip_suffix(crate::drill::JOB_SUFFIX),
        ) {
            catalog.plan_drill(&crate::catalog::drills::NewDrill {
                spec,
                tenant: &d.tenant,
                contract: &d.contract,
                source: &d.source,
                reason: "requested",
                planned_for: scheduled,
                requested_by: d.requested_by.as_deref(),
            })?;
        }
        say(centre, key, clock, job.id, "running", None, None)?;
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
        // A drill's outcome is its local drill's.
        let outcome = match done.key.strip_suffix(crate::drill::JOB_SUFFIX) {
            Some(spec) => catalog
                .drills(None)?
                .into_iter()
                .find(|d| {
                    d.spec == spec
                        && crate::evidence::record::time(d.planned_for) == time(&done.scheduled)
                })
                .and_then(|d| d.outcome),
            None => None,
        };
        say(
            centre,
            key,
            clock,
            done.centre_job,
            &done.state,
            done.error.as_deref(),
            outcome.as_deref(),
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
    outcome: Option<&str>,
) -> Result<()> {
    let body = JobState {
        state: state.into(),
        error: error.map(str::to_string),
        outcome: outcome.map(str::to_string),
    };
    centre.call::<_, serde_json::Value>(
        "POST",
        &format!("{PATH}/{id}"),
        Some(&body),
        Some((key, clock.now())),
    )?;
    Ok(())
}

/// A time as the catalog wrote it (RFC 3339), as records write it; itself when unreadable.
fn time(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| crate::evidence::record::time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| text.to_string())
}
