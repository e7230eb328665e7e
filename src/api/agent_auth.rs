//! Requests of enrolled agents, known by their signatures (see `agent::request`). Forged and
//! unsigned requests count as failed logins; a revoked agent is told so (403).

use super::error::ApiError;
use super::throttle::Verdict;
use super::{State, BODY_LIMIT};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

/// An enrolled agent making a request without a body.
pub struct AgentCaller(pub crate::agent::request::Caller);

/// An enrolled agent's request with a JSON body, whose signature covers the body.
pub struct SignedJson<T>(pub crate::agent::request::Caller, pub T);

impl FromRequestParts<State> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &State) -> Result<Self, Self::Rejection> {
        verify(parts, api, Vec::new()).await.map(AgentCaller)
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> FromRequest<State> for SignedJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, api: &State) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {BODY_LIMIT} bytes or was cut off"),
            )
        })?;
        let caller = verify(&mut parts, api, bytes.to_vec()).await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?;
        Ok(SignedJson(caller, value))
    }
}

async fn verify(
    parts: &mut Parts,
    api: &State,
    body: Vec<u8>,
) -> Result<crate::agent::request::Caller, ApiError> {
    let headers = parts.headers.clone();
    let method = parts.method.to_string();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let now = api.clock.now();
    let verdict = api
        .db(move |catalog, _| {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            crate::agent::request::verify(catalog, header, &method, &path, &body, now)
                .map_err(ApiError::internal)
        })
        .await?;
    let rejected = match verdict {
        Ok(caller) => return Ok(caller),
        Err(rejected) => rejected,
    };
    if rejected.is_guess() {
        match api
            .throttle
            .failed(api.client(parts), None, std::time::Instant::now())
        {
            Verdict::Locked(retry) => return Err(ApiError::too_many(retry)),
            Verdict::Delay(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Verdict::Delay(_) => {}
        }
    }
    match rejected {
        crate::agent::request::Rejected::Revoked(_) => Err(ApiError::forbidden(rejected.message())),
        _ => Err(ApiError::unauthorized(rejected.message())),
    }
}
