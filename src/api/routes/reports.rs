//! `/api/v1/reports`: a contract's recovery report for a period, in four formats.

use super::no_such;
use crate::api::auth::Principal;
use crate::api::error::{ErrorBody, Path, Query};
use crate::api::{ApiError, State};
use crate::catalog::Catalog;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(get_report))
}

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
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, description = "A period the report cannot cover: longer than two years, not begun, or before the contract's evidence", body = ErrorBody)))]
async fn get_report(
    api: axum::extract::State<State>,
    who: Principal,
    Path(contract): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    // A few reports at a time; the turn is held until the work on its thread is done, even
    // if the client has gone.
    let turn = api.reports.enter().await?;
    api.0
        .db(move |catalog, api| {
            let _turn = turn;
            report_response(api, catalog, &who, &contract, &q)
        })
        .await
}

/// A report as an HTTP response, for the API and the dashboard.
pub fn report_response(
    api: &crate::api::Api,
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
            .map_err(|e| match e {
                crate::report::ReportError::Refused(why) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why)
                }
                crate::report::ReportError::Failed(why) => ApiError::internal(why),
            })?;
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
