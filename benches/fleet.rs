//! The fleet benchmark: one central `lifeboat serve` and N simulated site agents speaking the
//! agent protocol (`benches/fleet.sh` runs it; not a timed test).
//!
//! Each simulated agent enrolls with a token of its own site (made in the centre's catalog
//! beforehand), then for the measured window: checks in once a minute, keeps a long poll for
//! the site's jobs open, and pushes its evidence as a real agent would, one signed, chained
//! backup record at a time, for 3 sources on tier 90/48 at a 10x clock (one record per source
//! every 3 real minutes, their phases spread). Meanwhile the benchmark asks the centre for a
//! backup now of a random site's source twice a second, and the agent that hears of it says it
//! runs and that it is done. Measured: the latency of pushes, check-ins and trigger delivery
//! (from the API's 202 to the long poll's answer), the centre's CPU time and peak RSS over the
//! window, and the catalog's growth per 10,000 records.
//!
//! usage: cargo bench --bench fleet -- LIFEBOAT_BINARY AGENTS SECONDS

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lifeboat::agent::outbox::{Push, PushedRecord};
use lifeboat::evidence::record::{sha256_hex, time, SnapshotRef};
use lifeboat::evidence::{Record, RecordKind};
use lifeboat::repo::crypto::{self, SecretKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const SOURCES: usize = 3;
/// A 90/48 slot (30 minutes) at a 10x clock.
const SLOT: Duration = Duration::from_secs(180);

#[derive(Default)]
struct Figures {
    push_ms: Mutex<Vec<f64>>,
    check_in_ms: Mutex<Vec<f64>>,
    trigger_ms: Mutex<Vec<f64>>,
    errors: AtomicU64,
    /// What the failures were, by kind.
    failures: Mutex<std::collections::BTreeMap<String, u64>>,
    records: AtomicU64,
    /// Bytes of the records and signatures pushed.
    record_bytes: AtomicU64,
    /// Triggers on their way, under one lock: a poll and the asking look at both maps at
    /// once, or a job heard while its asking was answered would be counted by neither.
    triggers: Mutex<Triggers>,
}

#[derive(Default)]
struct Triggers {
    /// When each trigger was asked for, by job id, once the centre answered.
    asked: std::collections::HashMap<i64, Instant>,
    /// When a job was heard of before the answer to its asking came back.
    heard: std::collections::HashMap<i64, Instant>,
}

struct Agent {
    site: String,
    tenant: String,
    key: SecretKey,
    sequence: u64,
    previous: Option<String>,
}

async fn call(
    http: &Http,
    base: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(u16, Vec<u8>), String> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let res = http.request(req).await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

/// The timeline the centre and the agents share: it read T0 at T0 and runs 10x.
static T0: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();

fn sim_now() -> chrono::DateTime<chrono::Utc> {
    let t0 = *T0.get_or_init(chrono::Utc::now);
    let real = chrono::Utc::now() - t0;
    t0 + real * 10
}

async fn signed(
    http: &Http,
    base: &str,
    key: &SecretKey,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let headers = lifeboat::agent::request::sign(key, method, path, &body, sim_now())
        .map_err(|e| e.to_string())?;
    call(http, base, method, path, body, &headers).await
}

impl Figures {
    fn failed(&self, what: &str, got: &Result<(u16, Vec<u8>), String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let kind = match got {
            Ok((status, body)) => format!(
                "{what} {status} {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(80)
                    .collect::<String>()
            ),
            Err(e) => format!("{what}: {}", e.chars().take(80).collect::<String>()),
        };
        *self.failures.lock().unwrap().entry(kind).or_default() += 1;
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The centre's CPU seconds so far and its peak RSS in MiB.
fn centre_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

/// The catalog's size: the SQLite file and its WAL, or the PostgreSQL database (`FLEET_CATALOG`).
fn catalog_bytes(data: &std::path::Path, pg: Option<&str>) -> u64 {
    if let Some(url) = pg {
        let out = std::process::Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT pg_database_size(current_database())",
                url,
            ])
            .output()
            .expect("psql");
        return String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
    }
    // The pages in use as a reader sees them (through the log): what the catalog holds,
    // whether or not the service has checkpointed its log lately.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(data.join("catalog.sqlite"), flags)
        .and_then(|db| {
            db.query_row(
                "SELECT (p.page_count - f.freelist_count) * s.page_size
                 FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map_or(0, |b| b as u64)
}

/// The embedded catalog's write-ahead log on disk, in bytes.
fn wal_bytes(data: &std::path::Path) -> u64 {
    std::fs::metadata(data.join("catalog.sqlite-wal")).map_or(0, |m| m.len())
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test` runs benchmarks once as tests, without `--bench`: this one needs minutes
    // and a release build, so it says how to run it and passes.
    if !all.iter().any(|a| a == "--bench") {
        eprintln!("fleet: a benchmark, not a test: run benches/fleet.sh");
        return;
    }
    let args: Vec<String> = all.into_iter().filter(|a| a != "--bench").collect();
    let (Some(binary), Some(agents), Some(seconds)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("usage: cargo bench --bench fleet -- LIFEBOAT_BINARY AGENTS SECONDS");
        std::process::exit(2);
    };
    let n: usize = agents.parse().expect("AGENTS: a number");
    // The catalog in PostgreSQL (benches/fleet.sh with FLEET_ENGINE=postgres), or SQLite.
    let pg = std::env::var("FLEET_CATALOG").ok();
    let pg = pg.as_deref();
    let window = Duration::from_secs(seconds.parse().expect("SECONDS: a number"));
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let data = dir.join("data");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let service = SecretKey::generate("fleet service").unwrap();
    std::fs::write(dir.join("keys/svc.key"), service.armored().unwrap()).unwrap();
    std::fs::write(
        dir.join("keys/svc.cert"),
        service.public().armored().unwrap(),
    )
    .unwrap();

    // N tenants with a site each, 3 sources on 90/48 at each site.
    let mut text = format!(
        "[service]\ndata_dir = \"{d}/data\"\nsigning_key = \"{d}/keys/svc.key\"\nrecipients = [\"{d}/keys/svc.cert\"]\n\
         prune = \"never\"\nsite_silence = \"1h\"\n{catalog}\n[service.http]\nmax_connections = {c}\n\
         max_connections_per_address = {c}\n\n[targets.fleet]\nkind = \"local\"\n\
         path = \"{d}/repo\"\n",
        d = dir.display(),
        c = n * 3 + 200,
        catalog = pg.map(|u| format!("catalog = \"{u}\"\n")).unwrap_or_default(),
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[tenants.t{i}]\nname = \"Tenant {i}\"\n[contracts.c{i}]\ntenant = \"t{i}\"\n\
             rpo = \"1h\"\nrto = \"4h\"\n[sites.s{i}]\ntenant = \"t{i}\"\n"
        ));
        for s in 0..SOURCES {
            text.push_str(&format!(
                "[sources.t{i}-{s}]\ntenant = \"t{i}\"\ncontract = \"c{i}\"\nkind = \"files\"\n\
                 paths = [\"/srv/{i}/{s}\"]\ntier = \"90/48\"\ntargets = [\"fleet\"]\n\
                 site = \"s{i}\"\n"
            ));
        }
    }
    std::fs::write(dir.join("lifeboat.toml"), text).unwrap();
    let now = *T0.get_or_init(chrono::Utc::now);
    let mut tokens = Vec::with_capacity(n);
    {
        let mut catalog = lifeboat::catalog::Place::new(&data, pg).open().unwrap();
        for i in 0..n {
            let (row, token) = lifeboat::agent::token::new_enroll_token(
                &format!("s{i}"),
                now,
                now + chrono::Duration::days(1),
            );
            catalog.add_enroll_token(&row).unwrap();
            tokens.push(token);
        }
        let (row, admin) = lifeboat::api::auth::new_token(
            lifeboat::api::auth::Role::Admin,
            None,
            Some("fleet"),
            now,
            None,
        );
        catalog.add_token(&row).unwrap();
        tokens.push(admin);
    }
    let admin = tokens.pop().unwrap();

    eprintln!(
        "fleet: starting the centre with {n} sites ({} sources)",
        n * SOURCES
    );
    let started = Instant::now();
    let centre = std::process::Command::new(binary)
        .args(["serve", "--config"])
        .arg(dir.join("lifeboat.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env("LIFEBOAT_CLOCK_SPEED", "10")
        .env(
            "LIFEBOAT_CLOCK_START",
            T0.get_or_init(chrono::Utc::now).to_rfc3339(),
        )
        .env(
            "LIFEBOAT_CLOCK_AT",
            T0.get_or_init(chrono::Utc::now).to_rfc3339(),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lifeboat serve");
    let mut centre = Centre(centre);
    let pid = centre.0.id();
    let stderr = centre.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut up = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("on http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                up = true;
            }
            // What the centre says while it starts, and its errors after.
            if !up || line.contains("error") || line.contains("panicked") {
                eprintln!("centre: {line}");
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("the centre did not start");
    let base = format!("http://{address}");
    eprintln!(
        "fleet: centre up in {:.1} s; enrolling {n} agents",
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let figures = Arc::new(Figures::default());
    let stop = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        let http: Http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(n * 3)
            .build_http();
        // Enrollment: keys made and enrolled a few at a time.
        let mut fleet = Vec::with_capacity(n);
        let enroll_started = Instant::now();
        let mut pending = tokio::task::JoinSet::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let (http, base) = (http.clone(), base.clone());
            pending.spawn(async move {
                let key = tokio::task::spawn_blocking(|| SecretKey::generate("fleet agent"))
                    .await
                    .unwrap()
                    .unwrap();
                let body = serde_json::to_vec(&serde_json::json!({
                    "token": token,
                    "certificate": key.public().armored().unwrap(),
                }))
                .unwrap();
                let (status, answer) =
                    call(&http, &base, "POST", "/api/v1/agent/enroll", body, &[])
                        .await
                        .expect("enroll");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                Agent {
                    site: format!("s{i}"),
                    tenant: format!("t{i}"),
                    key,
                    sequence: 0,
                    previous: None,
                }
            });
            while pending.len() >= 32 {
                fleet.push(pending.join_next().await.unwrap().unwrap());
            }
        }
        while let Some(a) = pending.join_next().await {
            fleet.push(a.unwrap());
        }
        eprintln!(
            "fleet: {n} agents enrolled in {:.1} s; measuring for {} s",
            enroll_started.elapsed().as_secs_f64(),
            window.as_secs()
        );
        // FLEET_PROFILE=FILE: 30 s of the centre under `perf record -g`, from the start.
        let profile = std::env::var_os("FLEET_PROFILE").map(|out| {
            std::process::Command::new("perf")
                .args(["record", "-g", "-F", "199", "-p", &pid.to_string(), "-o"])
                .arg(out)
                .args(["--", "sleep", "30"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("perf")
        });
        let (cpu_before, _) = centre_usage(pid);
        let catalog_before = catalog_bytes(&data, pg);
        let window_started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, agent) in fleet.into_iter().enumerate() {
            let agent = Arc::new(tokio::sync::Mutex::new(agent));
            let phase = SLOT.mul_f64(i as f64 / n as f64);
            // Pushes: one record per source per slot, sources a third of a slot apart.
            {
                let (http, base, figures, stop, agent) = (
                    http.clone(),
                    base.clone(),
                    figures.clone(),
                    stop.clone(),
                    agent.clone(),
                );
                tasks.spawn(async move {
                    tokio::time::sleep(phase / SOURCES as u32).await;
                    let mut round = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let mut a = agent.lock().await;
                        a.sequence += 1;
                        let mut r = Record::new(RecordKind::Backup, &a.tenant, sim_now());
                        r.sequence = a.sequence;
                        r.previous = a.previous.clone();
                        r.source = Some(format!("{}-{}", a.tenant, round % SOURCES));
                        r.contract = Some(format!("c{}", &a.tenant[1..]));
                        r.tier = Some("90/48".into());
                        r.snapshot = Some(SnapshotRef {
                            id: sha256_hex(format!("{}{}", a.site, a.sequence).as_bytes()),
                            time: time(sim_now()),
                        });
                        r.measured.insert("bytes_added".into(), 130_000);
                        let bytes = r.canonical().unwrap();
                        let signature = crypto::sign_detached(&a.key, &bytes).unwrap();
                        let push = Push {
                            tenant: a.tenant.clone(),
                            records: vec![PushedRecord {
                                sequence: a.sequence,
                                record: String::from_utf8(bytes.clone()).unwrap(),
                                signature,
                            }],
                        };
                        let record_len = (push.records[0].record.len()
                            + push.records[0].signature.len())
                            as u64;
                        let body = serde_json::to_vec(&push).unwrap();
                        let t = Instant::now();
                        let got = signed(&http, &base, &a.key, "POST", "/api/v1/agent/evidence", body).await;
                        match got {
                            Ok((200, _)) => {
                                figures
                                    .push_ms
                                    .lock()
                                    .unwrap()
                                    .push(t.elapsed().as_secs_f64() * 1000.0);
                                figures.records.fetch_add(1, Ordering::Relaxed);
                                figures
                                    .record_bytes
                                    .fetch_add(record_len, Ordering::Relaxed);
                                a.previous = Some(sha256_hex(&bytes));
                            }
                            ref other => {
                                figures.failed("push", other);
                                a.sequence -= 1;
                            }
                        }
                        drop(a);
                        round += 1;
                        tokio::time::sleep(SLOT / SOURCES as u32).await;
                    }
                });
            }
            // Check-ins, once a minute.
            {
                let (http, base, figures, stop, agent) = (
                    http.clone(),
                    base.clone(),
                    figures.clone(),
                    stop.clone(),
                    agent.clone(),
                );
                tasks.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(60).mul_f64(i as f64 / n as f64)).await;
                    while !stop.load(Ordering::Relaxed) {
                        let key = agent.lock().await.key.clone();
                        let t = Instant::now();
                        match signed(&http, &base, &key, "GET", "/api/v1/agent/check-in?backlog=0", Vec::new()).await {
                            Ok((200, _)) => figures
                                .check_in_ms
                                .lock()
                                .unwrap()
                                .push(t.elapsed().as_secs_f64() * 1000.0),
                            other => figures.failed("check-in", &other),
                        }
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                });
            }
            // The long poll for the site's jobs.
            {
                let (http, base, figures, stop) =
                    (http.clone(), base.clone(), figures.clone(), stop.clone());
                tasks.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let key = agent.lock().await.key.clone();
                        let got = signed(&http, &base, &key, "GET", "/api/v1/agent/jobs?wait=20", Vec::new()).await;
                        let Ok((200, body)) = got else {
                            figures.failed("jobs", &got);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        };
                        let jobs: Vec<serde_json::Value> =
                            serde_json::from_slice(&body).unwrap_or_default();
                        for job in jobs {
                            let id = job["id"].as_i64().unwrap_or(0);
                            let asked = {
                                let mut t = figures.triggers.lock().unwrap();
                                let asked = t.asked.remove(&id);
                                if asked.is_none() {
                                    t.heard.insert(id, Instant::now());
                                }
                                asked
                            };
                            if let Some(at) = asked {
                                figures
                                    .trigger_ms
                                    .lock()
                                    .unwrap()
                                    .push(at.elapsed().as_secs_f64() * 1000.0);
                            }
                            for state in ["running", "done"] {
                                let body = serde_json::to_vec(&serde_json::json!({ "state": state })).unwrap();
                                let _ = signed(&http, &base, &key, "POST", &format!("/api/v1/agent/jobs/{id}"), body).await;
                            }
                        }
                    }
                });
            }
        }
        // Triggers: a backup now of a random site's source, twice a second, until 25 s
        // before the window closes (time for the last ones to be heard).
        let mut asked = 0u64;
        while window_started.elapsed() + Duration::from_secs(25) < window {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let i = rand::random::<u32>() as usize % n;
            let path = format!("/api/v1/sources/t{i}-0/backup");
            let t = Instant::now();
            let auth = format!("Bearer {admin}");
            if let Ok((202, body)) = call(&http, &base, "POST", &path, Vec::new(), &[("authorization", auth)]).await {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(id) = v["job"].as_i64() {
                    asked += 1;
                    // Heard already (the long poll answered before the asking did)?
                    let heard = {
                        let mut pending = figures.triggers.lock().unwrap();
                        let heard = pending.heard.remove(&id);
                        if heard.is_none() {
                            pending.asked.insert(id, t);
                        }
                        heard
                    };
                    if let Some(at) = heard {
                        figures
                            .trigger_ms
                            .lock()
                            .unwrap()
                            .push((at - t).as_secs_f64() * 1000.0);
                    }
                }
            }
        }
        while window_started.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let (cpu_after, rss) = centre_usage(pid);
        let catalog_after = catalog_bytes(&data, pg);
        let elapsed = window_started.elapsed().as_secs_f64();
        let records = figures.records.load(Ordering::Relaxed);
        let mut push = figures.push_ms.lock().unwrap().clone();
        let mut check = figures.check_in_ms.lock().unwrap().clone();
        let mut trig = figures.trigger_ms.lock().unwrap().clone();
        println!("agents: {n} ({} sources, 90/48 at a 10x clock)", n * SOURCES);
        println!(
            "window: {elapsed:.0} s; records pushed: {records} ({:.1}/s); check-ins: {}; triggers asked: {asked}, delivered: {}; errors: {}",
            records as f64 / elapsed,
            check.len(),
            trig.len(),
            figures.errors.load(Ordering::Relaxed)
        );
        println!(
            "push latency ms: p50 {:.1}, p99 {:.1}; check-in: p50 {:.1}, p99 {:.1}; trigger delivery: p50 {:.1}, p99 {:.1}",
            percentile(&mut push, 0.5),
            percentile(&mut push, 0.99),
            percentile(&mut check, 0.5),
            percentile(&mut check, 0.99),
            percentile(&mut trig, 0.5),
            percentile(&mut trig, 0.99)
        );
        println!(
            "centre: CPU {:.1} s in the window ({:.0}% of one core), peak RSS {rss:.0} MiB",
            cpu_after - cpu_before,
            (cpu_after - cpu_before) / elapsed * 100.0
        );
        let grown = catalog_after.saturating_sub(catalog_before) as f64;
        let per = |v: f64| if records > 0 { v / records as f64 * 10_000.0 / 1e6 } else { f64::NAN };
        println!(
            "catalog ({}): {:.1} MB, grew {:.2} MB, {:.2} MB per 10,000 records \
             (the records and signatures themselves: {:.2} MB per 10,000)",
            if pg.is_some() {
                "PostgreSQL database".to_string()
            } else {
                format!("SQLite, pages in use; its log on disk now {:.1} MB", wal_bytes(&data) as f64 / 1e6)
            },
            catalog_after as f64 / 1e6,
            grown / 1e6,
            per(grown),
            per(figures.record_bytes.load(Ordering::Relaxed) as f64)
        );
        // The triggers no poll answered with in the window: how the centre has them now.
        let unheard: Vec<i64> = figures.triggers.lock().unwrap().asked.keys().copied().collect();
        if !unheard.is_empty() {
            let mut states = std::collections::BTreeMap::<String, usize>::new();
            for id in &unheard {
                let auth = format!("Bearer {admin}");
                let state = match call(&http, &base, "GET", &format!("/api/v1/jobs/{id}"), Vec::new(), &[("authorization", auth)]).await {
                    Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["state"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "unreadable".into()),
                    other => format!("{other:?}"),
                };
                *states.entry(state).or_default() += 1;
            }
            println!("triggers not heard in the window: {} (at the centre now: {states:?})", unheard.len());
        }
        for (kind, count) in figures.failures.lock().unwrap().iter() {
            println!("failed {count}x: {kind}");
        }
        tasks.abort_all();
        if let Some(mut p) = profile {
            let _ = p.wait();
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(centre);
}

/// The centre's process, killed however the benchmark ends.
struct Centre(std::process::Child);

impl Drop for Centre {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
