//! The `/api/v1` routes, one module per resource (the URL tree is the module tree). Each handler carries its OpenAPI description (`utoipa::path`); the
//! router is built from the same handlers, so the document cannot drift from the code.

use super::error::ErrorBody;
use super::{ApiError, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

mod agents;
mod drills;
mod evidence;
mod jobs;
mod reports;
mod runs;
mod sites;
mod sources;
mod tenants;

pub use sources::sources_out;

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
/// it may answer 401 (no valid token), 429 (too many failed logins), 408 (over the time
/// limit) and 503 (too much at once).
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
                answer(
                    "Too many failed logins from this address or for this token; see Retry-After",
                )
            });
            responses.entry("408".into()).or_insert_with(|| {
                answer("The request was not sent and answered within the time limit")
            });
            responses
                .entry("503".into())
                .or_insert_with(|| answer("Too much of this work at once; see Retry-After"));
        }
    }
    (router, doc)
}

fn router() -> OpenApiRouter<State> {
    OpenApiRouter::with_openapi(Doc::openapi())
        .merge(tenants::router())
        .merge(sources::router())
        .merge(runs::router())
        .merge(drills::router())
        .merge(evidence::router())
        .merge(reports::router())
        .merge(jobs::router())
        .merge(sites::router())
        .merge(agents::router())
}

/// A change asked of something this token cannot see (another tenant's, or nothing at all):
/// written down as a refusal, and answered as if it did not exist.
fn refused_unseen(
    api: &super::Api,
    catalog: &mut crate::catalog::Catalog,
    who: &super::auth::Principal,
    action: &str,
    what: &str,
    id: &str,
) -> ApiError {
    let target = format!("{what} {id}");
    if let Err(e) = api.audit(
        catalog,
        who,
        action,
        &target,
        "refused: not found for this token",
    ) {
        return e;
    }
    no_such(what, id)
}

fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no {what} '{id}' (or this token may not see it)"
    ))
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
