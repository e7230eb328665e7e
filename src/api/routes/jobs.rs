//! `/api/v1/jobs` and `/api/v1/audit`: the state of triggered work, and who changed what.

use super::no_such;
use crate::api::auth::{Principal, Role};
use crate::api::error::{ErrorBody, Json, Path};
use crate::api::{require, ApiError, State};
use crate::catalog::jobs::Job;
use crate::catalog::tokens::AuditRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(audit_log))
}

/// Recent jobs (scheduled and triggered) of the sources this token sees, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, body = [Job]), (status = 401, body = ErrorBody)))]
async fn list_jobs(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<Job>>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let jobs = catalog.jobs(500).map_err(ApiError::internal)?;
            Ok(Json(
                jobs.into_iter()
                    .filter(|j| match api.tenant_of_job(&j.source) {
                        Some(t) => who.sees(t),
                        None => !who.role.scoped(),
                    })
                    .map(|j| readable(api, &who, j))
                    .collect(),
            ))
        })
        .await
}

/// A job as `who` may read it.
fn readable(api: &crate::api::Api, who: &Principal, mut job: Job) -> Job {
    job.error = job.error.map(|e| api.for_reader(who, &e));
    job
}

/// One job: queued, running, done or failed, with its error.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path)),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_job(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Job>, ApiError> {
    api.0
        .db(move |catalog, api| {
            catalog
                .job(id)
                .map_err(ApiError::internal)?
                .filter(|j| match api.tenant_of_job(&j.source) {
                    Some(t) => who.sees(t),
                    None => !who.role.scoped(),
                })
                .map(|j| Json(readable(api, &who, j)))
                .ok_or_else(|| no_such("job", &id.to_string()))
        })
        .await
}

/// The audit log: every change made through the API and the token commands, newest first
/// (admins and operators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    responses((status = 200, body = [AuditRow]), (status = 403, body = ErrorBody)))]
async fn audit_log(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    require(&who, &[Role::Admin, Role::Operator])?;
    api.0
        .db(move |catalog, _| {
            catalog
                .audit_log(1000)
                .map(Json)
                .map_err(ApiError::internal)
        })
        .await
}
