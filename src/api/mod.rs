//! The HTTP API (`/api/v1`), the Prometheus metrics, and the dashboard, served by
//! `lifeboat serve` on `[service] listen`.
//!
//! Every route but `/healthz` and the login page needs a bearer token (`lifeboat token
//! create`), or the dashboard's cookie holding one. Customers and auditors see only their own
//! tenant: an object of another tenant answers 404, as if it did not exist. Admins and
//! operators see all. Every change made through the API goes into the audit log. The OpenAPI
//! document (`/api/v1/openapi.json`) is generated from the handlers themselves.

mod agent_auth;
pub mod auth;
mod client;
mod dashboard;
mod error;
mod gate;
mod headers;
mod metrics;
mod routes;
mod server;
pub mod throttle;

pub use error::ApiError;
pub use server::serve;

use crate::catalog::Catalog;
use crate::config::http::Limits;
use crate::config::Loaded;
use crate::daemon::Clock;
use crate::drill::spec::Drill;
use crate::repo::crypto::SecretKey;
pub use agent_auth::{AgentCaller, SignedJson};
use auth::{Principal, Role};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use throttle::{Throttle, Verdict};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The cookie the dashboard keeps its session in.
pub const COOKIE: &str = "lifeboat_session";

/// What every request handler can reach.
pub struct Api {
    pub loaded: Loaded,
    pub drills: BTreeMap<String, Drill>,
    pub data_dir: PathBuf,
    /// The catalog: in the data directory, or shared with other instances in PostgreSQL.
    pub catalog: crate::catalog::Place,
    pub clock: Clock,
    /// Signs report bundles.
    pub signing: SecretKey,
    pub throttle: Throttle,
    pub limits: Limits,
    /// `[service] trusted_proxies`.
    pub trusted: Vec<ipnet::IpNet>,
    /// Reports computed at once.
    pub reports: gate::Gate,
    /// What customers and auditors must not read in errors (see `evidence::redact`).
    pub confidential: Vec<String>,
    /// Each site's assignment, cut from the configuration at start.
    pub assignments: BTreeMap<String, crate::agent::assignment::Assignment>,
    /// Woken when a job is queued for a site, so that its agents waiting for one hear at once.
    pub site_jobs: SiteBells,
    /// Catalog connections between requests.
    catalogs: std::sync::Mutex<Vec<Catalog>>,
    /// Requests using a PostgreSQL catalog at once: as many as connections are kept.
    catalog_turns: Arc<tokio::sync::Semaphore>,
}

/// Catalog connections kept open between requests, at most.
const KEPT_CATALOGS: usize = 16;

pub type State = Arc<Api>;

/// A bell per site: rung when a job is queued for the site, heard by its agents' long polls
/// (and by no other site's).
#[derive(Default)]
pub struct SiteBells {
    bells: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Notify>>>,
    /// Agents' polls waiting at this instance now.
    pub waiting: std::sync::atomic::AtomicI64,
    /// Polls answered with jobs queued while they waited, since start.
    pub woken: std::sync::atomic::AtomicU64,
}

impl SiteBells {
    /// The bell of `site`.
    pub fn of(&self, site: &str) -> Arc<tokio::sync::Notify> {
        let mut all = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(site.to_string()).or_default().clone()
    }

    /// Rings the bell of `site`.
    pub fn ring(&self, site: &str) {
        self.of(site).notify_waiters();
    }

    /// Rings every site's bell.
    pub fn ring_all(&self) {
        let all = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        for bell in all.values() {
            bell.notify_waiters();
        }
    }
}

impl Api {
    /// The state of the API for a loaded configuration.
    pub fn new(
        loaded: Loaded,
        drills: BTreeMap<String, Drill>,
        data_dir: PathBuf,
        clock: Clock,
        signing: SecretKey,
    ) -> Result<Api, String> {
        let service = &loaded.config.service;
        let limits = service.limits();
        let specs: Vec<&Drill> = drills.values().collect();
        let assignments = crate::agent::assignment::for_sites(&loaded, &specs)?;
        Ok(Api {
            assignments,
            site_jobs: SiteBells::default(),
            catalogs: std::sync::Mutex::new(Vec::new()),
            catalog_turns: Arc::new(tokio::sync::Semaphore::new(KEPT_CATALOGS)),
            throttle: Throttle::new(u32::try_from(limits.lock_after).unwrap_or(u32::MAX)),
            trusted: service.trusted_proxies(),
            reports: gate::Gate::new("reports", limits.reports_at_once),
            confidential: loaded.config.confidential(),
            catalog: crate::catalog::Place::of(&data_dir, &loaded.config),
            limits,
            loaded,
            drills,
            data_dir,
            clock,
            signing,
        })
    }

    /// Runs `f` on the catalog, off the async threads.
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Catalog, &Api) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let api = self.clone();
        // A PostgreSQL server takes so many connections: requests beyond the kept ones wait
        // for one rather than open more. (SQLite's connections are a file opened.)
        let permit = match api.catalog {
            crate::catalog::Place::Postgres(_) => Some(
                api.catalog_turns
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| ApiError::internal(format!("the catalog's turns: {e}")))?,
            ),
            crate::catalog::Place::Embedded(_) => None,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A connection kept from an earlier request, or a new one: opening one for each
            // request made every request wait for the catalog's set-up lock.
            let kept = api.catalogs.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut catalog = match kept {
                Some(c) => c,
                None => api.catalog.open().map_err(ApiError::internal)?,
            };
            let answer = f(&mut catalog, &api);
            let mut kept = api.catalogs.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() < KEPT_CATALOGS {
                kept.push(catalog);
            }
            answer
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

    /// An error message as `who` may read it: whole for staff, without the MSP's
    /// locations and hosts for customers and auditors.
    pub fn for_reader(&self, who: &Principal, text: &str) -> String {
        if who.role.scoped() {
            crate::evidence::redact::redact(text, &self.confidential)
        } else {
            text.to_string()
        }
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

    /// The address a request came from: its peer, or what a trusted proxy says.
    pub fn client(&self, parts: &Parts) -> IpAddr {
        client::address(peer(parts), &parts.headers, &self.trusted)
    }

    /// Whether a request came over TLS (as a trusted proxy says).
    pub fn over_tls(&self, parts: &Parts) -> bool {
        client::over_tls(peer(parts), &parts.headers, &self.trusted)
    }

    /// Refuses a request that a browser did not send from one of our own pages.
    pub fn same_origin(&self, parts: &Parts) -> Result<(), ApiError> {
        let proxied = self.trusted.iter().any(|n| n.contains(&peer(parts)));
        client::same_origin(&parts.headers, proxied).map_err(ApiError::forbidden)
    }
}

fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// What a request authenticates with.
enum Credential {
    /// `Authorization: Bearer TOKEN`, from API clients.
    Bearer(String),
    /// The dashboard's session cookie.
    Session(String),
}

fn presented(parts: &Parts) -> Option<Credential> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        return text
            .strip_prefix("Bearer ")
            .map(|t| Credential::Bearer(t.trim().to_string()));
    }
    let jar = axum_extra::extract::CookieJar::from_headers(&parts.headers);
    jar.get(COOKIE)
        .map(|c| Credential::Session(c.value().to_string()))
}

impl FromRequestParts<State> for Principal {
    type Rejection = ApiError;

    /// A valid credential is let in at once, whatever failed before from the same place;
    /// only failures are slowed down and locked out (see `throttle`). A change made with
    /// the dashboard's cookie must come from the dashboard's own pages.
    async fn from_request_parts(parts: &mut Parts, api: &State) -> Result<Self, Self::Rejection> {
        let Some(credential) = presented(parts) else {
            return Err(ApiError::unauthorized(
                "this needs a token: send 'Authorization: Bearer TOKEN' (make one with 'lifeboat \
                 token create')",
            ));
        };
        let now = api.clock.now();
        let named = match &credential {
            Credential::Bearer(t) => auth::token_id(t).map(str::to_string),
            Credential::Session(_) => None,
        };
        let result = api
            .db(move |catalog, _| {
                let r = match &credential {
                    Credential::Bearer(t) => auth::authenticate(catalog, t, now),
                    Credential::Session(c) => auth::authenticate_session(catalog, c, now),
                }
                .map_err(ApiError::internal)?;
                if let Ok(p) = &r {
                    catalog
                        .touch_token(&p.token, now)
                        .map_err(ApiError::internal)?;
                }
                Ok(r)
            })
            .await?;
        let refused = match result {
            Ok(p) => {
                if p.session && !parts.method.is_safe() {
                    if let Err(e) = api.same_origin(parts) {
                        let (who, what) =
                            (p.clone(), format!("{} {}", parts.method, parts.uri.path()));
                        let why = format!("refused: {}", e.message);
                        api.db(move |catalog, api| api.audit(catalog, &who, &what, "-", &why))
                            .await?;
                        return Err(e);
                    }
                }
                return Ok(p);
            }
            Err(refused) => refused,
        };
        // A guess at a known token's secret counts against that token too.
        let known = !matches!(refused, auth::Refused::Malformed | auth::Refused::Unknown);
        let token = named.filter(|_| known);
        match api.throttle.failed(
            api.client(parts),
            token.as_deref(),
            std::time::Instant::now(),
        ) {
            Verdict::Locked(retry) => Err(ApiError::too_many(retry)),
            Verdict::Delay(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Err(ApiError::unauthorized(match refused {
                    auth::Refused::Expired | auth::Refused::Unknown
                        if matches!(presented(parts), Some(Credential::Session(_))) =>
                    {
                        "the dashboard session has ended: log in again"
                    }
                    _ => "the token is not valid: unknown, revoked or expired",
                }))
            }
        }
    }
}

/// The client's address (through the trusted proxies), for handlers that count failures
/// themselves.
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<State> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &State) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(api.client(parts)))
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

/// The whole application: API, OpenAPI document, metrics, health, dashboard; every answer
/// within the request time limit, and with the headers that keep browsers safe.
pub fn app(api: State) -> axum::Router {
    let (api_router, doc) = routes::router_and_document();
    let doc = Arc::new(doc);
    let limits = api.limits.clone();
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
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(move |r| {
            headers::secure(r, limits.request_timeout)
        }))
        .with_state(api)
}

/// The OpenAPI document, as the server serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router_and_document().1
}
