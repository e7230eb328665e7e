//! `/api/v1/drills`: planned, running and past restore drills; requests and cancellations
//! within the contract's quota and notice.

use super::{no_such, refused_unseen};
use crate::api::auth::{Principal, Role};
use crate::api::error::{ErrorBody, Json, Path, Query};
use crate::api::{require, ApiError, State};
use crate::catalog::drills::DrillRow;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_drills, request_drill))
        .routes(routes!(get_drill))
        .routes(routes!(cancel_drill))
}

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
                return Err(refused_unseen(
                    api,
                    catalog,
                    &who,
                    "request drill",
                    "drill spec",
                    &body.spec,
                ));
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
                    // A site's drill waits for its agent as a job: wake its agents waiting.
                    if let Some(site) = api
                        .loaded
                        .config
                        .sources
                        .get(drill.spec.source.get_ref())
                        .and_then(|s| s.site())
                    {
                        api.site_jobs.ring(site);
                    }
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
                return Err(refused_unseen(
                    api,
                    catalog,
                    &who,
                    "cancel drill",
                    "drill",
                    &id.to_string(),
                ));
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
