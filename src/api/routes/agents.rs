//! `/api/v1/agent/…`: what enrolled agents ask, each request signed with the agent's key:
//! checking in, fetching the site's assignment, pushing the evidence of its outbox.

use crate::agent::assignment::Assignment;
use crate::agent::check_in::CheckIn;
use crate::agent::jobs::{JobState, SiteDrill, SiteJob};
use crate::agent::outbox::{NotTaken, Push, PushAnswer};
use crate::api::error::{ErrorBody, Json, Path, Query};
use crate::api::{AgentCaller, ApiError, SignedJson, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(assignment))
        .routes(routes!(push_evidence))
        .routes(routes!(site_jobs))
        .routes(routes!(job_state))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CheckInQuery {
    /// Records in the agent's outbox the centre has not acknowledged.
    pub backlog: Option<u64>,
}

/// An enrolled agent says it is alive (a request signed with its key); the answer says what
/// the centre knows it as, the centre's time, how far the agent's clock is off, and the
/// version of the site's assignment.
#[utoipa::path(get, path = "/api/v1/agent/check-in", tag = "agents", security(()),
    params(
        CheckInQuery,
        ("x-lifeboat-agent" = String, Header, description = "The agent's fingerprint"),
        ("x-lifeboat-time" = String, Header, description = "When the agent signed (RFC 3339)"),
        ("x-lifeboat-nonce" = String, Header, description = "32 random hex digits, used once"),
        ("x-lifeboat-signature" = String, Header,
            description = "Base64 of the detached OpenPGP signature of the request"),
    ),
    responses((status = 200, body = CheckIn),
              (status = 403, body = ErrorBody, description = "The agent is revoked")))]
async fn check_in(
    api: axum::extract::State<State>,
    caller: AgentCaller,
    query: Query<CheckInQuery>,
) -> Result<Json<CheckIn>, ApiError> {
    let agent = caller.0.agent;
    if let Some(backlog) = query.0.backlog {
        let id = agent.id.clone();
        let backlog = i64::try_from(backlog).unwrap_or(i64::MAX);
        api.0
            .db(move |catalog, _| {
                catalog
                    .agent_backlog(&id, backlog)
                    .map_err(ApiError::internal)
            })
            .await?;
    }
    let assignment = api
        .0
        .assignments
        .get(&agent.site)
        .map(|a| a.version.clone());
    Ok(Json(CheckIn {
        agent: agent.id,
        site: agent.site,
        tenant: agent.tenant,
        centre_time: crate::evidence::record::time(api.clock.now()),
        clock_skew_ms: caller.0.skew_ms,
        assignment,
    }))
}

/// The agent's site's assignment: its sources, tiers, targets, contracts, drill specs and
/// recipients. Secrets are named in it (passfiles, environment variables, credential
/// profiles), never included: the agent resolves them at the site.
#[utoipa::path(get, path = "/api/v1/agent/assignment", tag = "agents", security(()),
    responses((status = 200, body = Assignment),
              (status = 403, body = ErrorBody, description = "The agent is revoked"),
              (status = 404, body = ErrorBody,
               description = "The site is no longer in the centre's configuration")))]
async fn assignment(
    api: axum::extract::State<State>,
    caller: AgentCaller,
) -> Result<Json<Assignment>, ApiError> {
    let site = &caller.0.agent.site;
    api.assignments.get(site).cloned().map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "site '{site}' is no longer in the centre's configuration"
        ))
    })
}

/// Records of the agent's outbox (one tenant's chain, in order), signed by the agent. A
/// record the centre holds already is acknowledged again; the answer says up to which record
/// the chain is safe at the centre.
#[utoipa::path(post, path = "/api/v1/agent/evidence", tag = "agents", security(()),
    request_body = Push,
    responses((status = 200, body = PushAnswer), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "The agent is revoked"),
              (status = 409, body = ErrorBody,
               description = "The records do not continue the centre's copy of the chain")))]
async fn push_evidence(
    api: axum::extract::State<State>,
    SignedJson(caller, push): SignedJson<Push>,
) -> Result<Json<PushAnswer>, ApiError> {
    let agent = caller.agent;
    let (answer, new) = api
        .0
        .db(move |catalog, api| {
            let now = crate::evidence::record::time(api.clock.now());
            match crate::agent::outbox::take(catalog, &agent, &push, &now)
                .map_err(ApiError::internal)?
            {
                Ok(done) => Ok(done),
                Err(NotTaken::Bad(why)) => Err(ApiError::bad_request(why)),
                Err(NotTaken::Chain(why)) => Err(ApiError::conflict(why)),
            }
        })
        .await?;
    if let Some(url) = api.loaded.config.service.webhook().map(str::to_string) {
        // Incidents at sites reach the MSP as the centre's own do; the records are safe first.
        tokio::task::spawn_blocking(move || {
            for stored in &new {
                if let Ok(record) = crate::evidence::Record::parse(&stored.record) {
                    if let Err(e) = crate::evidence::incident::notify(&url, &record, stored) {
                        eprintln!("webhook: {e}");
                    }
                }
            }
        });
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for a job when none is queued (at most 20; default 0).
    pub wait: Option<u64>,
}

/// The jobs queued for the agent's site (backups now, cold VM backups). With `wait`, the
/// answer comes as soon as one is queued, or empty after that many seconds. A job stays
/// queued until the agent says it runs.
#[utoipa::path(get, path = "/api/v1/agent/jobs", tag = "agents", security(()),
    params(WaitQuery),
    responses((status = 200, body = [SiteJob]),
              (status = 403, body = ErrorBody, description = "The agent is revoked")))]
async fn site_jobs(
    api: axum::extract::State<State>,
    caller: AgentCaller,
    query: Query<WaitQuery>,
) -> Result<Json<Vec<SiteJob>>, ApiError> {
    let site = caller.0.agent.site;
    // Within the request time limit, with room for the answer.
    let most = api
        .limits
        .request_timeout
        .saturating_sub(std::time::Duration::from_secs(5))
        .min(crate::agent::jobs::WAIT);
    let wait = std::time::Duration::from_secs(query.0.wait.unwrap_or(0)).min(most);
    let deadline = tokio::time::Instant::now() + wait;
    // Whether a bell ended a wait: the jobs found then were queued while the poll waited.
    let mut rung = false;
    loop {
        // Listen before looking, so that a job queued in between is not missed.
        let bell = api.site_jobs.of(&site);
        let woken = bell.notified();
        let mut woken = std::pin::pin!(woken);
        woken.as_mut().enable();
        let here = site.clone();
        let jobs = api
            .0
            .db(move |catalog, _| {
                let mut out = Vec::new();
                for j in catalog.queued_at_site(&here).map_err(ApiError::internal)? {
                    // A drill goes with what the centre planned (tenant, contract, source).
                    let drill = match j.source.strip_suffix(crate::drill::JOB_SUFFIX) {
                        Some(spec) => catalog
                            .planned_drill(spec, j.scheduled)
                            .map_err(ApiError::internal)?
                            .map(|d| SiteDrill {
                                tenant: d.tenant,
                                contract: d.contract,
                                source: d.source,
                                requested_by: d.requested_by,
                            }),
                        None => None,
                    };
                    out.push(SiteJob {
                        id: j.id,
                        key: j.source,
                        tier: j.tier,
                        scheduled: crate::evidence::record::time(j.scheduled),
                        drill,
                    });
                }
                Ok(out)
            })
            .await?;
        if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
            if rung && !jobs.is_empty() {
                api.site_jobs
                    .woken
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(Json(jobs));
        }
        let _waiting = Waiting::start(&api.site_jobs);
        tokio::select! {
            _ = &mut woken => rung = true,
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// One poll counted as waiting for as long as it lives (a poll whose client goes away is
/// dropped in the middle of its wait).
struct Waiting<'a>(&'a crate::api::SiteBells);

impl<'a> Waiting<'a> {
    fn start(bells: &'a crate::api::SiteBells) -> Waiting<'a> {
        bells
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(bells)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The agent says a job of its site runs, or how it ended (`done`, `failed` with its error).
#[utoipa::path(post, path = "/api/v1/agent/jobs/{id}", tag = "agents", security(()),
    params(("id" = i64, Path)), request_body = JobState,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn job_state(
    api: axum::extract::State<State>,
    Path(id): Path<i64>,
    SignedJson(caller, said): SignedJson<JobState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !["running", "done", "failed"].contains(&said.state.as_str()) {
        return Err(ApiError::bad_request(format!(
            "state '{}' is not running, done or failed",
            said.state
        )));
    }
    let site = caller.agent.site;
    api.0
        .db(move |catalog, api| {
            let error = said
                .error
                .as_deref()
                .map(|e| e.chars().take(4000).collect::<String>());
            let now = api.clock.now();
            let known = catalog
                .site_job_state(id, &site, &said.state, error.as_deref(), now)
                .map_err(ApiError::internal)?;
            if !known {
                return Err(crate::api::routes::no_such(
                    "job of this site",
                    &id.to_string(),
                ));
            }
            // A requested drill that ran at the site: the centre's plan of it is done.
            let job = catalog.job(id).map_err(ApiError::internal)?;
            let spec = job
                .as_ref()
                .and_then(|j| j.source.strip_suffix(crate::drill::JOB_SUFFIX));
            if let (Some(job), Some(spec), "done" | "failed") = (&job, spec, said.state.as_str()) {
                if let Some(planned) = catalog
                    .planned_drill(spec, job.scheduled)
                    .map_err(ApiError::internal)?
                {
                    let outcome = match said.outcome.as_deref() {
                        Some("success") => "success",
                        _ => "failure",
                    };
                    catalog
                        .finish_drill(planned.id, outcome, None, now)
                        .map_err(ApiError::internal)?;
                }
            }
            Ok(Json(serde_json::json!({ "job": id, "state": said.state })))
        })
        .await
}
