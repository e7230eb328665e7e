//! Who is on the other end of a request: the client's address (through the trusted
//! proxies), whether the request came over TLS, and whether a browser sent it from one of
//! our own pages (the guard against cross-site requests riding on the dashboard's cookie).

use axum::http::{header, HeaderMap};
use std::net::IpAddr;

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for hop in text.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // A hop that is not an address: nothing left of it can be believed.
                Err(_) => hops.clear(),
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Whether the request reached us over TLS: only a trusted proxy can say so
/// (`X-Forwarded-Proto: https`), as this server itself speaks plain HTTP.
pub fn over_tls(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&peer))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Whether a browser sent this request from one of this server's own pages. Browsers say so
/// in `Sec-Fetch-Site`; older ones only send `Origin`, which must then name the host the
/// request was sent to (`Host`, or `X-Forwarded-Host` from a trusted proxy). A request with
/// neither is refused: a state-changing request on a cookie must show where it came from.
pub fn same_origin(headers: &HeaderMap, behind_trusted_proxy: bool) -> Result<(), String> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Ok(()),
            other => Err(format!(
                "this request came from another site (Sec-Fetch-Site: {other}); the dashboard \
                 only acts on requests from its own pages"
            )),
        };
    }
    let Some(origin) = text(header::ORIGIN) else {
        return Err(
            "this request does not say where it came from (no Origin or \
                    Sec-Fetch-Site header); the dashboard only acts on requests from its own \
                    pages, and API clients send 'Authorization: Bearer TOKEN' instead of the \
                    cookie"
                .into(),
        );
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'));
    let host = behind_trusted_proxy
        .then(|| text(header::HeaderName::from_static("x-forwarded-host")))
        .flatten()
        .or_else(|| text(header::HOST));
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(format!(
            "this request came from another site (Origin: {origin}); the dashboard only acts \
             on requests from its own pages"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.1, 10.0.0.7")]);
        // Not trusted: the peer is the client, whatever the header says.
        assert_eq!(address(peer, &h, &[]), peer);
        // Trusted 10/8: the nearest hop outside it.
        assert_eq!(
            address(peer, &h, &nets(&["10.0.0.0/8"])),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Nothing but proxies: the peer.
        let h2 = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(address(peer, &h2, &nets(&["10.0.0.0/8"])), peer);
        // Garbage in the header: the hops before it are not believed.
        let h3 = headers(&[("x-forwarded-for", "203.0.113.9, junk, 10.0.0.7")]);
        assert_eq!(address(peer, &h3, &nets(&["10.0.0.0/8"])), peer);
        // Several header lines are one list.
        let h4 = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        assert_eq!(
            address(peer, &h4, &nets(&["10.0.0.0/8"])),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn tls_only_as_a_trusted_proxy_says() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let h = headers(&[("x-forwarded-proto", "https")]);
        assert!(!over_tls(peer, &h, &[]));
        assert!(over_tls(peer, &h, &nets(&["127.0.0.1/32"])));
        assert!(!over_tls(peer, &headers(&[]), &nets(&["127.0.0.1/32"])));
    }

    #[test]
    fn same_origin_by_fetch_metadata_or_origin() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), false).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")]), false).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")]), false).is_err());
        let good = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(same_origin(&good, false).is_ok());
        let evil = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(same_origin(&evil, false)
            .unwrap_err()
            .contains("Origin: http://evil.example"));
        assert!(same_origin(&headers(&[("origin", "null"), ("host", "a")]), false).is_err());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")]), false)
            .unwrap_err()
            .contains("no Origin"));
        // Behind a trusted proxy the public host is in X-Forwarded-Host.
        let proxied = headers(&[
            ("origin", "https://backup.msp.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "backup.msp.example"),
        ]);
        assert!(same_origin(&proxied, true).is_ok());
        assert!(same_origin(&proxied, false).is_err());
    }
}
