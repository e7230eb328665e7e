//! The `/api/v1` routes. Each handler carries its OpenAPI description (`utoipa::path`); the
//! router is built from the same handlers, so the document cannot drift from the code.

use super::auth::{Principal, Role};
use super::error::{ErrorBody, Json, Path, Query};
use super::{require, ApiError, State};
use crate::catalog::drills::DrillRow;
use crate::catalog::jobs::Job;
use crate::catalog::tokens::AuditRow;
use crate::catalog::{Catalog, RunRecord, SnapshotRow};
use crate::evidence::Record;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lifeboat API",
        description = "Backups, restore drills, evidence and recovery reports of a Lifeboat \
                       service. Send a token made with 'lifeboat token create' as \
                       'Authorization: Bearer TOKEN'. Customers and auditors see only their \
                       own tenant."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
struct Doc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes with their generated OpenAPI document, which also says of every operation that
/// it may answer 401 (no valid token) and 429 (too many failed logins).
pub fn router_and_document() -> (axum::Router<State>, utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    let (router, mut doc) = router().split_for_parts();
    let answer = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let responses = &mut operation.responses.responses;
            responses
                .entry("401".into())
                .or_insert_with(|| answer("No token, or one unknown, revoked or expired"));
            responses.entry("429".into()).or_insert_with(|| {
                answer("Too many failed logins from this address; see Retry-After")
            });
        }
    }
    (router, doc)
}

fn router() -> OpenApiRouter<State> {
    OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(list_tenants))
        .routes(routes!(get_tenant))
        .routes(routes!(list_contracts))
        .routes(routes!(get_contract))
        .routes(routes!(list_sources))
        .routes(routes!(get_source))
        .routes(routes!(backup_now))
        .routes(routes!(cold_backup))
        .routes(routes!(list_snapshots))
        .routes(routes!(list_runs))
        .routes(routes!(list_drills, request_drill))
        .routes(routes!(get_drill))
        .routes(routes!(cancel_drill))
        .routes(routes!(list_evidence))
        .routes(routes!(get_evidence))
        .routes(routes!(get_signature))
        .routes(routes!(get_report))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(audit_log))
}

// ---- Tenants and contracts ----

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub name: String,
    pub contracts: Vec<String>,
    pub sources: Vec<String>,
}

fn tenant_out(api: &super::Api, id: &str) -> Option<TenantOut> {
    let config = &api.loaded.config;
    let t = config.tenants.get(id)?;
    Some(TenantOut {
        id: id.to_string(),
        name: t.name.clone(),
        contracts: config
            .contracts
            .iter()
            .filter(|(_, c)| c.tenant.get_ref() == id)
            .map(|(n, _)| n.clone())
            .collect(),
        sources: config
            .sources
            .iter()
            .filter(|(_, s)| s.tenant.get_ref() == id)
            .map(|(n, _)| n.clone())
            .collect(),
    })
}

/// The tenants this token sees.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = [TenantOut]), (status = 401, body = ErrorBody)))]
async fn list_tenants(api: axum::extract::State<State>, who: Principal) -> Json<Vec<TenantOut>> {
    Json(
        api.loaded
            .config
            .tenants
            .keys()
            .filter(|t| who.sees(t))
            .filter_map(|t| tenant_out(&api, t))
            .collect(),
    )
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = ErrorBody)))]
async fn get_tenant(
    api: axum::extract::State<State>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<TenantOut>, ApiError> {
    if !who.sees(&tenant) {
        return Err(no_such("tenant", &tenant));
    }
    tenant_out(&api, &tenant)
        .map(Json)
        .ok_or_else(|| no_such("tenant", &tenant))
}

fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no {what} '{id}' (or this token may not see it)"
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractOut {
    pub id: String,
    pub tenant: String,
    /// As written in the configuration, e.g. `30m`.
    pub rpo: String,
    pub rto: String,
    pub test_restores_per_year: u32,
    pub cancellation_notice: Option<String>,
    pub sources: Vec<String>,
    /// Scheduled and requested drills counted in the current year.
    pub test_restores_used_this_year: u32,
    pub test_restores_left_this_year: u32,
}

fn contract_out(
    api: &super::Api,
    catalog: &Catalog,
    id: &str,
) -> Result<Option<ContractOut>, ApiError> {
    let config = &api.loaded.config;
    let Some(c) = config.contracts.get(id) else {
        return Ok(None);
    };
    let drills = catalog.drills(Some(id)).map_err(ApiError::internal)?;
    let used =
        crate::drill::quota::used_in_year(&drills, id, api.clock.now(), config.service.time_zone())
            .len() as u32;
    Ok(Some(ContractOut {
        id: id.to_string(),
        tenant: c.tenant.get_ref().clone(),
        rpo: c.rpo.get_ref().clone(),
        rto: c.rto.get_ref().clone(),
        test_restores_per_year: c.test_restores_per_year,
        cancellation_notice: c.cancellation_notice.as_ref().map(|n| n.get_ref().clone()),
        sources: config
            .sources
            .iter()
            .filter(|(_, s)| s.contract.get_ref() == id)
            .map(|(n, _)| n.clone())
            .collect(),
        test_restores_used_this_year: used,
        test_restores_left_this_year: c.test_restores_per_year.saturating_sub(used),
    }))
}

/// The contracts this token sees, with the test restores left this year.
#[utoipa::path(get, path = "/api/v1/contracts", tag = "contracts",
    responses((status = 200, body = [ContractOut]), (status = 401, body = ErrorBody)))]
async fn list_contracts(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<ContractOut>>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let mut out = Vec::new();
            for (id, c) in &api.loaded.config.contracts {
                if who.sees(c.tenant.get_ref()) {
                    out.extend(contract_out(api, catalog, id)?);
                }
            }
            Ok(Json(out))
        })
        .await
}

/// One contract.
#[utoipa::path(get, path = "/api/v1/contracts/{contract}", tag = "contracts",
    params(("contract" = String, Path)),
    responses((status = 200, body = ContractOut), (status = 404, body = ErrorBody)))]
async fn get_contract(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ContractOut>, ApiError> {
    api.0
        .db(move |catalog, api| {
            match api.loaded.config.contracts.get(&id) {
                Some(c) if who.sees(c.tenant.get_ref()) => {}
                _ => return Err(no_such("contract", &id)),
            }
            contract_out(api, catalog, &id)?
                .map(Json)
                .ok_or_else(|| no_such("contract", &id))
        })
        .await
}

// ---- Sources ----

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

/// Every configured source's state, from the catalog's runs.
pub fn sources_out(api: &super::Api, catalog: &Catalog) -> Result<Vec<SourceOut>, ApiError> {
    let runs = catalog.runs(None).map_err(ApiError::internal)?;
    let now = api.clock.now();
    let config = &api.loaded.config;
    let tz = config.service.time_zone();
    let mut out = Vec::new();
    for (id, s) in &config.sources {
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
            last_error: last.and_then(|r| r.error.clone()),
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
        .db(move |catalog, api| {
            Ok(Json(
                sources_out(api, catalog)?
                    .into_iter()
                    .filter(|s| who.sees(&s.tenant))
                    .collect(),
            ))
        })
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
            sources_out(api, catalog)?
                .into_iter()
                .find(|s| s.id == id && who.sees(&s.tenant))
                .map(Json)
                .ok_or_else(|| no_such("source", &id))
        })
        .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub job: i64,
    /// Where to follow it.
    pub status: String,
}

fn accepted(job: i64) -> Response {
    let status = format!("/api/v1/jobs/{job}");
    let mut r = (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            job,
            status: status.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&status) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
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
                return Err(no_such("source", &id));
            }
            if let Err(e) = require(&who, &[Role::Admin, Role::Operator]) {
                api.audit(catalog, &who, "backup now", &id, "refused: role")?;
                return Err(e);
            }
            let job = catalog
                .enqueue_now(&id, crate::daemon::IMMEDIATE, api.clock.now())
                .map_err(ApiError::internal)?;
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
            let Some(source) = api.loaded.config.sources.get(&id) else {
                return Err(no_such("source", &id));
            };
            if !who.sees(source.tenant.get_ref()) {
                return Err(no_such("source", &id));
            }
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
            let job = catalog
                .enqueue_now(
                    &format!("{id}{}", crate::daemon::COLD_SUFFIX),
                    "cold",
                    api.clock.now(),
                )
                .map_err(ApiError::internal)?;
            api.audit(catalog, &who, "cold backup", &id, &format!("ok: job {job}"))?;
            Ok(accepted(job))
        })
        .await
}

// ---- Snapshots and runs ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SourceFilter {
    /// Only this source's.
    source: Option<String>,
}

/// Snapshots of the sources this token sees.
#[utoipa::path(get, path = "/api/v1/snapshots", tag = "snapshots", params(SourceFilter),
    responses((status = 200, body = [SnapshotRow]), (status = 400, body = ErrorBody)))]
async fn list_snapshots(
    api: axum::extract::State<State>,
    who: Principal,
    Query(filter): Query<SourceFilter>,
) -> Result<Json<Vec<SnapshotRow>>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let rows = catalog.snapshots().map_err(ApiError::internal)?;
            Ok(Json(
                rows.into_iter()
                    .filter(|s| {
                        let source = s.tags.get("source");
                        let tenant = source.and_then(|src| api.tenant_of_source(src));
                        let visible = match tenant {
                            Some(t) => who.sees(t),
                            None => !who.role.scoped(),
                        };
                        visible && filter.source.as_ref().is_none_or(|f| Some(f) == source)
                    })
                    .collect(),
            ))
        })
        .await
}

/// Backup, copy, forget and prune runs (customers and auditors: their sources' backups).
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(SourceFilter),
    responses((status = 200, body = [RunRecord]), (status = 400, body = ErrorBody)))]
async fn list_runs(
    api: axum::extract::State<State>,
    who: Principal,
    Query(filter): Query<SourceFilter>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let rows = catalog.runs(None).map_err(ApiError::internal)?;
            Ok(Json(
                rows.into_iter()
                    .filter(|r| {
                        let tenant = r.source.as_deref().and_then(|s| api.tenant_of_source(s));
                        let visible = match tenant {
                            Some(t) => who.sees(t),
                            None => !who.role.scoped(),
                        };
                        visible
                            && filter
                                .source
                                .as_ref()
                                .is_none_or(|f| Some(f.as_str()) == r.source.as_deref())
                    })
                    .collect(),
            ))
        })
        .await
}

// ---- Drills ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ContractFilter {
    /// Only this contract's.
    contract: Option<String>,
}

/// Planned, running and past drills.
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills", params(ContractFilter),
    responses((status = 200, body = [DrillRow]), (status = 400, body = ErrorBody)))]
async fn list_drills(
    api: axum::extract::State<State>,
    who: Principal,
    Query(filter): Query<ContractFilter>,
) -> Result<Json<Vec<DrillRow>>, ApiError> {
    api.0
        .db(move |catalog, _| {
            let rows = catalog
                .drills(filter.contract.as_deref())
                .map_err(ApiError::internal)?;
            Ok(Json(
                rows.into_iter().filter(|d| who.sees(&d.tenant)).collect(),
            ))
        })
        .await
}

/// One drill.
#[utoipa::path(get, path = "/api/v1/drills/{id}", tag = "drills",
    params(("id" = i64, Path)),
    responses((status = 200, body = DrillRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_drill(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<Json<DrillRow>, ApiError> {
    api.0
        .db(move |catalog, _| {
            catalog
                .drill(id)
                .map_err(ApiError::internal)?
                .filter(|d| who.sees(&d.tenant))
                .map(Json)
                .ok_or_else(|| no_such("drill", &id.to_string()))
        })
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    /// The drill spec's name (see `GET /api/v1/drills` or the service's `restore-tests/`).
    pub spec: String,
    /// When it is to run (RFC 3339).
    pub at: DateTime<chrono::FixedOffset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DrillPlanned {
    pub drill: DrillRow,
    /// Test restores left in the drill's year after this one.
    pub left_in_year: u32,
}

/// Requests a test restore (customers for their tenant, operators, admins): refused when the
/// contract's test restores for that year are used up.
#[utoipa::path(post, path = "/api/v1/drills", tag = "drills", request_body = DrillRequest,
    responses((status = 201, body = DrillPlanned), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_drill(
    api: axum::extract::State<State>,
    who: Principal,
    Json(body): Json<DrillRequest>,
) -> Result<(StatusCode, Json<DrillPlanned>), ApiError> {
    api.0
        .db(move |catalog, api| {
            let Some(drill) = api.drills.get(&body.spec).filter(|d| {
                api.tenant_of_source(d.spec.source.get_ref())
                    .is_some_and(|t| who.sees(t))
            }) else {
                return Err(no_such("drill spec", &body.spec));
            };
            let target = format!("{} at {}", body.spec, body.at.to_rfc3339());
            if let Err(e) = require(&who, &[Role::Admin, Role::Operator, Role::Customer]) {
                api.audit(catalog, &who, "request drill", &target, "refused: role")?;
                return Err(e);
            }
            let now = api.clock.now();
            let by = who.actor();
            match crate::drill::requests::request(
                catalog,
                &api.loaded,
                drill,
                body.at.with_timezone(&Utc),
                now,
                Some(&by),
            ) {
                Ok((id, left)) => {
                    api.audit(
                        catalog,
                        &who,
                        "request drill",
                        &target,
                        &format!("ok: drill {id}"),
                    )?;
                    let row = catalog
                        .drill(id)
                        .map_err(ApiError::internal)?
                        .ok_or_else(|| ApiError::internal("the planned drill vanished"))?;
                    Ok((
                        StatusCode::CREATED,
                        Json(DrillPlanned {
                            drill: row,
                            left_in_year: left,
                        }),
                    ))
                }
                Err(crate::drill::requests::RequestError::Refused(why)) => {
                    api.audit(
                        catalog,
                        &who,
                        "request drill",
                        &target,
                        &format!("refused: {why}"),
                    )?;
                    Err(ApiError::conflict(format!("request refused: {why}")))
                }
                Err(e) => Err(ApiError::internal(e)),
            }
        })
        .await
}

/// Cancels a planned drill: possible until the contract's notice period before it. The drill
/// stays in the history, in state `cancelled`.
#[utoipa::path(post, path = "/api/v1/drills/{id}/cancel", tag = "drills",
    params(("id" = i64, Path)),
    responses((status = 200, body = DrillRow), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn cancel_drill(
    api: axum::extract::State<State>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<Json<DrillRow>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let visible = catalog
                .drill(id)
                .map_err(ApiError::internal)?
                .is_some_and(|d| who.sees(&d.tenant));
            if !visible {
                return Err(no_such("drill", &id.to_string()));
            }
            let target = format!("drill {id}");
            if let Err(e) = require(&who, &[Role::Admin, Role::Operator, Role::Customer]) {
                api.audit(catalog, &who, "cancel drill", &target, "refused: role")?;
                return Err(e);
            }
            match crate::drill::requests::cancel(catalog, &api.loaded, id, api.clock.now()) {
                Ok(_) => {
                    api.audit(catalog, &who, "cancel drill", &target, "ok")?;
                    catalog
                        .drill(id)
                        .map_err(ApiError::internal)?
                        .map(Json)
                        .ok_or_else(|| no_such("drill", &id.to_string()))
                }
                Err(crate::drill::requests::RequestError::Refused(why)) => {
                    api.audit(
                        catalog,
                        &who,
                        "cancel drill",
                        &target,
                        &format!("refused: {why}"),
                    )?;
                    Err(ApiError::conflict(format!("cannot cancel: {why}")))
                }
                Err(e) => Err(ApiError::internal(e)),
            }
        })
        .await
}

// ---- Evidence ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TenantFilter {
    /// Only this tenant's.
    tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceOut {
    pub tenant: String,
    pub sequence: u64,
    pub sha256: String,
    /// `backup` or `drill`.
    pub kind: String,
    pub recorded: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub contract: Option<String>,
    pub source: Option<String>,
    pub severity: Option<String>,
    /// The record itself (canonical JSON) and its signature.
    pub record: String,
    pub signature: String,
}

/// Evidence records of the tenants this token sees, oldest first.
#[utoipa::path(get, path = "/api/v1/evidence", tag = "evidence", params(TenantFilter),
    responses((status = 200, body = [EvidenceOut]), (status = 400, body = ErrorBody)))]
async fn list_evidence(
    api: axum::extract::State<State>,
    who: Principal,
    Query(filter): Query<TenantFilter>,
) -> Result<Json<Vec<EvidenceOut>>, ApiError> {
    api.0
        .db(move |catalog, _| {
            let tenant = match (&who.tenant, &filter.tenant) {
                (Some(mine), _) if who.role.scoped() => Some(mine.clone()),
                (_, f) => f.clone(),
            };
            if filter.tenant.as_ref().is_some_and(|t| !who.sees(t)) {
                return Ok(Json(Vec::new()));
            }
            let rows = catalog
                .evidence(tenant.as_deref())
                .map_err(ApiError::internal)?;
            let mut out = Vec::with_capacity(rows.len());
            for e in rows {
                let r = Record::parse(&e.record).map_err(ApiError::internal)?;
                out.push(EvidenceOut {
                    tenant: e.tenant.clone(),
                    sequence: e.sequence,
                    sha256: e.sha256.clone(),
                    kind: serde_json::to_value(r.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    recorded: r.recorded.clone(),
                    outcome: serde_json::to_value(r.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    contract: r.contract.clone(),
                    source: r.source.clone(),
                    severity: r.incident.as_ref().map(|i| i.severity.clone()),
                    record: String::from_utf8_lossy(&e.record).into_owned(),
                    signature: e.signature.clone(),
                });
            }
            Ok(Json(out))
        })
        .await
}

fn stored(
    catalog: &Catalog,
    who: &Principal,
    tenant: &str,
    sequence: u64,
) -> Result<crate::catalog::evidence::StoredEvidence, ApiError> {
    let missing = || no_such("evidence record", &format!("{tenant}/{sequence}"));
    if !who.sees(tenant) {
        return Err(missing());
    }
    catalog
        .evidence(Some(tenant))
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|e| e.sequence == sequence)
        .ok_or_else(missing)
}

/// One record's exact bytes (canonical JSON): what its signature covers.
#[utoipa::path(get, path = "/api/v1/evidence/{tenant}/{sequence}", tag = "evidence",
    params(("tenant" = String, Path), ("sequence" = u64, Path)),
    responses((status = 200, description = "The record, canonical JSON (RFC 8785), byte for byte as signed",
               content_type = "application/json", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_evidence(
    api: axum::extract::State<State>,
    who: Principal,
    Path((tenant, sequence)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, _| {
            let e = stored(catalog, &who, &tenant, sequence)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "application/json".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"{}\"",
                            crate::evidence::chain::file_name(sequence)
                        ),
                    ),
                ],
                e.record,
            )
                .into_response())
        })
        .await
}

/// One record's detached OpenPGP signature (armored).
#[utoipa::path(get, path = "/api/v1/evidence/{tenant}/{sequence}/signature", tag = "evidence",
    params(("tenant" = String, Path), ("sequence" = u64, Path)),
    responses((status = 200, content_type = "application/pgp-signature", body = String),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_signature(
    api: axum::extract::State<State>,
    who: Principal,
    Path((tenant, sequence)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, _| {
            let e = stored(catalog, &who, &tenant, sequence)?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/pgp-signature".to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"{}.asc\"",
                            crate::evidence::chain::file_name(sequence)
                        ),
                    ),
                ],
                e.signature,
            )
                .into_response())
        })
        .await
}

// ---- Reports ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// A month (2026-11), a quarter (2026-Q3), a year (2026) or dates (2026-07-01..2026-09-30).
    #[param(
        pattern = r"^([0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?|[0-9]{4}-[0-9]{2}-[0-9]{2}\.\.[0-9]{4}-[0-9]{2}-[0-9]{2})$"
    )]
    pub period: String,
    /// `json` (default), `csv`, `html`, or `bundle` (a tar archive for auditors).
    #[param(pattern = "^(json|csv|html|bundle)$")]
    pub format: Option<String>,
}

/// A contract's recovery report for a period.
#[utoipa::path(get, path = "/api/v1/reports/{contract}", tag = "reports",
    params(("contract" = String, Path), ReportQuery),
    responses((status = 200, description = "The report: JSON, CSV (the days), HTML, or a tar bundle for auditors",
               content(
                   (Object = "application/json"),
                   (String = "text/csv; charset=utf-8"),
                   (String = "text/html; charset=utf-8"),
                   (Vec<u8> = "application/x-tar"))),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_report(
    api: axum::extract::State<State>,
    who: Principal,
    Path(contract): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, api| report_response(api, catalog, &who, &contract, &q))
        .await
}

/// A report as an HTTP response, for the API and the dashboard.
pub fn report_response(
    api: &super::Api,
    catalog: &Catalog,
    who: &Principal,
    contract: &str,
    q: &ReportQuery,
) -> Result<Response, ApiError> {
    match api.loaded.config.contracts.get(contract) {
        Some(c) if who.sees(c.tenant.get_ref()) => {}
        _ => return Err(no_such("contract", contract)),
    }
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "csv", "html", "bundle"].contains(&format) {
        return Err(ApiError::bad_request(format!(
            "format '{format}' is not json, csv, html or bundle"
        )));
    }
    crate::report::Period::parse(&q.period).map_err(ApiError::bad_request)?;
    let (report, stored) =
        crate::report::from_catalog(&api.loaded, catalog, contract, &q.period, api.clock.now())
            .map_err(ApiError::internal)?;
    let name = crate::report::bundle::folder_name(&report);
    let attach = |ext: &str| format!("attachment; filename=\"{name}.{ext}\"");
    let response = match format {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, attach("csv")),
            ],
            crate::report::render::days_csv(&report).map_err(ApiError::internal)?,
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string())],
            crate::report::render::html(&report),
        )
            .into_response(),
        "bundle" => {
            let records = crate::report::bundle::records_for(&report, &stored);
            let mut tar = Vec::new();
            crate::report::bundle::write_to(&mut tar, &report, &records, &api.signing)
                .map_err(ApiError::internal)?;
            (
                [
                    (header::CONTENT_TYPE, "application/x-tar".to_string()),
                    (header::CONTENT_DISPOSITION, attach("tar")),
                ],
                tar,
            )
                .into_response()
        }
        _ => axum::Json(report).into_response(),
    };
    Ok(response)
}

// ---- Jobs and the audit log ----

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
                    .collect(),
            ))
        })
        .await
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
                .map(Json)
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
