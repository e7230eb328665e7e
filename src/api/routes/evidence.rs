//! `/api/v1/evidence`: the signed records, byte for byte, and their signatures.

use super::no_such;
use crate::api::auth::Principal;
use crate::api::error::{ErrorBody, Json, Path, Query};
use crate::api::{ApiError, State};
use crate::catalog::Catalog;
use crate::evidence::Record;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_evidence))
        .routes(routes!(get_evidence))
        .routes(routes!(get_signature))
}

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
    /// The site agent that wrote and signed it (its chain); absent: the central service.
    pub agent: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChainFilter {
    /// The record of this site agent's chain (its fingerprint); absent: the service's.
    agent: Option<String>,
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
            let mut rows: Vec<(Option<String>, _)> = catalog
                .evidence(tenant.as_deref())
                .map_err(ApiError::internal)?
                .into_iter()
                .map(|e| (None, e))
                .collect();
            let at_sites = catalog
                .site_evidence(tenant.as_deref())
                .map_err(ApiError::internal)?;
            rows.extend(at_sites.into_iter().map(|(a, e)| (Some(a), e)));
            let mut out = Vec::with_capacity(rows.len());
            for (agent, e) in rows {
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
                    agent,
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
    agent: Option<&str>,
) -> Result<crate::catalog::evidence::StoredEvidence, ApiError> {
    let missing = || no_such("evidence record", &format!("{tenant}/{sequence}"));
    if !who.sees(tenant) {
        return Err(missing());
    }
    let found = match agent {
        None => catalog
            .evidence(Some(tenant))
            .map_err(ApiError::internal)?
            .into_iter()
            .find(|e| e.sequence == sequence),
        Some(agent) => catalog
            .site_evidence(Some(tenant))
            .map_err(ApiError::internal)?
            .into_iter()
            .find(|(a, e)| a == agent && e.sequence == sequence)
            .map(|(_, e)| e),
    };
    found.ok_or_else(missing)
}

/// One record's exact bytes (canonical JSON): what its signature covers.
#[utoipa::path(get, path = "/api/v1/evidence/{tenant}/{sequence}", tag = "evidence",
    params(("tenant" = String, Path), ("sequence" = u64, Path), ChainFilter),
    responses((status = 200, description = "The record, canonical JSON (RFC 8785), byte for byte as signed",
               content_type = "application/json", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_evidence(
    api: axum::extract::State<State>,
    who: Principal,
    Path((tenant, sequence)): Path<(String, u64)>,
    Query(chain): Query<ChainFilter>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, _| {
            let e = stored(catalog, &who, &tenant, sequence, chain.agent.as_deref())?;
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
    params(("tenant" = String, Path), ("sequence" = u64, Path), ChainFilter),
    responses((status = 200, content_type = "application/pgp-signature", body = String),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_signature(
    api: axum::extract::State<State>,
    who: Principal,
    Path((tenant, sequence)): Path<(String, u64)>,
    Query(chain): Query<ChainFilter>,
) -> Result<Response, ApiError> {
    api.0
        .db(move |catalog, _| {
            let e = stored(catalog, &who, &tenant, sequence, chain.agent.as_deref())?;
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
