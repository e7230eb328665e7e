//! S3 only: multipart uploads, faults on the way (a proxy injecting 503s, resets, cut-off
//! responses and delays; the server stopped in the middle of a backup), and clear errors for
//! wrong credentials and a missing bucket. Each test runs its own s3s-fs on 127.0.0.1.

mod common;
use common::proxy::Proxy;
use common::*;
use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

fn source(ws: &Workspace, files: u64, mib: usize) -> std::path::PathBuf {
    let src = ws.path("src");
    fs::create_dir_all(src.join("small")).unwrap();
    for i in 0..files {
        random_file(&src.join(format!("big{i:02}")), mib << 20, 100 + i);
    }
    for i in 0..50 {
        fs::write(
            src.join("small").join(format!("f{i}")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    src
}

fn spawn_backup(ws: &Workspace, src: &Path, env: &[(&str, String)]) -> Child {
    let mut c = ws.lifeboat(&["backup", "--quiet", "--json", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .arg(src);
    for (k, v) in env {
        c.env(k, v);
    }
    c.0.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Packs the backup has recorded as stored: the server answered for each, so the next backup
/// reuses them. (A pack on the server's disk may still wait for its answer when the server
/// stops; the backup does not know of it and rightly sends it again.)
fn recorded_packs(ws: &Workspace) -> usize {
    if let Some(url) = &ws.catalog {
        // Nothing yet until the backup has set the catalog up.
        let out = std::process::Command::new("psql")
            .args(["-X", "-tA", "-c", "SELECT count(*) FROM packs"])
            .arg(url)
            .output()
            .expect("psql");
        return String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
    }
    let path = ws.path("data/catalog.sqlite");
    if !path.exists() {
        return 0;
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(db) = rusqlite::Connection::open_with_flags(&path, flags) else {
        return 0;
    };
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    // The table appears once the catalog is set up.
    db.query_row("SELECT count(*) FROM packs", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as usize)
}

/// Waits (polling the catalog) until the backup has recorded at least `n` packs as stored.
fn wait_for_packs(ws: &Workspace, child: &mut Child, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while recorded_packs(ws) < n {
        assert!(Instant::now() < deadline, "no packs were recorded");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before the server could be stopped; use more data"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn restore_and_compare(ws: &Workspace, src: &Path, env: &[(&str, String)]) {
    let out = ws.path("out");
    let mut c = ws.lifeboat(&["restore", "--repo"]);
    c.arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--target"])
        .arg(&out);
    for (k, v) in env {
        c.env(k, v);
    }
    c.ok();
    let diffs = diff_trees(src, &out.join(src.strip_prefix("/").unwrap()));
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn faults_on_the_way_are_retried_and_nothing_is_damaged() {
    let ws = Workspace::with(Store::S3);
    let src = source(&ws, 3, 12);
    let proxy = Proxy::start(ws.server.as_ref().unwrap().port, 3, 0);
    let env = [
        ("LIFEBOAT_S3_ENDPOINT", proxy.endpoint()),
        ("LIFEBOAT_S3_PART_SIZE", "5".to_string()),
        ("LIFEBOAT_S3_RETRY_FOR", "60".to_string()),
    ];
    let run = finish(spawn_backup(&ws, &src, &env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    restore_and_compare(&ws, &src, &env);
    let mut check = ws.lifeboat(&["check", "--read-data", "--repo"]);
    check.arg(ws.repo()).arg("--key").arg(ws.key());
    for (k, v) in &env {
        check.env(k, v);
    }
    check.ok();

    // The faults really happened, and packs went up in parts.
    assert!(proxy.count(|c| &c.slow_downs) > 0, "no 503 was injected");
    assert!(proxy.count(|c| &c.resets) > 0, "no reset was injected");
    assert!(proxy.count(|c| &c.cut_responses) > 0, "no response was cut");
    assert!(proxy.count(|c| &c.delays) > 0, "no delay was injected");
    assert!(
        proxy.requests_matching("partNumber=") >= 6,
        "packs were not uploaded in parts"
    );
    // Without the proxy, the repository is whole too.
    ws.check(true).ok();
}

#[test]
fn a_lost_answer_to_a_completed_upload_is_not_a_failure() {
    let ws = Workspace::with(Store::S3);
    let src = source(&ws, 1, 12);
    let proxy = Proxy::start(ws.server.as_ref().unwrap().port, 0, 0);
    // The server completes the multipart upload; the client never hears so, and retries.
    proxy.cut_answer_once("POST /lifeboat-test/repo/data/", "uploadId=");
    proxy.cut_answer_once("PUT /lifeboat-test/repo/snapshots/", "");
    let env = [
        ("LIFEBOAT_S3_ENDPOINT", proxy.endpoint()),
        ("LIFEBOAT_S3_PART_SIZE", "5".to_string()),
    ];
    let run = finish(spawn_backup(&ws, &src, &env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(proxy.count(|c| &c.cut_responses), 2);
    assert!(proxy.requests_matching("uploadId=") >= 3);
    ws.check(true).ok();
    restore_and_compare(&ws, &src, &[]);
}

#[test]
fn an_upload_damaged_on_the_way_is_refused_by_the_server_and_sent_again() {
    let ws = Workspace::with(Store::S3);
    let src = source(&ws, 2, 12);
    let proxy = Proxy::start(ws.server.as_ref().unwrap().port, 0, 0);
    // One part of a multipart upload and one whole-object upload (the small tree pack) arrive
    // with a flipped byte.
    proxy.corrupt_body_once("PUT /lifeboat-test/repo/data/", "x-id=PutObject");
    proxy.corrupt_body_once("PUT /lifeboat-test/repo/data/", "partNumber=");
    let env = [
        ("LIFEBOAT_S3_ENDPOINT", proxy.endpoint()),
        ("LIFEBOAT_S3_PART_SIZE", "5".to_string()),
    ];
    let run = finish(spawn_backup(&ws, &src, &env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(proxy.count(|c| &c.corrupted), 2, "{:#?}", proxy.log);
    // Every upload carried its SHA-256.
    let log = proxy.log.lock().unwrap().clone();
    let uploads: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("PUT /lifeboat-test/repo/"))
        .collect();
    assert!(uploads.len() >= 6, "{log:#?}");
    for line in uploads {
        assert!(line.ends_with("[x-amz-checksum-sha256]"), "{line}");
    }
    // The server verified the checksums: nothing damaged was stored.
    ws.check(true).ok();
    restore_and_compare(&ws, &src, &[]);
}

#[test]
fn server_stopped_mid_backup_fails_clearly_and_the_next_backup_reuses() {
    let mut ws = Workspace::with(Store::S3);
    let src = source(&ws, 12, 16);
    let mut child = spawn_backup(&ws, &src, &[("LIFEBOAT_S3_RETRY_FOR", "3".into())]);
    wait_for_packs(&ws, &mut child, 2);
    ws.server().stop();
    let run = finish(child);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("gave up after") && run.stderr.contains("cannot reach the S3 endpoint"),
        "{}",
        run.stderr
    );
    assert!(ws.objects("snapshots").is_empty());
    let stored = recorded_packs(&ws);
    assert!(stored >= 2 && ws.objects("data").len() >= stored);

    ws.server().restart();
    let check = ws.check(false).ok();
    assert!(check.stderr.contains("no problems"), "{}", check.stderr);
    let result = ws.backup(&[&src]);
    let total = 12u64 * (16 << 20);
    let added = result["bytes_added"].as_u64().unwrap();
    assert!(
        added < total - (stored as u64 - 1) * (15 << 20),
        "the second backup re-sent packs that were stored: added {added} of {total}"
    );
    ws.check(true).ok();
    restore_and_compare(&ws, &src, &[]);
}

#[test]
fn server_back_in_time_lets_the_backup_finish() {
    let mut ws = Workspace::with(Store::S3);
    let src = source(&ws, 8, 16);
    let proxy = Proxy::start(ws.server.as_ref().unwrap().port, 0, 0);
    let env = [("LIFEBOAT_S3_ENDPOINT", proxy.endpoint())];
    let mut child = spawn_backup(&ws, &src, &env);
    wait_for_packs(&ws, &mut child, 2);
    ws.server().stop();
    // The outage is over once requests have failed against it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.count(|c| &c.upstream_failures) < 3 {
        assert!(Instant::now() < deadline, "no request met the outage");
        std::thread::sleep(Duration::from_millis(10));
    }
    ws.server().restart();
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    ws.check(true).ok();
    restore_and_compare(&ws, &src, &[]);
}

#[test]
fn wrong_credentials_and_missing_bucket_are_named() {
    let ws = Workspace::with(Store::S3);
    let run = ws
        .lifeboat(&["snapshots", "--repo"])
        .arg(ws.repo())
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("'lifeboat-test'") && run.stderr.contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        run.stderr
    );
    let run = ws
        .lifeboat(&["snapshots", "--repo"])
        .arg(ws.repo())
        .env("AWS_ACCESS_KEY_ID", "nobody")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", run.stderr);

    for cmd in ["snapshots", "init"] {
        let mut c = if cmd == "init" {
            ws.init_at("s3://no-such-bucket/repo")
        } else {
            let mut c = ws.lifeboat(&["snapshots", "--repo"]);
            c.arg("s3://no-such-bucket/repo");
            c
        };
        let run = c.run();
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("bucket 'no-such-bucket' does not exist"),
            "{}",
            run.stderr
        );
    }
    // A prefix without a repository.
    let run = ws
        .lifeboat(&["snapshots", "--repo"])
        .arg("s3://lifeboat-test/elsewhere")
        .run();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is not a Lifeboat repository"),
        "{}",
        run.stderr
    );
    // Not an address at all.
    let run = ws.lifeboat(&["snapshots", "--repo"]).arg("s3://x").run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a valid bucket name"),
        "{}",
        run.stderr
    );
}
