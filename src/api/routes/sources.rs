//! `/api/v1/sources`: each source's last backup and RPO state, and the triggers of an
//! immediate backup and of a cold VM backup.

use super::{accepted, no_such, refused_unseen, Accepted};
use crate::api::auth::{Principal, Role};
use crate::api::error::{ErrorBody, Json, Path};
use crate::api::{require, ApiError, State};
use crate::catalog::{Catalog, RunRecord};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_sources))
        .routes(routes!(get_source))
        .routes(routes!(backup_now))
        .routes(routes!(cold_backup))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceOut {
    pub id: String,
    pub tenant: String,
    pub contract: String,
    /// `files`, `postgres`, `mysql`, `sqlite` or `vm`.
    pub kind: String,
    pub tier: String,
    pub targets: Vec<String>,
    /// When the newest successful backup was taken.
    pub last_success: Option<String>,
    /// The newest run, whatever its result.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    /// The age of the newest successful backup now, in seconds.
    pub data_age_seconds: Option<i64>,
    /// `ok` (within the RPO), `late` (older than the RPO) or `never` (no backup yet).
    pub rpo_state: String,
    pub rpo: String,
    /// The next scheduled run.
    pub next_run: Option<String>,
    /// Bytes the newest successful backup added, and how long it took.
    pub last_bytes_added: Option<i64>,
    pub last_duration_seconds: Option<f64>,
}

/// The state of every source `who` sees, from the catalog's runs; errors as `who` may read
/// them.
pub fn sources_out(
    api: &crate::api::Api,
    catalog: &Catalog,
    who: &Principal,
) -> Result<Vec<SourceOut>, ApiError> {
    let mut runs = catalog.runs(None).map_err(ApiError::internal)?;
    runs.extend(site_runs(catalog)?);
    let now = api.clock.now();
    let config = &api.loaded.config;
    let tz = config.service.time_zone();
    let mut out = Vec::new();
    for (id, s) in &config.sources {
        if !who.sees(s.tenant.get_ref()) {
            continue;
        }
        let mine: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.kind == "backup" && r.source.as_deref() == Some(id.as_str()))
            .collect();
        let parse = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        let success = mine
            .iter()
            .filter(|r| r.result == "success")
            .max_by_key(|r| parse(&r.started));
        let last = mine.iter().max_by_key(|r| r.id);
        let last_success = success.and_then(|r| parse(&r.started));
        let rpo = config
            .contracts
            .get(s.contract.get_ref())
            .and_then(|c| c.rpo());
        let age = last_success.map(|t| now - t);
        let rpo_state = match (age, rpo) {
            (None, _) => "never",
            (Some(a), Some(r)) if a > r => "late",
            _ => "ok",
        };
        let tier = api.loaded.tiers.get(id);
        let duration = success.and_then(|r| {
            let f = parse(r.finished.as_deref()?)?;
            Some((f - parse(&r.started)?).num_milliseconds() as f64 / 1000.0)
        });
        out.push(SourceOut {
            id: id.clone(),
            tenant: s.tenant.get_ref().clone(),
            contract: s.contract.get_ref().clone(),
            kind: format!("{:?}", s.kind).to_lowercase(),
            tier: tier.map(|t| t.name.clone()).unwrap_or_default(),
            targets: s.targets.get_ref().clone(),
            last_success: last_success.map(crate::evidence::record::time),
            last_result: last.map(|r| r.result.clone()),
            last_error: last.and_then(|r| r.error.as_deref().map(|e| api.for_reader(who, e))),
            data_age_seconds: age.map(|a| a.num_seconds()),
            rpo_state: rpo_state.into(),
            rpo: config
                .contracts
                .get(s.contract.get_ref())
                .map(|c| c.rpo.get_ref().clone())
                .unwrap_or_default(),
            next_run: tier
                .and_then(|t| t.runs(&tz, now, 1).first().copied())
                .map(crate::evidence::record::time),
            last_bytes_added: success.and_then(|r| r.bytes_added),
            last_duration_seconds: duration,
        });
    }
    Ok(out)
}

/// The sources this token sees, each with its last backup and RPO state.
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources",
    responses((status = 200, body = [SourceOut]), (status = 401, body = ErrorBody)))]
async fn list_sources(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<SourceOut>>, ApiError> {
    api.0
        .db(move |catalog, api| Ok(Json(sources_out(api, catalog, &who)?)))
        .await
}

/// One source.
#[utoipa::path(get, path = "/api/v1/sources/{source}", tag = "sources",
    params(("source" = String, Path)),
    responses((status = 200, body = SourceOut), (status = 404, body = ErrorBody)))]
async fn get_source(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<SourceOut>, ApiError> {
    api.0
        .db(move |catalog, api| {
            sources_out(api, catalog, &who)?
                .into_iter()
                .find(|s| s.id == id)
                .map(Json)
                .ok_or_else(|| no_such("source", &id))
        })
        .await
}

/// Queues an immediate backup of a source (admins and operators).
#[utoipa::path(post, path = "/api/v1/sources/{source}/backup", tag = "sources",
    params(("source" = String, Path)),
    responses((status = 202, body = Accepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn backup_now(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, api| {
            if !api.tenant_of_source(&id).is_some_and(|t| who.sees(t)) {
                return Err(refused_unseen(
                    api,
                    catalog,
                    &who,
                    "backup now",
                    "source",
                    &id,
                ));
            }
            if let Err(e) = require(&who, &[Role::Admin, Role::Operator]) {
                api.audit(catalog, &who, "backup now", &id, "refused: role")?;
                return Err(e);
            }
            let job = queue(catalog, api, &id, crate::daemon::IMMEDIATE, &id)?;
            api.audit(catalog, &who, "backup now", &id, &format!("ok: job {job}"))?;
            Ok(accepted(job))
        })
        .await
}

/// Queues a cold backup of a VM source: shut down, copy the disks, start again (admins only).
#[utoipa::path(post, path = "/api/v1/sources/{source}/cold-backup", tag = "sources",
    params(("source" = String, Path)),
    responses((status = 202, body = Accepted), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cold_backup(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, api| {
            let source = match api.loaded.config.sources.get(&id) {
                Some(s) if who.sees(s.tenant.get_ref()) => s,
                _ => {
                    return Err(refused_unseen(
                        api,
                        catalog,
                        &who,
                        "cold backup",
                        "source",
                        &id,
                    ))
                }
            };
            if let Err(e) = require(&who, &[Role::Admin]) {
                api.audit(catalog, &who, "cold backup", &id, "refused: role")?;
                return Err(e);
            }
            if !matches!(source.kind, crate::config::SourceKind::Vm) {
                api.audit(catalog, &who, "cold backup", &id, "refused: not a vm")?;
                return Err(ApiError::conflict(format!(
                    "source '{id}' is not a VM (kind vm): a cold backup shuts a VM down; use \
                     POST /api/v1/sources/{id}/backup"
                )));
            }
            let key = format!("{id}{}", crate::daemon::COLD_SUFFIX);
            let job = queue(catalog, api, &key, "cold", &id)?;
            api.audit(catalog, &who, "cold backup", &id, &format!("ok: job {job}"))?;
            Ok(accepted(job))
        })
        .await
}

/// The backups site agents reported in their evidence, as runs (after the centre's own, in
/// the order they came).
fn site_runs(catalog: &Catalog) -> Result<Vec<RunRecord>, ApiError> {
    let mut out = Vec::new();
    for (n, (agent, e)) in catalog
        .site_evidence(None)
        .map_err(ApiError::internal)?
        .into_iter()
        .enumerate()
    {
        let Ok(r) = crate::evidence::Record::parse(&e.record) else {
            continue;
        };
        if r.kind != crate::evidence::RecordKind::Backup {
            continue;
        }
        let started = r
            .timeline
            .iter()
            .find(|t| t.event == "started")
            .map_or_else(|| r.recorded.clone(), |t| t.time.clone());
        let measured = |k: &str| r.measured.get(k).and_then(|v| i64::try_from(*v).ok());
        out.push(RunRecord {
            id: i64::MAX / 2 + n as i64,
            repo: format!("agent {agent}"),
            kind: "backup".into(),
            source: r.source.clone(),
            tier: r.tier.clone(),
            scheduled: r.slot.clone(),
            job: None,
            started,
            finished: Some(r.recorded.clone()),
            result: match r.outcome {
                crate::evidence::Outcome::Success => "success".into(),
                crate::evidence::Outcome::Failure => "failure".into(),
            },
            snapshot: r.snapshot.as_ref().map(|s| s.id.clone()),
            files: measured("files"),
            bytes_read: measured("bytes_read"),
            bytes_added: measured("bytes_added"),
            error: r.error.clone(),
            summary: None,
            bytes_freed: None,
        });
    }
    Ok(out)
}

/// Queues job `key` of `source`: for the central daemon, or for the agent of the source's
/// site (which is woken if it waits).
fn queue(
    catalog: &mut crate::catalog::Catalog,
    api: &crate::api::Api,
    key: &str,
    tier: &str,
    source: &str,
) -> Result<i64, ApiError> {
    let now = api.clock.now();
    let site = api.loaded.config.sources.get(source).and_then(|s| s.site());
    let job = match site {
        Some(site) => catalog.enqueue_at_site(key, tier, site, now, now),
        None => catalog.enqueue_now(key, tier, now),
    }
    .map_err(ApiError::internal)?;
    if let Some(site) = site {
        api.site_jobs.ring(site);
    }
    Ok(job)
}
