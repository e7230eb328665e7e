//! `/api/v1/snapshots` and `/api/v1/runs`: what the repositories hold, and every run.

use crate::api::auth::Principal;
use crate::api::error::{ErrorBody, Json, Query};
use crate::api::{ApiError, State};
use crate::catalog::{RunRecord, SnapshotRow};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_snapshots))
        .routes(routes!(list_runs))
}

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
                    .map(|mut r| {
                        r.error = r.error.map(|e| api.for_reader(&who, &e));
                        r.summary = r.summary.map(|e| api.for_reader(&who, &e));
                        r
                    })
                    .collect(),
            ))
        })
        .await
}
