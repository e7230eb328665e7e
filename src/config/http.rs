//! `[service.http]`: the limits of the API server that faces the network, and
//! `[service] trusted_proxies`, the reverse proxies whose `X-Forwarded-For` and
//! `X-Forwarded-Proto` headers are believed.
//!
//! Every limit has a default that suits a service on the open internet; none can be switched
//! off, only moved.

use crate::schedule::retention::parse_span;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// The API server's limits. Each is optional in the file.
#[derive(Debug, Default, Deserialize)]
pub struct Http {
    /// Longest a request may take from its first header byte to its answer, body included
    /// (`30s`). Over it, the client gets 408 and the connection is closed.
    pub request_timeout: Option<Spanned<String>>,
    /// Longest a client may take to send a request's headers, and longest an idle
    /// keep-alive connection stays open (`10s`).
    pub header_timeout: Option<Spanned<String>>,
    /// Connections open at once, over all clients (512). More wait to be accepted.
    pub max_connections: Option<Spanned<usize>>,
    /// Connections open at once from one client address (32; not applied to trusted proxies).
    /// More are closed at once.
    pub max_connections_per_address: Option<Spanned<usize>>,
    /// Reports computed at once (2). Others wait their turn within their request's time.
    pub reports_at_once: Option<Spanned<usize>>,
    /// Failed authentications from one client, or for one token, within 15 minutes before
    /// further failures get 429 (10). A valid token is never locked out.
    pub lock_after: Option<Spanned<usize>>,
}

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 512;
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
pub const REPORTS_AT_ONCE: usize = 2;
pub const LOCK_AFTER: usize = 10;

/// The limits, resolved (validated at load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub reports_at_once: usize,
    pub lock_after: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: REQUEST_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
            reports_at_once: REPORTS_AT_ONCE,
            lock_after: LOCK_AFTER,
        }
    }
}

fn duration(value: &Option<Spanned<String>>, default: Duration) -> Result<Duration, String> {
    let Some(v) = value else {
        return Ok(default);
    };
    let d = parse_span(v.get_ref())?;
    let d = d
        .to_std()
        .map_err(|_| format!("'{}' is not a positive time", v.get_ref()))?;
    if d.is_zero() {
        return Err(format!(
            "'{}' is no time at all; give at least 1s",
            v.get_ref()
        ));
    }
    Ok(d)
}

fn count(value: &Option<Spanned<usize>>, default: usize) -> Result<usize, String> {
    match value.as_ref().map(|v| *v.get_ref()) {
        None => Ok(default),
        Some(0) => Err("must be at least 1".into()),
        Some(n) => Ok(n),
    }
}

impl Http {
    /// The limits, or each problem with the span of the value that has it.
    pub fn limits(&self) -> Result<Limits, Vec<(std::ops::Range<usize>, String)>> {
        let mut problems = Vec::new();
        let span = |v: &Option<Spanned<String>>| v.as_ref().map_or(0..0, |v| v.span());
        let span_n = |v: &Option<Spanned<usize>>| v.as_ref().map_or(0..0, |v| v.span());
        let mut time = |name: &str, v: &Option<Spanned<String>>, default| {
            duration(v, default).unwrap_or_else(|e| {
                problems.push((span(v), format!("[service.http] {name}: {e}")));
                default
            })
        };
        let request_timeout = time("request_timeout", &self.request_timeout, REQUEST_TIMEOUT);
        let header_timeout = time("header_timeout", &self.header_timeout, HEADER_TIMEOUT);
        let mut number = |name: &str, v: &Option<Spanned<usize>>, default| {
            count(v, default).unwrap_or_else(|e| {
                problems.push((span_n(v), format!("[service.http] {name}: {e}")));
                default
            })
        };
        let limits = Limits {
            request_timeout,
            header_timeout,
            max_connections: number("max_connections", &self.max_connections, MAX_CONNECTIONS),
            max_connections_per_address: number(
                "max_connections_per_address",
                &self.max_connections_per_address,
                MAX_CONNECTIONS_PER_ADDRESS,
            ),
            reports_at_once: number("reports_at_once", &self.reports_at_once, REPORTS_AT_ONCE),
            lock_after: number("lock_after", &self.lock_after, LOCK_AFTER),
        };
        if problems.is_empty() {
            Ok(limits)
        } else {
            Err(problems)
        }
    }
}

/// The networks of `[service] trusted_proxies`, or each entry that is not an address or a
/// network (`127.0.0.1`, `10.0.0.0/8`, `::1`).
pub fn trusted_proxies(
    entries: &[Spanned<String>],
) -> Result<Vec<ipnet::IpNet>, Vec<(std::ops::Range<usize>, String)>> {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    for e in entries {
        let text = e.get_ref().trim();
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => problems.push((
                e.span(),
                format!(
                    "trusted_proxies: '{text}' is not an IP address or network (such as \
                     127.0.0.1 or 10.0.0.0/8)"
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(nets)
    } else {
        Err(problems)
    }
}

/// Credentials written into a web address (`http://user:secret@host`): they would show in
/// logs, job lists and error messages. `Some(why)` when `url` carries any.
pub fn credentials_in(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@').then(|| {
        "it has credentials in it (USER:SECRET@): they would show in logs, job lists and \
         error messages; remove them and give them through the environment \
         (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or an AWS profile"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_addresses_are_found() {
        for url in [
            "http://user:pass@127.0.0.1:9000",
            "https://key@s3.example",
            "user:pass@host",
        ] {
            assert!(credentials_in(url).is_some(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9000",
            "https://s3.example/path@x",
            "https://s3.example/?q=a@b",
        ] {
            assert!(credentials_in(url).is_none(), "{url}");
        }
    }

    #[test]
    fn limits_default_and_refuse_nonsense() {
        let http: Http = toml::from_str("").unwrap();
        assert_eq!(http.limits().unwrap(), Limits::default());
        let http: Http = toml::from_str("request_timeout = \"5s\"\nmax_connections = 8\n").unwrap();
        let limits = http.limits().unwrap();
        assert_eq!(limits.request_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_connections, 8);
        let http: Http = toml::from_str("header_timeout = \"0s\"\nreports_at_once = 0\n").unwrap();
        let problems: Vec<String> = http
            .limits()
            .unwrap_err()
            .into_iter()
            .map(|p| p.1)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("header_timeout"), "{problems:?}");
        assert!(problems[1].contains("reports_at_once: must be at least 1"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let ok: Vec<Spanned<String>> = ["127.0.0.1", "10.0.0.0/8", "::1"]
            .into_iter()
            .map(|s| Spanned::new(0..0, s.to_string()))
            .collect();
        let nets = trusted_proxies(&ok).unwrap();
        assert!(nets[1].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        let bad = vec![Spanned::new(0..0, "proxy.example".to_string())];
        assert!(trusted_proxies(&bad).unwrap_err()[0]
            .1
            .contains("not an IP address or network"));
    }
}
