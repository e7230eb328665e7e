//! The agent's side of the link: HTTPS requests to the centre (plain HTTP only to this
//! machine), bounded in time and size, signed with the agent's key when it has enrolled, and
//! the centre's refusals said as it said them.

use super::{request, Error, Result};
use crate::repo::crypto::SecretKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Largest answer read from the centre.
const ANSWER_LIMIT: u64 = 4 << 20;

pub struct Centre {
    base: String,
    http: ureq::Agent,
}

impl Centre {
    /// The centre at `server`: HTTPS, or plain HTTP to this machine only (a centre behind a
    /// local TLS proxy, and the tests).
    pub fn new(server: &str) -> Result<Centre> {
        let base = server.trim_end_matches('/');
        let plain_local = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
            .iter()
            .any(|local| {
                base == *local
                    || base
                        .strip_prefix(local)
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('/'))
            });
        if !(base.starts_with("https://") || plain_local) {
            return Err(Error::Refused(format!(
                "--server {base}: an agent speaks HTTPS to its centre (https://HOST); plain \
                 http:// only to this machine (127.0.0.1, [::1], localhost)"
            )));
        }
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Centre {
            base: base.to_string(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `METHOD BASE+PATH` with `body` as JSON, signed with `key` at the time given (when
    /// given); the answer as
    /// `R`, or `Error::Refused` with what the centre said.
    pub fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        key: Option<(&SecretKey, chrono::DateTime<chrono::Utc>)>,
    ) -> Result<R> {
        let url = format!("{}{path}", self.base);
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| Error::Other(e.to_string()))?,
            None => Vec::new(),
        };
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some((key, now)) = key {
            headers = request::sign(key, method, path, &bytes, now)?;
        }
        let sent = match method {
            "POST" => {
                let mut r = self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/json");
                for (k, v) in &headers {
                    r = r.header(*k, v);
                }
                r.send(&bytes[..])
            }
            _ => {
                let mut r = self.http.get(&url);
                for (k, v) in &headers {
                    r = r.header(*k, v);
                }
                r.call()
            }
        };
        let mut response = sent.map_err(|e| {
            Error::Other(format!(
                "cannot reach the centre at {url}: {e} (is the address right, and may this \
                 machine connect out to it?)"
            ))
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
            .map_err(|e| Error::Other(format!("{url}: reading the answer: {e}")))?;
        if !status.is_success() {
            let said = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().chars().take(300).collect());
            return Err(Error::Centre {
                status: status.as_u16(),
                message: said,
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| Error::Other(format!("{url}: the answer is not what was asked: {e}")))
    }
}
