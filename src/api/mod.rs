//! The HTTP API (`/api/v1`), the Prometheus metrics, and the dashboard, served by
//! `lifeboat serve` on `[service] listen`.
//!
//! Every route but `/healthz` and the login page needs a bearer token (`lifeboat token
//! create`), or the dashboard's cookie holding one. Customers and auditors see only their own
//! tenant: an object of another tenant answers 404, as if it did not exist. Admins and
//! operators see all. Every change made through the API goes into the audit log. The OpenAPI
//! document (`/api/v1/openapi.json`) is generated from the handlers themselves.

pub mod auth;
mod dashboard;
mod error;
mod metrics;
mod routes;

pub use error::ApiError;

use crate::catalog::Catalog;
use crate::config::Loaded;
use crate::daemon::Clock;
use crate::drill::spec::Drill;
use crate::repo::crypto::SecretKey;
use auth::{Principal, Role, Throttle};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The cookie the dashboard keeps the token in.
pub const COOKIE: &str = "lifeboat_token";

/// What every request handler can reach.
pub struct Api {
    pub loaded: Loaded,
    pub drills: BTreeMap<String, Drill>,
    pub data_dir: PathBuf,
    pub clock: Clock,
    /// Signs report bundles.
    pub signing: SecretKey,
    pub throttle: Throttle,
}

pub type State = Arc<Api>;

impl Api {
    /// Runs `f` on the catalog, off the async threads.
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Catalog, &Api) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let api = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut catalog = Catalog::open(&api.data_dir).map_err(ApiError::internal)?;
            f(&mut catalog, &api)
        })
        .await
        .map_err(|e| ApiError::internal(format!("a request handler stopped: {e}")))?
    }

    /// Writes one line of the audit log.
    pub fn audit(
        &self,
        catalog: &mut Catalog,
        who: &Principal,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> Result<(), ApiError> {
        catalog
            .audit(self.clock.now(), &who.actor(), action, target, outcome)
            .map_err(ApiError::internal)
    }

    /// The tenant a source belongs to.
    pub fn tenant_of_source(&self, source: &str) -> Option<&str> {
        self.loaded
            .config
            .sources
            .get(source)
            .map(|s| s.tenant.get_ref().as_str())
    }

    /// The tenant of a job: jobs are keyed by source, or by `SOURCE>copy`, `SPEC>drill`,
    /// `TARGET>prune`, `SOURCE>cold` (targets belong to no tenant).
    pub fn tenant_of_job(&self, key: &str) -> Option<&str> {
        let (name, kind) = key.split_once('>').unwrap_or((key, ""));
        match kind {
            "drill" => self
                .drills
                .get(name)
                .and_then(|d| self.tenant_of_source(d.spec.source.get_ref())),
            "prune" => None,
            _ => self.tenant_of_source(name),
        }
    }
}

/// The token a request carries: `Authorization: Bearer …`, or the dashboard's cookie.
fn presented(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        return text.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    let jar = axum_extra::extract::CookieJar::from_headers(&parts.headers);
    jar.get(COOKIE).map(|c| c.value().to_string())
}

impl FromRequestParts<State> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &State) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let Some(token) = presented(parts) else {
            return Err(ApiError::unauthorized(
                "this needs a token: send 'Authorization: Bearer TOKEN' (make one with 'lifeboat \
                 token create')",
            ));
        };
        match api.throttle.delay(ip) {
            Err(retry) => return Err(ApiError::too_many(retry)),
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Ok(_) => {}
        }
        let now = api.clock.now();
        let result = api
            .db(move |catalog, _| {
                let r = auth::authenticate(catalog, &token, now).map_err(ApiError::internal)?;
                if let Ok(p) = &r {
                    catalog
                        .touch_token(&p.token, now)
                        .map_err(ApiError::internal)?;
                }
                Ok(r)
            })
            .await?;
        match result {
            Ok(p) => {
                api.throttle.succeeded(ip);
                Ok(p)
            }
            Err(_) => {
                api.throttle.failed(ip);
                Err(ApiError::unauthorized(
                    "the token is not valid: unknown, revoked or expired",
                ))
            }
        }
    }
}

/// Refuses principals whose role is not among `allowed`.
pub fn require(who: &Principal, allowed: &[Role]) -> Result<(), ApiError> {
    if allowed.contains(&who.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} token cannot do this; it needs the role {}",
            who.role.name(),
            allowed
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }
}

/// The whole application: API, OpenAPI document, metrics, health, dashboard.
pub fn app(api: State) -> axum::Router {
    let (api_router, doc) = routes::router_and_document();
    let doc = Arc::new(doc);
    axum::Router::new()
        .merge(api_router)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .merge(dashboard::router())
        .fallback(|| async { ApiError::not_found("no such page or route") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// The OpenAPI document, as the server serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router_and_document().1
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(api).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
