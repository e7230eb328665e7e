//! The HTTP server under the API, with every connection bounded: `max_connections` open at
//! once (more wait to be accepted), `max_connections_per_address` from one client (more are
//! closed at once; trusted proxies are exempt), request headers within `header_timeout`
//! (which is also how long an idle keep-alive connection stays open), and each request
//! answered within `request_timeout` (the application's `TimeoutLayer`). On shutdown, open
//! requests get the grace given, then their connections are dropped.

use super::State;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections open per client address.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in `PerAddress`, given back when the connection ends.
struct Place {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, ip: IpAddr, limit: usize) -> Option<Place> {
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Place {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves on `listener` until `shutdown` completes; then gives open requests `grace` to
/// finish before it returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = api.limits.clone();
    let trusted = api.trusted.clone();
    // Jobs queued for sites by other instances sharing the catalog wake this one's waiting
    // agents too.
    let bells = api.clone();
    let hearing = crate::catalog::site_jobs::hear_queued(&api.catalog, move |site| match site {
        Some(site) => bells.site_jobs.ring(site),
        None => bells.site_jobs.ring_all(),
    })
    .map(tokio::spawn);
    let app = super::app(api);
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = total.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: say so, and give the system a
                    // moment rather than spinning.
                    eprintln!("api: cannot accept a connection: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            },
            _ = &mut shutdown => break,
        };
        let place = if trusted.iter().any(|n| n.contains(&peer.ip())) {
            None
        } else {
            match PerAddress::take(&per_address, peer.ip(), limits.max_connections_per_address) {
                Some(p) => Some(p),
                // Over its share: closed at once.
                None => continue,
            }
        };
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            },
        );
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
            drop(place);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            eprintln!("api: requests still open after {} s of stopping were cut off", grace.as_secs());
        }
    }
    if let Some(hearing) = hearing {
        hearing.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_per_address_are_bounded_and_given_back() {
        let table = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = PerAddress::take(&table, a, 2).unwrap();
        let second = PerAddress::take(&table, a, 2).unwrap();
        assert!(PerAddress::take(&table, a, 2).is_none());
        assert!(PerAddress::take(&table, b, 2).is_some());
        drop(first);
        let third = PerAddress::take(&table, a, 2);
        assert!(third.is_some());
        drop((second, third));
        assert!(table.open.lock().unwrap().is_empty());
    }
}
