//! `/api/v1/sites` and `/api/v1/agent/enroll`: customer sites, their enrollment tokens and
//! agents, and the one request an agent makes without a bearer token: enrolling with its
//! one-time token.

use super::no_such;
use crate::agent::enroll::{self, EnrollAnswer, EnrollRequest, Refusal};
use crate::api::auth::{Principal, Role};
use crate::api::error::{ErrorBody, Json, Path};
use crate::api::throttle::Verdict;
use crate::api::{require, ApiError, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_sites))
        .routes(routes!(make_enroll_token))
        .routes(routes!(enroll_agent))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOut {
    /// The fingerprint of the agent's key.
    pub id: String,
    pub enrolled: String,
    pub version: Option<String>,
    pub revoked: Option<String>,
    pub last_contact: Option<String>,
    /// The agent's clock minus the centre's at its last request, in milliseconds.
    pub clock_skew_ms: Option<i64>,
    /// Records in the agent's outbox not yet at the centre, as it said at its last check-in.
    pub backlog: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteOut {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub agents: Vec<AgentOut>,
}

/// The customer sites and their agents (staff only).
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites",
    responses((status = 200, body = [SiteOut]), (status = 403, body = ErrorBody)))]
async fn list_sites(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Json<Vec<SiteOut>>, ApiError> {
    require(&who, &[Role::Admin, Role::Operator])?;
    api.0
        .db(move |catalog, api| {
            let agents = catalog.agents().map_err(ApiError::internal)?;
            Ok(Json(
                api.loaded
                    .config
                    .sites
                    .iter()
                    .map(|(id, s)| SiteOut {
                        id: id.clone(),
                        name: s.name.clone().unwrap_or_else(|| id.clone()),
                        tenant: s.tenant.get_ref().clone(),
                        agents: agents
                            .iter()
                            .filter(|a| &a.site == id)
                            .map(|a| AgentOut {
                                id: a.id.clone(),
                                enrolled: a.enrolled.clone(),
                                version: a.version.clone(),
                                revoked: a.revoked.clone(),
                                last_contact: a.last_contact.clone(),
                                clock_skew_ms: a.clock_skew_ms,
                                backlog: a.backlog,
                            })
                            .collect(),
                    })
                    .collect(),
            ))
        })
        .await
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EnrollTokenQuery {
    /// How long the token is valid (`24h`, `7d`; at most 30 days). Default 24h.
    pub expires: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollTokenOut {
    /// The token, shown only now: give it to whoever enrolls the site's agent.
    pub token: String,
    pub id: String,
    pub site: String,
    pub expires: String,
}

/// Makes a one-time enrollment token for a site's agent (admin only).
#[utoipa::path(post, path = "/api/v1/sites/{site}/enroll-token", tag = "sites",
    params(("site" = String, Path), EnrollTokenQuery),
    responses((status = 201, body = EnrollTokenOut), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn make_enroll_token(
    api: axum::extract::State<State>,
    who: Principal,
    Path(site): Path<String>,
    query: crate::api::error::Query<EnrollTokenQuery>,
) -> Result<(StatusCode, Json<EnrollTokenOut>), ApiError> {
    let expires = query.0.expires;
    api.0
        .db(move |catalog, api| {
            if !api.loaded.config.sites.contains_key(&site) {
                return Err(no_such("site", &site));
            }
            let target = format!("site {site}");
            if let Err(e) = require(&who, &[Role::Admin]) {
                api.audit(
                    catalog,
                    &who,
                    "create enroll token",
                    &target,
                    "refused: role",
                )?;
                return Err(e);
            }
            let lifetime = match expires.as_deref() {
                None => crate::agent::token::DEFAULT_LIFETIME,
                Some(text) => crate::schedule::retention::parse_span(text)
                    .ok()
                    .filter(|span| *span > chrono::Duration::zero())
                    .filter(|span| *span <= chrono::Duration::days(30))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "expires={text}: give a span such as 24h or 7d, at most 30 days"
                        ))
                    })?,
            };
            let now = api.clock.now();
            let (row, token) = crate::agent::token::new_enroll_token(&site, now, now + lifetime);
            catalog.add_enroll_token(&row).map_err(ApiError::internal)?;
            let target = format!("{} ({target})", row.id);
            api.audit(catalog, &who, "create enroll token", &target, "ok")?;
            Ok((
                StatusCode::CREATED,
                Json(EnrollTokenOut {
                    token,
                    id: row.id,
                    site,
                    expires: row.expires,
                }),
            ))
        })
        .await
}

/// An agent enrolls with its site's one-time token and its own certificate; the answer binds
/// the agent to the site and its tenant, signed by the service. No bearer token: the
/// enrollment token is the credential, and failures count as failed logins.
#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agents", request_body = EnrollRequest,
    security(()),
    responses((status = 200, body = EnrollAnswer), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enroll_agent(
    api: axum::extract::State<State>,
    client: crate::api::ClientAddress,
    Json(body): Json<EnrollRequest>,
) -> Result<Json<EnrollAnswer>, ApiError> {
    let named = crate::agent::token::split(body.token.trim()).map(|(id, _)| id.to_string());
    let outcome = api
        .0
        .db(move |catalog, api| {
            let now = api.clock.now();
            let r = enroll::redeem(catalog, &api.loaded.config, &api.signing, &body, now)
                .map_err(ApiError::internal)?;
            let (actor, target) = match &r {
                Ok(a) => (format!("agent {}", a.agent), format!("site {}", a.site)),
                Err(_) => ("agent (not enrolled)".to_string(), "enrollment".to_string()),
            };
            let outcome = match &r {
                Ok(_) => "ok".to_string(),
                Err(why) => format!("refused: {}", why.message()),
            };
            catalog
                .audit(now, &actor, "enroll agent", &target, &outcome)
                .map_err(ApiError::internal)?;
            Ok(r)
        })
        .await?;
    match outcome {
        Ok(answer) => Ok(Json(answer)),
        Err(Refusal::BadToken) => {
            match api
                .throttle
                .failed(client.0, named.as_deref(), std::time::Instant::now())
            {
                Verdict::Locked(retry) => Err(ApiError::too_many(retry)),
                Verdict::Delay(wait) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Err(ApiError::unauthorized(Refusal::BadToken.message()))
                }
            }
        }
        Err(why @ Refusal::BadCertificate(_)) => Err(ApiError::bad_request(why.message())),
        Err(why) => Err(ApiError::conflict(why.message())),
    }
}
