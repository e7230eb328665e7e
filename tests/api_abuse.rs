//! `lifeboat serve` against the abuse a service on the network meets: guessed tokens (never
//! locking out a valid one), requests forged from other sites riding on the dashboard's
//! cookie, slow and idle connections and floods of them, reports over unbounded periods,
//! SIGTERM with requests in flight; and what it must not give away: private files, and the
//! MSP's locations in the errors customers read.

mod common;
use common::api::*;
use common::server::Server;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const GUESS: &str = "lb_000000000000_guess";

#[test]
fn failed_logins_lock_out_guessers_but_never_a_valid_token() {
    let s = setup();
    let srv = &s.server;
    for _ in 0..lifeboat::api::throttle::LOCK_AFTER {
        assert_eq!(srv.get("/api/v1/sources", Some(GUESS)).status, 401);
    }
    let locked = srv.get("/api/v1/sources", Some(GUESS));
    assert_eq!(locked.status, 429, "{}", locked.text());
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0);
    // A valid token from the same address is let in: it is checked before any lock-out.
    assert_eq!(srv.get("/api/v1/sources", Some(&s.acme)).status, 200);
    assert_eq!(srv.get("/api/v1/sources", Some(&s.admin)).status, 200);
    // The guesser is still locked out after those good requests.
    assert_eq!(srv.get("/api/v1/sources", Some(GUESS)).status, 429);
    // /healthz needs no token.
    assert_eq!(srv.get("/healthz", None).status, 200);
    // Without trusted proxies, X-Forwarded-For is not believed: a fresh one per guess does
    // not get a fresh count.
    let spoofed = srv.get_with(
        "/api/v1/sources",
        &[
            ("Authorization", &format!("Bearer {GUESS}")),
            ("X-Forwarded-For", "203.0.113.77"),
        ],
    );
    assert_eq!(spoofed.status, 429);
}

#[test]
fn a_good_login_between_guesses_does_not_reset_the_count() {
    let s = setup();
    let srv = &s.server;
    // Nine guesses, one good request, again and again: the guesses are locked out all the
    // same once ten have failed in the window.
    let mut answers = Vec::new();
    for _ in 0..2 {
        for _ in 0..9 {
            answers.push(srv.get("/api/v1/sources", Some(GUESS)).status);
        }
        assert_eq!(srv.get("/api/v1/sources", Some(&s.acme)).status, 200);
    }
    let limit = lifeboat::api::throttle::LOCK_AFTER as usize;
    assert!(answers[..limit].iter().all(|a| *a == 401), "{answers:?}");
    assert!(answers[limit..].iter().all(|a| *a == 429), "{answers:?}");
}

#[test]
fn behind_a_trusted_proxy_each_client_and_each_token_is_counted_apart() {
    let mut s = setup();
    restart_with(&mut s, "trusted_proxies = [\"127.0.0.1\"]", "");
    let srv = &s.server;
    let from = |client: &str, token: &str| {
        srv.get_with(
            "/api/v1/sources",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Forwarded-For", client),
            ],
        )
        .status
    };
    for _ in 0..lifeboat::api::throttle::LOCK_AFTER {
        assert_eq!(from("203.0.113.5", GUESS), 401);
    }
    assert_eq!(from("203.0.113.5", GUESS), 429);
    // Another client behind the same proxy is not locked out by it, and the locked-out
    // client's valid token still works.
    assert_eq!(from("203.0.113.6", GUESS), 401);
    assert_eq!(from("203.0.113.5", &s.acme), 200);

    // Guesses at the customer token's secret from ever new addresses lock that token for
    // guessers, but never its holder.
    let id = &s.acme[3..15];
    let wrong = format!("lb_{id}_{}", "x".repeat(43));
    for i in 0..lifeboat::api::throttle::LOCK_AFTER {
        assert_eq!(from(&format!("198.51.100.{i}"), &wrong), 401);
    }
    assert_eq!(from("198.51.100.200", &wrong), 429);
    assert_eq!(from("198.51.100.201", &s.acme), 200);
    // A guess at another token from a fresh address is answered as usual.
    assert_eq!(from("198.51.100.202", GUESS), 401);
}

// ---- The dashboard's cookie, forged requests, headers ----

#[test]
fn cookie_requests_from_other_sites_are_refused_and_logout_ends_the_session() {
    let s = setup();
    let srv = &s.server;
    // A customer plans a drill of their own, then logs in to the dashboard.
    let planned = srv.post_json(
        "/api/v1/drills",
        Some(&s.acme),
        &serde_json::json!({"spec": "acme-drill", "at": "2027-03-01T08:00:00Z"}),
    );
    assert_eq!(planned.status, 201, "{}", planned.text());
    let drill = planned.json()["drill"]["id"].as_i64().unwrap();
    let (cookie, set_cookie) = srv.login(&s.acme);
    // The cookie holds a session, not the token, and is not readable by scripts.
    assert!(!cookie.contains(&s.acme[16..]), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    assert_eq!(srv.get_with_cookie("/api/v1/sources", &cookie).status, 200);

    // A page on another site posts a form to cancel the drill, with the visitor's cookie.
    let cancel = format!("/api/v1/drills/{drill}/cancel");
    let form = Some("application/x-www-form-urlencoded");
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "http://evil.example"),
        ],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![],
    ] {
        let r = srv.send_with_cookie("POST", &cancel, &cookie, &headers, form, b"x=1");
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
    }
    let d = srv
        .get(&format!("/api/v1/drills/{drill}"), Some(&s.admin))
        .json();
    assert_eq!(d["state"], "planned", "a forged request cancelled it");
    let audit = srv.get("/api/v1/audit", Some(&s.admin)).text();
    assert!(
        audit.contains("refused: this request came from another site"),
        "{audit}"
    );

    // An operator's backup trigger, likewise.
    let admin_cookie = srv.login(&s.admin).0;
    let r = srv.send_with_cookie(
        "POST",
        "/api/v1/sources/acme-files/backup",
        &admin_cookie,
        &[("Origin", "http://evil.example")],
        form,
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // From the dashboard's own page it works; API clients with a bearer token need no Origin.
    let own = srv.base.clone();
    let r = srv.send_with_cookie("POST", &cancel, &cookie, &[("Origin", &own)], None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = srv.post_json(
        "/api/v1/drills",
        Some(&s.acme),
        &serde_json::json!({"spec": "acme-drill", "at": "2027-04-01T08:00:00Z"}),
    );
    assert_eq!(bearer.status, 201, "{}", bearer.text());

    // Login and logout from other sites are refused too.
    let login = srv.send_with_cookie(
        "POST",
        "/login",
        "",
        &[("Origin", "http://evil.example")],
        form,
        format!("token={}", s.acme).as_bytes(),
    );
    assert_eq!(login.status, 403, "{}", login.text());
    assert!(login.header("set-cookie").is_none());
    let logout = srv.send_with_cookie(
        "POST",
        "/logout",
        &cookie,
        &[("Sec-Fetch-Site", "cross-site")],
        form,
        b"",
    );
    assert_eq!(logout.status, 403);
    assert_eq!(srv.get_with_cookie("/api/v1/sources", &cookie).status, 200);

    // Logout ends the session on the server: the old cookie is worth nothing afterwards, the
    // token itself still works for the API.
    let out = srv.send_with_cookie(
        "POST",
        "/logout",
        &cookie,
        &[("Sec-Fetch-Site", "same-origin")],
        form,
        b"",
    );
    assert_eq!(out.status, 303);
    let after = srv.get_with_cookie("/api/v1/sources", &cookie);
    assert_eq!(after.status, 401, "{}", after.text());
    assert!(
        after.text().contains("session has ended"),
        "{}",
        after.text()
    );
    assert_eq!(srv.get("/api/v1/sources", Some(&s.acme)).status, 200);
}

#[test]
fn the_cookie_is_secure_when_a_trusted_proxy_says_tls() {
    let mut s = setup();
    restart_with(&mut s, "trusted_proxies = [\"127.0.0.1\"]", "");
    let srv = &s.server;
    let r = srv.send_with_cookie(
        "POST",
        "/login",
        "",
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "backup.msp.example"),
            ("Origin", "https://backup.msp.example"),
        ],
        Some("application/x-www-form-urlencoded"),
        format!("token={}", s.acme).as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").unwrap();
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
}

#[test]
fn every_answer_carries_the_browser_safety_headers() {
    let s = setup();
    let srv = &s.server;
    let (cookie, _) = srv.login(&s.acme);
    let answers = [
        ("login page", srv.get("/login", None)),
        ("tenant page", srv.get_with_cookie("/tenants/acme", &cookie)),
        ("json", srv.get("/api/v1/sources", Some(&s.acme))),
        (
            "html report",
            srv.get(
                "/api/v1/reports/erp?period=2026-11&format=html",
                Some(&s.acme),
            ),
        ),
        ("error", srv.get("/api/v1/sources", None)),
    ];
    for (what, r) in answers {
        assert!(r.status < 500, "{what}: {}", r.status);
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{what}: {csp}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
}

// ---- Reports, drills ----

#[test]
fn report_periods_are_bounded_and_begin_with_the_evidence() {
    let s = setup();
    let srv = &s.server;
    let get = |period: &str| {
        srv.get(
            &format!("/api/v1/reports/erp?period={period}&format=html"),
            Some(&s.acme),
        )
    };
    let cases = [
        ("0001-01-01..9999-12-31", "at most 731 days"),
        ("2024-01-01..2026-11-30", "at most 731 days"),
        // The contract's evidence begins in November 2026.
        ("2025", "the contract's evidence begins 2026-11-20"),
        (
            "2025-12-01..2026-11-30",
            "may start on 2026-01-01 at the earliest",
        ),
        // The service's clock stands in November 2026.
        ("2027-03", "has not begun"),
    ];
    for (period, says) in cases {
        let r = get(period);
        assert_eq!(r.status, 422, "{period}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{period}: {}",
            r.text()
        );
    }
    for period in ["2026", "2026-11", "2026-Q4", "2026-01-01..2026-11-25"] {
        assert_eq!(get(period).status, 200, "{period}");
    }
}

#[test]
fn drills_far_ahead_are_refused() {
    let s = setup();
    let r = s.server.post_json(
        "/api/v1/drills",
        Some(&s.acme),
        &serde_json::json!({"spec": "acme-drill", "at": "9999-12-31T00:00:00Z"}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("more than 366 days ahead"),
        "{}",
        r.text()
    );
}

// ---- Files and secrets ----

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_data_directory_and_the_catalog_are_private() {
    let mut s = setup();
    let data = s.ws.path("data");
    assert_eq!(mode(&data), 0o700);
    if s.ws.catalog.is_some() {
        // A catalog in PostgreSQL has no files here; its server guards it.
        assert!(!data.join("catalog.sqlite").exists());
        return;
    }
    for name in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let f = data.join(name);
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{name}");
        }
    }
    // A catalog that an older version left readable to all is closed at the next start.
    s.server.stop();
    let catalog = data.join("catalog.sqlite");
    std::fs::set_permissions(&catalog, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.server = serve(&s.ws);
    assert_eq!(s.server.get("/api/v1/sources", Some(&s.admin)).status, 200);
    assert_eq!(mode(&catalog), 0o600);
}

#[test]
fn customers_read_errors_without_the_msps_locations() {
    let mut s = setup();
    // A target the service cannot write to: its folder would be under a file.
    let store = s.ws.path("msp-internal-store");
    std::fs::write(&store, "not a folder").unwrap();
    let path = s.ws.path("lifeboat.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[targets.broken]\nkind = \"local\"\npath = \"{}/repo\"\n\n[sources.acme-db]\ntenant = \"acme\"\ncontract = \"erp\"\nkind = \"files\"\npaths = [\"{}\"]\ntier = \"7/1\"\ntargets = [\"broken\"]\n",
        store.display(),
        s.ws.path("srv/acme").display()
    ));
    std::fs::write(&path, text).unwrap();
    restart_with(&mut s, "", "");
    let srv = &s.server;
    let job = srv.send(
        "POST",
        "/api/v1/sources/acme-db/backup",
        Some(&s.admin),
        None,
        b"",
    );
    assert_eq!(job.status, 202, "{}", job.text());
    let status = job.json()["status"].as_str().unwrap().to_string();
    // The first attempt fails (the job is then queued again for later).
    let deadline = Instant::now() + Duration::from_secs(120);
    let state = loop {
        let state = srv.get(&status, Some(&s.admin)).json();
        if state["error"].is_string() {
            break state;
        }
        assert!(Instant::now() < deadline, "the job never failed: {state}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let secret = store.display().to_string();
    // Staff see where it failed.
    assert!(
        state["error"].as_str().unwrap().contains(&secret),
        "{state}"
    );
    // The customer sees what failed, not where.
    let acme = Some(s.acme.as_str());
    for path in [
        status.as_str(),
        "/api/v1/jobs",
        "/api/v1/sources/acme-db",
        "/api/v1/runs?source=acme-db",
        "/api/v1/evidence?tenant=acme",
        "/api/v1/reports/erp?period=2026-11",
    ] {
        let r = srv.get(path, acme);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let text = r.text();
        assert!(!text.contains(&secret), "{path} shows {secret}: {text}");
        assert!(!text.contains("msp-internal-store"), "{path}: {text}");
    }
    let job = srv.get(&status, acme).json();
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("target 'broken'") && error.contains("[hidden]"),
        "{error}"
    );
}

// ---- Slow, idle and many connections; stopping ----

/// A raw client from a loopback address of its own (127.0.0.N), so that a test can be many
/// clients. Reads give up after `pace`, which is also how often a slow client sends.
fn client(from: &str, server: &Server, pace: Duration) -> TcpStream {
    let to: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(pace)).unwrap();
    stream
}

/// What a read finds: the server closed the connection, sent something, or nothing yet.
#[derive(Debug, PartialEq)]
enum Seen {
    Closed,
    Answer(String),
    Nothing,
}

fn look(stream: &mut TcpStream) -> Seen {
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Answer(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Seen::Nothing
        }
        Err(_) => Seen::Closed,
    }
}

/// Sends `step` at the client's pace until the server closes the connection; what it said
/// before, if anything. Fails if it is still open after a minute.
fn dribble_until_closed(stream: &mut TcpStream, step: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = String::new();
    loop {
        if stream.write_all(step).is_err() {
            return said;
        }
        match look(stream) {
            Seen::Closed => return said,
            Seen::Answer(a) => said.push_str(&a),
            Seen::Nothing => {}
        }
        assert!(
            Instant::now() < deadline,
            "still open after a minute; said: {said}"
        );
    }
}

const PACE: Duration = Duration::from_millis(200);

#[test]
fn slow_and_idle_connections_are_closed() {
    let mut s = setup();
    restart_with(
        &mut s,
        "",
        "header_timeout = \"2s\"\nrequest_timeout = \"3s\"",
    );
    let srv = &s.server;

    // Headers a line at a time, never finished.
    let mut c = client("127.0.0.2", srv, PACE);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: lifeboat\r\n")
        .unwrap();
    dribble_until_closed(&mut c, b"X-Slow: 1\r\n");

    // The login form's body a byte at a time: 408, then closed.
    let mut c = client("127.0.0.2", srv, PACE);
    c.write_all(
        b"POST /login HTTP/1.1\r\nHost: lifeboat\r\nOrigin: http://lifeboat\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
    )
    .unwrap();
    let said = dribble_until_closed(&mut c, b"x");
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");

    // A drill request's body a byte at a time, with no token: answered at once, then closed.
    let mut c = client("127.0.0.2", srv, PACE);
    c.write_all(
        b"POST /api/v1/drills HTTP/1.1\r\nHost: lifeboat\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
    )
    .unwrap();
    let said = dribble_until_closed(&mut c, b" ");
    assert!(said.starts_with("HTTP/1.1 401"), "{said}");

    // Idle after a request, keep-alive: closed when the idle time is up.
    let mut c = client("127.0.0.2", srv, PACE);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: lifeboat\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = String::new();
    loop {
        match look(&mut c) {
            Seen::Closed => break,
            Seen::Answer(a) => said.push_str(&a),
            Seen::Nothing => {}
        }
        assert!(
            Instant::now() < deadline,
            "an idle connection stayed open: {said}"
        );
    }
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

/// Open file descriptors of a process.
/// The client connections process `pid` holds open on its port `port`: its sockets that
/// are TCP connections (not the listener) with that local port. (Counting every descriptor
/// would count the catalog's too: a PostgreSQL catalog opens connections as it needs them.)
fn client_sockets(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next().unwrap();
            // State 0A is LISTEN.
            u16::from_str_radix(local_port, 16).unwrap() == port
                && f[3] != "0A"
                && inodes.contains(f[9])
        })
        .count()
}

#[test]
fn connections_are_capped_per_address_and_in_all() {
    let mut s = setup();
    restart_with(
        &mut s,
        "",
        "header_timeout = \"10s\"\nmax_connections = 8\nmax_connections_per_address = 4",
    );
    let srv = &s.server;
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    let before = client_sockets(srv.pid(), port);

    // Per address: four slow clients from 127.0.0.2 are served; a fifth is closed at once,
    // while another address is answered at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = client("127.0.0.2", srv, PACE);
        c.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        held.push(c);
    }
    let mut fifth = client("127.0.0.2", srv, PACE);
    let deadline = Instant::now() + Duration::from_secs(60);
    while look(&mut fifth) != Seen::Closed {
        assert!(
            Instant::now() < deadline,
            "a fifth connection from one address stayed open"
        );
    }
    for c in &mut held {
        assert_eq!(
            look(c),
            Seen::Nothing,
            "one of the first four was closed early"
        );
    }

    // In all: four more from 127.0.0.3 fill the eight places; then a ninth client's request
    // is answered only once a place is free, that is once the server has closed one of the
    // slow ones; and however many connect, the server holds no more than eight.
    for _ in 0..4 {
        let mut c = client("127.0.0.3", srv, PACE);
        c.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        held.push(c);
    }
    let mut crowd: Vec<TcpStream> = (0..30).map(|_| client("127.0.0.4", srv, PACE)).collect();
    let mut ninth = client("127.0.0.5", srv, PACE);
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: lifeboat\r\n\r\n")
        .unwrap();
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        most = most.max(client_sockets(srv.pid(), port));
        match look(&mut ninth) {
            Seen::Answer(a) => break a,
            Seen::Closed => panic!("the ninth client was turned away"),
            Seen::Nothing => {}
        }
        assert!(
            Instant::now() < deadline,
            "the ninth client was never answered"
        );
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = held
        .iter_mut()
        .map(look)
        .filter(|seen| *seen == Seen::Closed)
        .count();
    assert!(
        closed >= 1,
        "answered while all eight places were still taken"
    );
    assert!(
        most <= before + 8 + 4,
        "the server held {most} client connections with {before} before"
    );
    assert!(most >= 8, "the eight places were never all taken: {most}");
    drop(crowd.drain(..));
}

#[test]
fn sigterm_ends_the_service_with_requests_in_flight() {
    let mut s = setup();
    restart_with(
        &mut s,
        "stop_timeout = \"1s\"",
        "request_timeout = \"300s\"\nheader_timeout = \"300s\"",
    );
    // A login whose body never ends, and an idle connection.
    let mut slow = client("127.0.0.2", &s.server, PACE);
    slow.write_all(
        b"POST /login HTTP/1.1\r\nHost: lifeboat\r\nOrigin: http://lifeboat\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntoken=",
    )
    .unwrap();
    let _idle = client("127.0.0.3", &s.server, PACE);
    // The server has the slow request in hand once a byte more goes through.
    slow.write_all(b"x").unwrap();
    assert_eq!(look(&mut slow), Seen::Nothing);
    s.server.signal(libc::SIGTERM);
    let stop = std::thread::spawn(move || {
        // Keep the request alive while the server stops.
        while slow.write_all(b"x").is_ok() && look(&mut slow) == Seen::Nothing {}
    });
    let code = s.server.exited_within(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{}", s.server.log());
    stop.join().unwrap();
    assert!(s.server.log().contains("stopped"), "{}", s.server.log());
}
