//! `/api/v1/tenants` and `/api/v1/contracts`: who the tenants are, and what their contracts
//! promise, with the test restores left this year.

use super::no_such;
use crate::api::auth::Principal;
use crate::api::error::{ErrorBody, Json, Path};
use crate::api::{ApiError, State};
use crate::catalog::Catalog;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(get_tenant))
        .routes(routes!(list_contracts))
        .routes(routes!(get_contract))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub name: String,
    pub contracts: Vec<String>,
    pub sources: Vec<String>,
    /// What the tenant's repository on each target holds, as last measured (after a backup
    /// or a prune), in bytes.
    pub stored_bytes: std::collections::BTreeMap<String, u64>,
}

fn tenant_out(
    api: &crate::api::Api,
    usage: &[crate::catalog::usage::Usage],
    id: &str,
) -> Option<TenantOut> {
    let config = &api.loaded.config;
    let t = config.tenants.get(id)?;
    Some(TenantOut {
        id: id.to_string(),
        name: t.name.clone(),
        stored_bytes: usage
            .iter()
            .filter(|u| u.tenant == id)
            .map(|u| (u.target.clone(), u.bytes))
            .collect(),
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
async fn list_tenants(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<TenantOut>>, ApiError> {
    api.0
        .db(move |catalog, api| {
            let usage = catalog.usage(None).map_err(ApiError::internal)?;
            Ok(Json(
                api.loaded
                    .config
                    .tenants
                    .keys()
                    .filter(|t| who.sees(t))
                    .filter_map(|t| tenant_out(api, &usage, t))
                    .collect(),
            ))
        })
        .await
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
    api.0
        .db(move |catalog, api| {
            let usage = catalog.usage(Some(&tenant)).map_err(ApiError::internal)?;
            tenant_out(api, &usage, &tenant)
                .map(Json)
                .ok_or_else(|| no_such("tenant", &tenant))
        })
        .await
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
    api: &crate::api::Api,
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
