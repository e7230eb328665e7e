//! `lifeboat serve` with an injected clock (600 times faster: a 30-minute slot every 3 s; the
//! clock stands at its start until the daemon first reads it, so slow start-ups shift nothing):
//! scheduled backups happen and are tagged, SIGTERM stops it cleanly, a second daemon on the
//! same data directory is refused, and a daemon killed mid-job runs the job again on restart.
//! Synchronisation is by the daemon's own log lines, never by sleeping.

mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn config(ws: &Workspace) -> std::path::PathBuf {
    write_config(ws, "", "")
}

/// The test configuration, with `extra_source` lines added to the erp source and `extra`
/// sections at the end.
fn write_config(ws: &Workspace, extra_source: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[service]
time_zone = "Europe/Berlin"
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
workers = 2
jitter = "0s"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME"

[contracts.erp]
tenant = "acme"
rpo = "1h"
rto = "4h"

[sources.erp-files]
tenant = "acme"
contract = "erp"
kind = "files"
paths = ["{src}"]
tier = "90/48"
targets = ["nas"]
{extra_source}

# A source whose folder is gone: it fails every slot, visibly, and blocks nothing.
[sources.lost-share]
tenant = "acme"
contract = "erp"
kind = "files"
paths = ["{src}-gone"]
tier = "90/48"
targets = ["nas"]

{extra}
"#,
        keys = ws.path("keys").display(),
        repo = ws.path("repo").display(),
        src = ws.path("src").display(),
    );
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(ws: &Workspace, cfg: &std::path::Path, clock_start: &str) -> Daemon {
        Self::start_at_speed(ws, cfg, clock_start, 600)
    }

    fn start_at_speed(
        ws: &Workspace,
        cfg: &std::path::Path,
        clock_start: &str,
        speed: u32,
    ) -> Daemon {
        let mut c = ws.lifeboat(&["serve", "--listen", "127.0.0.1:0", "--config"]);
        c.arg(cfg)
            .env("LIFEBOAT_CLOCK_START", clock_start)
            .env("LIFEBOAT_CLOCK_SPEED", speed.to_string());
        let mut child =
            c.0.stderr(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Daemon {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for the `n`-th log line containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found: Vec<&String> = self.seen.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no {n}× '{needle}' in the daemon's log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next log line (waits for it, up to two minutes).
    fn next(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(_) => panic!("the daemon went quiet:\n{}", self.seen.join("\n")),
        }
    }

    fn signal(&self, sig: libc::c_int) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    fn wait(&mut self) -> i32 {
        let status = self.child.wait().unwrap();
        // Drain what is left of the log.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn scheduled_backups_run_and_sigterm_stops_cleanly() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    fs::write(ws.path("src/orders.csv"), "1,widget\n").unwrap();
    // A first start that crashed while creating the target left its folders but no config.
    lifeboat::backend::LocalBackend::create(&ws.objects_root()).unwrap();
    let cfg = config(&ws);
    let mut daemon = Daemon::start(&ws, &cfg, "2026-11-23T09:58:00Z");
    daemon.wait_for("done: nas: snapshot", 3);
    daemon.wait_for("failed:", 3);

    // One daemon per data directory.
    let second = ws.lifeboat(&["serve", "--config"]).arg(&cfg).run();
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("another lifeboat daemon is running"),
        "{}",
        second.stderr
    );

    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0, "{}", daemon.seen.join("\n"));
    let log = daemon.seen.join("\n");
    assert!(log.contains("stopped"), "{log}");
    // The first slot after 10:58 CET is 11:00 CET (10:00 UTC), then every 30 minutes.
    assert!(
        log.contains(": erp-files slot 2026-11-23 10:00:00 UTC"),
        "{log}"
    );
    assert!(
        log.contains(": erp-files slot 2026-11-23 10:30:00 UTC"),
        "{log}"
    );
    assert!(
        log.contains("-gone"),
        "the failure names the missing folder: {log}"
    );

    // Every run is recorded: source, tier, slot, result, bytes, error.
    let runs = ws.lifeboat(&["runs", "--json"]).ok().json();
    let runs = runs.as_array().unwrap();
    let good: Vec<_> = runs.iter().filter(|r| r["source"] == "erp-files").collect();
    let bad: Vec<_> = runs
        .iter()
        .filter(|r| r["source"] == "lost-share")
        .collect();
    assert!(good.len() >= 3 && bad.len() >= 3, "{runs:#?}");
    assert!(good
        .iter()
        .all(|r| r["result"] == "success" && r["tier"] == "90/48"));
    assert_eq!(good[0]["scheduled"], "2026-11-23T10:00:00+00:00");
    assert!(good[0]["bytes_read"].as_u64().unwrap() > 0);
    assert!(bad
        .iter()
        .all(|r| r["result"] == "failure" && r["error"].as_str().unwrap().contains("-gone")));

    let list = ws.snapshots_json();
    let snaps = list.as_array().unwrap();
    assert!(snaps.len() >= 3, "{list}");
    assert!(
        snaps.iter().all(|s| s["tags"]["source"] == "erp-files"),
        "{list}"
    );
    assert_eq!(snaps[0]["tags"]["tier"], "90/48");
    assert!(snaps[0]["retain_until"].is_string(), "{list}");
    // Snapshots carry the daemon's (injected) time: the first is from the 10:00 UTC slot.
    let first = snaps
        .iter()
        .map(|s| s["time"].as_str().unwrap())
        .min()
        .unwrap();
    assert!(first.starts_with("2026-11-23T10:0"), "{list}");
    ws.check(true).ok();

    // Every run, good or bad, is evidence in the tenant's chain, copied into the repository.
    let evidence = ws.lifeboat(&["evidence", "list", "--json"]).ok().json();
    let records: Vec<&serde_json::Value> = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["record"])
        .collect();
    assert_eq!(records.len(), good.len() + bad.len(), "{evidence:#}");
    assert!(records.iter().all(|r| r["tenant"] == "acme"
        && r["kind"] == "backup"
        && r["contract"] == "erp"
        && r["objectives"]["rpo_ms"] == 3_600_000));
    let ok = records.iter().find(|r| r["source"] == "erp-files").unwrap();
    assert_eq!(ok["outcome"], "success");
    assert_eq!(ok["snapshot"]["id"].as_str().unwrap().len(), 64);
    let failed = records
        .iter()
        .find(|r| r["source"] == "lost-share")
        .unwrap();
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["incident"]["severity"], "high");
    let in_repo = fs::read_dir(ws.objects_root().join("evidence"))
        .unwrap()
        .count();
    assert_eq!(in_repo, records.len());
    let out = ws.path("evidence");
    ws.lifeboat(&["evidence", "export", "--out"]).arg(&out).ok();
    ws.lifeboat(&["evidence", "verify"])
        .arg(&out)
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .ok();

    // A catalog rebuilt from the repository has the same chain.
    let fresh = ws.path("data-rebuilt");
    ws.lifeboat(&["catalog", "rebuild", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .arg("--signer")
        .arg(ws.path("keys/svc.cert"))
        .env("LIFEBOAT_DATA_DIR", &fresh)
        .ok();
    let rebuilt = ws
        .lifeboat(&["evidence", "list", "--json"])
        .env("LIFEBOAT_DATA_DIR", &fresh)
        .ok()
        .json();
    assert_eq!(rebuilt, evidence);
}

#[test]
fn a_job_cut_off_by_a_kill_runs_again_after_restart() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    // Enough data that the first backup is still running when the daemon is killed.
    for i in 0..6 {
        random_file(&ws.path(&format!("src/part{i}")), 32 << 20, i);
    }
    let cfg = config(&ws);
    // The daemon's clock stands at 09:59:30 until it plans, so the first slot is 10:00
    // however slow the start; at 60x a stall of 30 s would still not skip past it.
    let mut daemon = Daemon::start_at_speed(&ws, &cfg, "2026-11-23T09:59:30Z", 60);
    daemon.wait_for("job 1 started", 1);
    daemon.signal(libc::SIGKILL);
    daemon.wait();
    assert!(
        !daemon.seen.iter().any(|l| l.contains("job 1 done")),
        "the job ended before the kill"
    );

    let mut again = Daemon::start_at_speed(&ws, &cfg, "2026-11-23T10:01:00Z", 60);
    let cut = again.wait_for("was cut off by a stop", 1);
    assert!(
        cut.contains("job 1 (erp-files slot 2026-11-23 10:00:00 UTC)"),
        "{cut}"
    );
    again.wait_for("job 1 done", 1);
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait(), 0);
    ws.check(true).ok();
}

/// The evidence of erp-files' successful backups in the workspace's catalog.
fn erp_backups(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.catalog()
        .evidence(Some("acme"))
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice::<serde_json::Value>(&e.record).unwrap())
        .filter(|r| r["source"] == "erp-files" && r["outcome"] == "success")
        .collect()
}

#[test]
fn a_job_cut_off_after_its_first_target_backs_up_only_the_rest_after_restart() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    // Enough data that the second target's backup is still running at the kill.
    for i in 0..6 {
        random_file(&ws.path(&format!("src/part{i}")), 32 << 20, i);
    }
    let far = ws.path("far");
    let cfg = write_config(
        &ws,
        "",
        &format!(
            "[targets.far]\nkind = \"local\"\npath = \"{}\"\n",
            far.display()
        ),
    );
    let text = fs::read_to_string(&cfg).unwrap().replacen(
        "targets = [\"nas\"]",
        "targets = [\"nas\", \"far\"]",
        1,
    );
    fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start_at_speed(&ws, &cfg, "2026-11-23T09:59:30Z", 60);
    daemon.wait_for("job 1 started", 1);
    // Killed once the first target has its snapshot and evidence, in the second's backup.
    let deadline = Instant::now() + Duration::from_secs(120);
    while erp_backups(&ws).is_empty() {
        assert!(Instant::now() < deadline, "no backup of erp-files to nas");
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.signal(libc::SIGKILL);
    daemon.wait();
    let first = erp_backups(&ws);
    assert_eq!(
        first.len(),
        1,
        "the second target finished before the kill: {first:?}"
    );
    assert!(
        !daemon.seen.iter().any(|l| l.contains("job 1 done")),
        "the job ended before the kill"
    );

    // On the service's clock, no other slot comes while it finishes the job.
    let mut again = Daemon::start_at_speed(&ws, &cfg, "2026-11-23T10:01:00Z", 1);
    again.wait_for("was cut off by a stop", 1);
    let done = again.wait_for("job 1 done", 1);
    assert!(
        done.contains("nas: snapshot") && done.contains("taken by an earlier attempt"),
        "{done}"
    );
    assert!(done.contains("far: snapshot"), "{done}");
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait(), 0);

    // One snapshot of the slot on each target, each with its evidence once.
    let all = erp_backups(&ws);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0]["slot"], all[1]["slot"]);
    for (target, repo) in [("nas", ws.path("repo/acme")), ("far", far.join("acme"))] {
        let list = ws
            .lifeboat(&["snapshots", "--json", "--repo"])
            .arg(&repo)
            .ok()
            .json();
        let erp = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["tags"]["source"] == "erp-files")
            .count();
        assert_eq!(erp, 1, "{target}: {list}");
    }
    ws.check(true).ok();
}

#[test]
fn the_daily_copy_goes_to_the_second_site() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    random_file(&ws.path("src/ledger.db"), 3 << 20, 7);
    let dr = ws.path("dr");
    let cfg = write_config(
        &ws,
        "copy_to = \"dr\"",
        &format!(
            "[targets.dr]\nkind = \"local\"\npath = \"{}\"\n",
            dr.display()
        ),
    );
    // 02:20 in Berlin: backups every 30 minutes, the copy at 02:30.
    let mut daemon = Daemon::start(&ws, &cfg, "2026-11-23T01:20:00Z");
    let copied = daemon.wait_for("copied snapshot", 1);
    assert!(copied.contains("from 'nas' to 'dr'"), "{copied}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0);

    let dr = dr.join("acme").display().to_string();
    let list = ws
        .lifeboat(&["snapshots", "--json", "--repo", &dr])
        .ok()
        .json();
    let snaps = list.as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{list}");
    assert_eq!(snaps[0]["tags"]["source"], "erp-files");
    let check = ws
        .lifeboat(&["check", "--read-data", "--repo", &dr, "--key"])
        .arg(ws.key())
        .ok();
    assert!(check.stderr.contains("no problems"), "{}", check.stderr);
    let out = ws.path("out");
    ws.lifeboat(&["restore", "--repo", &dr, "latest", "--target"])
        .arg(&out)
        .arg("--key")
        .arg(ws.key())
        .ok();
    let src = ws.path("src");
    assert_eq!(
        fs::read(out.join(src.strip_prefix("/").unwrap()).join("ledger.db")).unwrap(),
        fs::read(src.join("ledger.db")).unwrap()
    );
}

#[test]
fn scheduled_backups_reach_an_s3_target() {
    let ws = Workspace::for_tenant(Store::S3, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    random_file(&ws.path("src/ledger.db"), 2 << 20, 11);
    let cfg = config(&ws);
    let local_target = format!("kind = \"local\"\npath = \"{}\"", ws.path("repo").display());
    let s3_target = format!(
        "kind = \"s3\"\nurl = \"{}\"\nendpoint = \"{}\"\npath_style = true",
        ws.target_root(),
        ws.server.as_ref().unwrap().endpoint()
    );
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains(&local_target));
    fs::write(&cfg, text.replace(&local_target, &s3_target)).unwrap();

    let mut daemon = Daemon::start(&ws, &cfg, "2026-11-23T09:59:00Z");
    daemon.wait_for("done: nas: snapshot", 2);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0, "{}", daemon.seen.join("\n"));
    let list = ws.snapshots_json();
    assert!(list.as_array().unwrap().len() >= 2, "{list}");
    ws.check(true).ok();
}

#[test]
fn retention_forgets_and_scheduled_prune_frees_space() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("src")).unwrap();
    let ledger = ws.path("src/ledger.db");
    random_file(&ledger, 256 << 10, 0);
    let cfg = config(&ws);
    // Hourly backups kept one day, and a prune at a quarter past every hour.
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replacen("tier = \"90/48\"", "tier = \"1/24\"", 1)
        .replace(
            "jitter = \"0s\"",
            "jitter = \"0s\"\nprune = \"0 15 * * * *\"",
        );
    fs::write(&cfg, text).unwrap();

    // 6000 times faster: an hour every 0.6 s, a day every 14.4 s.
    let mut daemon = Daemon::start_at_speed(&ws, &cfg, "2026-11-23T00:00:00Z", 6000);
    let (mut backups, mut forgot, mut freed) = (0u64, false, false);
    let mut lines = 0;
    while !(forgot && freed) {
        lines += 1;
        assert!(
            lines < 20_000,
            "no forget and prune that freed space:\n{}",
            daemon.seen.join("\n")
        );
        let line = daemon.next();
        if line.contains("done: nas: snapshot") {
            // Each backup sees new data, so a forgotten snapshot leaves packs behind.
            backups += 1;
            random_file(&ledger, 256 << 10, backups);
            forgot |= !line.contains(", 0 forgotten by retention");
        }
        // A prune runs each tenant's repository on the target.
        if line.contains("done: acme: deleted") && !line.contains("acme: deleted 0 pack(s)") {
            freed = true;
        }
    }
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0, "{}", daemon.seen.join("\n"));

    let runs = ws.lifeboat(&["runs", "--json"]).ok().json();
    let runs = runs.as_array().unwrap();
    let forgets: Vec<_> = runs.iter().filter(|r| r["kind"] == "forget").collect();
    assert!(!forgets.is_empty(), "{runs:#?}");
    assert!(forgets.iter().all(|r| r["source"] == "erp-files"
        && r["tier"] == "1/24"
        && r["summary"].as_str().unwrap().starts_with("forgot ")));
    let prunes: Vec<_> = runs
        .iter()
        .filter(|r| r["kind"] == "prune" && r["result"] == "success")
        .collect();
    assert!(
        prunes
            .iter()
            .any(|r| r["bytes_freed"].as_u64().unwrap() > 0),
        "{runs:#?}"
    );
    assert!(prunes.iter().all(|r| r["source"] == "nas>prune"));

    // What is left is the last day's snapshots, and the repository is whole.
    let list = ws.snapshots_json();
    let times: Vec<chrono::DateTime<chrono::Utc>> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap().parse().unwrap())
        .collect();
    let newest = *times.iter().max().unwrap();
    let oldest = *times.iter().min().unwrap();
    assert!(
        newest - oldest <= chrono::Duration::hours(26),
        "kept {oldest} to {newest}"
    );
    ws.check(true).ok();
}

#[test]
fn configured_database_sources_are_backed_up_on_schedule() {
    use common::mariadb::MariaServer;
    use common::postgres::{PgServer, SUPERUSER_PASSWORD};
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE erp;");
    pg.psql(
        "erp",
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 500);",
    );
    let maria = MariaServer::start();
    maria.sql(None, "CREATE DATABASE shop;");
    maria.sql(
        Some("shop"),
        "CREATE TABLE items (id INT PRIMARY KEY); INSERT INTO items SELECT seq FROM seq_1_to_500;",
    );
    fs::create_dir_all(ws.path("till")).unwrap();
    let till = ws.path("till/till.db");
    let db = rusqlite::Connection::open(&till).unwrap();
    db.execute_batch("PRAGMA journal_mode = wal; CREATE TABLE sales (id INTEGER PRIMARY KEY); INSERT INTO sales VALUES (1), (2), (3);")
        .unwrap();
    let sources = format!(
        r#"
[sources.erp-db]
tenant = "acme"
contract = "erp"
kind = "postgres"
database = "{pg}"
passfile = "{pgpass}"
tier = "90/48"
targets = ["nas"]

[sources.shop-db]
tenant = "acme"
contract = "erp"
kind = "mariadb"
database = "{maria}"
passfile = "{options}"
tier = "90/48"
targets = ["nas"]

[sources.till]
tenant = "acme"
contract = "erp"
kind = "sqlite"
database = "{till}"
tier = "90/48"
targets = ["nas"]
"#,
        pg = pg.address("erp"),
        pgpass = pg.passfile(SUPERUSER_PASSWORD).display(),
        maria = maria.address("shop"),
        options = maria.option_file(common::mariadb::ROOT_PASSWORD).display(),
        till = till.display(),
    );
    fs::create_dir_all(ws.path("src")).unwrap();
    let cfg = write_config(&ws, "", &sources);
    let mut daemon = Daemon::start(&ws, &cfg, "2026-11-23T09:58:00Z");
    // Job ids to sources, from "job N started: SOURCE slot …"; wait until each database
    // source has a job done, and fail at once if one fails.
    let mut started = std::collections::HashMap::new();
    let mut done = std::collections::BTreeSet::new();
    while done.len() < 3 {
        let line = daemon.next();
        let job = |word: &str| {
            let rest = line.split_once("job ")?.1;
            let (id, rest) = rest.split_once(' ')?;
            rest.strip_prefix(word)
                .map(|r| (id.to_string(), r.to_string()))
        };
        if let Some((id, rest)) = job("started: ") {
            started.insert(id, rest.split(' ').next().unwrap_or_default().to_string());
        } else if let Some((id, _)) = job("done: ") {
            done.insert(started[&id].clone());
            done.retain(|s| s != "erp-files");
        } else if let Some((id, e)) = job("failed: ") {
            assert!(
                !["erp-db", "shop-db", "till"].contains(&started[&id].as_str()),
                "{} failed: {e}",
                started[&id]
            );
        }
    }
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0, "{}", daemon.seen.join("\n"));

    let list = ws.snapshots_json();
    for (source, kind, file) in [
        ("erp-db", "postgres", "erp.dump"),
        ("shop-db", "mysql", "shop.sql"),
        ("till", "sqlite", "till.db"),
    ] {
        let snap = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["tags"]["source"] == source)
            .unwrap_or_else(|| panic!("no snapshot of {source}: {list}"));
        assert_eq!(snap["details"]["kind"], kind, "{snap}");
        assert_eq!(snap["tags"]["tier"], "90/48");
        let id = snap["id"].as_str().unwrap();
        let ls = ws
            .lifeboat(&["ls", "--repo"])
            .arg(ws.repo())
            .arg("--key")
            .arg(ws.key())
            .arg(id)
            .ok();
        assert!(ls.stdout.contains(file), "{source}: {}", ls.stdout);
    }
    ws.check(true).ok();
}

#[test]
fn drills_run_on_their_schedule_and_when_requested() {
    let ws = Workspace::empty_for_tenant(Store::Local, "acme");
    fs::create_dir_all(ws.path("till")).unwrap();
    let till = ws.path("till/till.db");
    let db = rusqlite::Connection::open(&till).unwrap();
    db.execute_batch(
        "CREATE TABLE sales (id INTEGER PRIMARY KEY); INSERT INTO sales VALUES (1), (2), (3);",
    )
    .unwrap();
    fs::write(
        ws.path("till.toml"),
        "source = \"till\"\nschedule = \"0 15 * * * *\"\n\n[environment]\nkind = \"sqlite\"\n\n\
         [[checks]]\nname = \"sales\"\nsql = \"SELECT COUNT(*) FROM sales\"\nexpect = \"= 3\"\n",
    )
    .unwrap();
    let sources = format!(
        "[sources.till]\ntenant = \"acme\"\ncontract = \"erp\"\nkind = \"sqlite\"\n\
         database = \"{}\"\ntier = \"90/48\"\ntargets = [\"nas\"]\n",
        till.display()
    );
    fs::create_dir_all(ws.path("src")).unwrap();
    let cfg = write_config(&ws, "", &sources);
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "jitter = \"0s\"",
            &format!(
                "jitter = \"0s\"\ndrill_key = \"{}\"\ndrills = [\"till.toml\"]",
                ws.path("keys/rec.key").display()
            ),
        )
        .replace("rto = \"4h\"", "rto = \"4h\"\ntest_restores_per_year = 10");
    fs::write(&cfg, text).unwrap();

    // A customer asks for a drill at 11:40 UTC; the schedule runs one at a quarter past each hour.
    let requested = ws
        .lifeboat(&[
            "drill",
            "request",
            "--at",
            "2026-11-23T11:40:00Z",
            "--config",
        ])
        .arg(&cfg)
        .arg(ws.path("till.toml"))
        .env("LIFEBOAT_NOW", "2026-11-23T09:58:00Z")
        .ok();
    let requested_id: u64 = requested.stdout.trim().parse().unwrap();
    let mut daemon = Daemon::start(&ws, &cfg, "2026-11-23T09:58:00Z");
    daemon.wait_for("done: drill till (requested) passed", 1);
    daemon.wait_for("done: drill till (scheduled) passed", 2);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(), 0, "{}", daemon.seen.join("\n"));

    let listed = ws
        .lifeboat(&["drill", "list", "--json", "--config"])
        .arg(&cfg)
        .env("LIFEBOAT_NOW", "2026-11-23T12:00:00Z")
        .ok()
        .json();
    let drills = listed["drills"].as_array().unwrap();
    let request = drills
        .iter()
        .find(|d| d["id"].as_u64() == Some(requested_id))
        .unwrap();
    assert_eq!(request["state"], "done");
    assert_eq!(request["outcome"], "success");
    let scheduled: Vec<_> = drills
        .iter()
        .filter(|d| d["reason"] == "scheduled" && d["state"] == "done")
        .collect();
    assert!(scheduled.len() >= 2, "{listed:#}");
    assert!(scheduled
        .iter()
        .all(|d| d["planned_for"].as_str().unwrap().contains(":15:00")));
    // Each drill is evidence in the tenant's chain, pointing at its catalog entry's number.
    let evidence = ws.lifeboat(&["evidence", "list", "--json"]).ok().json();
    let drill_records = evidence
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record"]["kind"] == "drill")
        .count();
    assert!(drill_records >= 3, "{evidence:#}");
    assert_eq!(
        request["evidence"].as_u64().map(|n| n > 0),
        Some(true),
        "{request}"
    );
}
