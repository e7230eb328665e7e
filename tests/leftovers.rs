//! After a crash nothing waits and nothing lingers: the sessions, temporary files and
//! multipart uploads of writers killed on this machine are recognised as ended (by PID and
//! start time) and cleared by the next writer, whatever waits says so in every output mode,
//! and a kill -9 campaign through backup, prune, copy, repair index and forget leaves a
//! repository that checks clean, restores every committed snapshot and prunes at once.

mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Starts a `lifeboat` command in the background (stderr piped, output discarded).
fn spawn(cmd: Cmd) -> Child {
    let mut c = cmd.0;
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c.spawn().expect("spawn lifeboat")
}

/// Waits (at most two minutes) until `ready` holds, then kills `child` hard; returns whether
/// it was still running when killed.
fn kill_when(child: &mut Child, ready: &dyn Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if ready() {
            break;
        }
        assert!(Instant::now() < deadline, "never got to the kill point");
        std::thread::sleep(Duration::from_millis(2));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn backup_cmd(ws: &Workspace, repo: &str, src: &Path, extra: &[&str]) -> Cmd {
    let mut c = ws.lifeboat(&["backup", "--quiet", "--repo"]);
    c.arg(repo)
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(extra)
        .arg(src);
    c
}

fn prune(ws: &Workspace, repo: &str) -> serde_json::Value {
    ws.lifeboat(&["prune", "--json", "--repo", repo, "--signing-key"])
        .arg(ws.path("keys/svc.key"))
        .ok()
        .json()
}

#[test]
fn after_killed_backups_prune_deletes_at_once_and_tmp_is_emptied() {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        random_file(&src.join(format!("part{i}")), 24 << 20, i);
    }
    let repo = ws.repo();
    let mut killed = 0;
    for round in 0..2 {
        let mut child = spawn(backup_cmd(&ws, &repo, &src, &[]));
        let before = ws.objects("data").len();
        if kill_when(&mut child, &|| ws.objects("data").len() >= before + 3) {
            killed += 1;
        }
        assert!(
            ws.objects("snapshots").is_empty(),
            "round {round} committed"
        );
    }
    assert_eq!(
        killed, 2,
        "the backups ended before they could be killed; use more data"
    );
    assert!(
        !files_in(&ws.path("repo/sessions")).is_empty(),
        "sessions left behind"
    );
    // check lists what the dead writers left, and says it is harmless.
    let check = ws.check(false).ok();
    assert!(check
        .stderr
        .contains("unreferenced packs (left by an interrupted writer"));

    // Their processes are gone: prune deletes what they stored at once, and removes their
    // sessions; its first write cleared their temporary files.
    let report = prune(&ws, &repo);
    assert!(report["packs_deleted"].as_u64().unwrap() >= 6, "{report}");
    assert_eq!(report["waiting"].as_array().unwrap().len(), 0, "{report}");
    let stale = report["stale_sessions"].as_array().unwrap();
    assert_eq!(stale.len(), 2, "{report}");
    assert!(stale
        .iter()
        .all(|s| s.as_str().unwrap().contains("its process has ended")));
    assert!(files_in(&ws.path("repo/sessions")).is_empty());
    assert!(files_in(&ws.path("repo/tmp")).is_empty());
    ws.check(true).ok();
}

#[test]
fn the_tmp_files_of_a_killed_writer_go_at_the_next_write_and_check_lists_them() {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("big"), 96 << 20, 3);
    let tmp = ws.path("repo/tmp");
    let mut child = spawn(backup_cmd(&ws, &ws.repo(), &src, &[]));
    // Killed while it writes a pack into tmp/.
    let running = kill_when(&mut child, &|| !files_in(&tmp).is_empty());
    assert!(running, "the backup ended before it wrote a temporary file");
    let left = files_in(&tmp);
    if left.is_empty() {
        // It renamed the file into place in the instant before the kill: nothing to test.
        return;
    }
    let check = ws.check(false).ok();
    assert!(
        check.stderr.contains("left behind by interrupted writers")
            && check
                .stderr
                .contains("by writers of this host that have ended"),
        "{}",
        check.stderr
    );
    let json = ws
        .lifeboat(&["check", "--json", "--repo"])
        .arg(ws.repo())
        .ok()
        .json();
    assert!(json["leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["writer_ended"] == true));
    // The next write (a small backup) removes them.
    let other = ws.path("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("a"), "a").unwrap();
    ws.backup(&[&other]);
    assert!(files_in(&tmp).is_empty(), "{:?}", files_in(&tmp));
}

/// A session record of a prune in the repository at `repo`, as another machine (another
/// boot) would have written it.
fn foreign_prune_session(repo: &Path) -> PathBuf {
    let now = chrono::Utc::now();
    let record = lifeboat::repo::session::SessionRecord {
        format: lifeboat::repo::session::SESSION_FORMAT.into(),
        id: format!("{}@{}.4026531836", "ab".repeat(16), "0".repeat(32)),
        kind: lifeboat::repo::session::SessionKind::Prune,
        host: "elsewhere".into(),
        pid: 4242,
        started: now,
        refreshed: now,
        claims: vec![],
    };
    let bytes = serde_json::to_vec_pretty(&record).unwrap();
    let name = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let path = repo.join("sessions").join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_copy_waits_for_a_live_prune_elsewhere_saying_so_but_not_for_a_dead_one_here() {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data").unwrap();
    ws.backup(&[&src]);
    let dr = ws.path("dr");
    let dest = dr.display().to_string();
    let copy = |quiet: bool| {
        let mut c = ws.lifeboat(&["copy", "--from"]);
        c.arg(ws.repo()).args(&["--to", &dest]);
        if quiet {
            c.arg("--quiet");
        }
        c
    };
    copy(true).ok();

    // A prune of this machine on the second site, killed: its session is stale at once.
    let sessions = dr.join("sessions");
    for _ in 0..5 {
        let mut prune = spawn({
            let mut c = ws.lifeboat(&["prune", "--repo", &dest, "--signing-key"]);
            c.arg(ws.path("keys/svc.key"));
            c
        });
        if kill_when(&mut prune, &|| !files_in(&sessions).is_empty())
            && !files_in(&sessions).is_empty()
        {
            break;
        }
    }
    let again = copy(true).ok();
    assert!(!again.stderr.contains("waiting"), "{}", again.stderr);

    // A live prune there on another machine: the copy waits, and says so though nothing is
    // a terminal and --quiet is given: which session, and until when at most.
    let foreign = foreign_prune_session(&dr);
    fs::write(src.join("g"), "more").unwrap();
    ws.backup(&[&src]);
    let mut waiting = spawn(copy(true));
    let mut lines = BufReader::new(waiting.stderr.take().unwrap()).lines();
    let said = lines.next().expect("a line").unwrap();
    assert!(
        said.contains("waiting for the prune on elsewhere (pid 4242, started")
            && said.contains("refreshed")
            && said.contains("at most until"),
        "{said}"
    );
    // Once it ends (its session goes), the copy goes on.
    fs::remove_file(foreign).unwrap();
    assert!(waiting.wait().unwrap().success());
}

#[test]
fn the_next_writer_aborts_the_multipart_uploads_of_a_killed_one() {
    let mut ws = Workspace::with(Store::S3);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        random_file(&src.join(format!("p{i}")), 24 << 20, 20 + i);
    }
    // Parts of 5 MiB: every pack goes up as a multipart upload.
    let mut left = Vec::new();
    for _ in 0..3 {
        let mut child = spawn(backup_cmd(&ws, &ws.repo(), &src, &["--s3-part-size", "5"]));
        let server = ws.server();
        let seen = kill_when(&mut child, &|| {
            server
                .uploads()
                .iter()
                .any(|p| p.to_string_lossy().contains(".part-"))
        });
        left = ws.server().uploads();
        if seen && !left.is_empty() {
            break;
        }
    }
    assert!(
        !left.is_empty(),
        "no upload was cut off by the kill; use more data"
    );
    // check lists them; the next writer (a small backup) aborts them.
    let check = ws.check(false).ok();
    assert!(
        check.stderr.contains("left behind by interrupted writers"),
        "{}",
        check.stderr
    );
    let other = ws.path("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("a"), "a").unwrap();
    ws.backup(&[&other]);
    assert!(
        ws.server().uploads().is_empty(),
        "{:?}",
        ws.server().uploads()
    );
    ws.check(true).ok();
}

/// What a kill must never break, checked after every kill of the campaign: the repository
/// checks clean with every byte read, every committed snapshot restores identically, the
/// next prune deletes what it should at once (no writer to wait for), and after that write
/// `tmp/` is empty and no multipart upload is left on an S3 server.
fn nothing_in_the_way(
    ws: &mut Workspace,
    repo: &str,
    committed: &[(String, PathBuf)],
    round: &str,
) {
    let check = ws
        .lifeboat(&["check", "--read-data", "--repo", repo, "--key"])
        .arg(ws.key())
        .run();
    assert_eq!(check.code, 0, "{round}: {}{}", check.stdout, check.stderr);
    for (i, (id, src)) in committed.iter().enumerate() {
        let out = ws.path(&format!("restored-{round}-{i}"));
        ws.lifeboat(&["restore", "--repo", repo, "--key"])
            .arg(ws.key())
            .arg(id)
            .arg("--target")
            .arg(&out)
            .ok();
        let diff = diff_trees(src, &out.join(src.strip_prefix("/").unwrap()));
        assert!(diff.is_empty(), "{round}: {id}: {diff:?}");
        fs::remove_dir_all(&out).unwrap();
    }
    let report = prune(ws, repo);
    assert_eq!(
        report["waiting"].as_array().unwrap().len(),
        0,
        "{round}: {report}"
    );
    assert_eq!(
        report["packs_marked"], report["packs_deleted"],
        "{round}: {report}"
    );
    match ws.server.as_mut() {
        None => {
            let tmp = Path::new(repo).join("tmp");
            assert!(files_in(&tmp).is_empty(), "{round}: {:?}", files_in(&tmp));
        }
        Some(server) => assert!(
            server.uploads().is_empty(),
            "{round}: {:?}",
            server.uploads()
        ),
    }
}

/// A source folder of `files` random files of `mib` MiB each.
fn source(ws: &Workspace, name: &str, files: u64, mib: usize) -> PathBuf {
    let dir = ws.path(name);
    fs::create_dir_all(&dir).unwrap();
    for i in 0..files {
        random_file(
            &dir.join(format!("f{i}")),
            mib << 20,
            1000 * files + i + name.len() as u64,
        );
    }
    dir
}

fn kill_campaign(store: Store) {
    let mut ws = Workspace::with(store);
    let repo = ws.repo();
    let part = if store == Store::S3 {
        vec!["--s3-part-size", "5"]
    } else {
        vec![]
    };
    let a = source(&ws, "a", 2, 16);
    let b = source(&ws, "b", 2, 16);
    let c = source(&ws, "c", 3, 16);
    let id = |v: serde_json::Value| v["id"].as_str().unwrap().to_string();
    let mut committed = vec![(id(ws.backup(&[&a])), a.clone()), (id(ws.backup(&[&b])), b)];

    // 1. A backup killed once it has stored a few packs.
    let before = ws.objects("data").len();
    let mut child = spawn(backup_cmd(&ws, &repo, &c, &part));
    kill_when(&mut child, &|| ws.objects("data").len() >= before + 2);
    nothing_in_the_way(&mut ws, &repo, &committed, "backup");

    // 2. A prune killed while it deletes (the data of a forgotten snapshot).
    let (forgotten, _) = committed.remove(0);
    ws.lifeboat(&["forget", "--repo", &repo, "--signing-key"])
        .arg(ws.path("keys/svc.key"))
        .arg(&forgotten)
        .ok();
    let before = ws.objects("data").len();
    let mut child = spawn({
        let mut cmd = ws.lifeboat(&["prune", "--repo", &repo, "--signing-key"]);
        cmd.arg(ws.path("keys/svc.key"));
        cmd
    });
    kill_when(&mut child, &|| ws.objects("data").len() < before);
    nothing_in_the_way(&mut ws, &repo, &committed, "prune");

    // 3. A copy to a second site killed once it has sent a few packs.
    let (dest, dest_objects) = ws.sibling("second-site");
    let mut child = spawn({
        let mut cmd = ws.lifeboat(&["copy", "--quiet", "--from", &repo, "--to", &dest]);
        cmd.args(&part);
        cmd
    });
    let sent = || {
        files_in(&dest_objects.join("data"))
            .iter()
            .map(|d| files_in(d).len())
            .sum::<usize>()
    };
    kill_when(&mut child, &|| sent() >= 2);
    ws.lifeboat(&["copy", "--quiet", "--from", &repo, "--to", &dest])
        .args(&part)
        .ok();
    nothing_in_the_way(&mut ws, &dest, &committed, "copy (second site)");
    nothing_in_the_way(&mut ws, &repo, &committed, "copy");

    // 4. Every index lost, and the repair killed part way; run again, it finishes the job.
    for i in ws.objects("index") {
        fs::remove_file(i).unwrap();
    }
    let repair = |ws: &Workspace| {
        let mut cmd = ws.lifeboat(&["repair", "index", "--quiet", "--repo", &repo, "--key"]);
        cmd.arg(ws.key())
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"));
        cmd
    };
    let mut child = spawn(repair(&ws));
    kill_when(&mut child, &|| !ws.objects("index").is_empty());
    repair(&ws).ok();
    nothing_in_the_way(&mut ws, &repo, &committed, "repair index");

    // 5. A forget of several snapshots killed part way: those left restore, the rest are
    // gone whole.
    let tiny = ws.path("tiny");
    fs::create_dir_all(&tiny).unwrap();
    let mut extra = Vec::new();
    for i in 0..6 {
        fs::write(tiny.join("n"), format!("{i}")).unwrap();
        extra.push(id(ws.backup(&[&tiny])));
    }
    let mut child = spawn({
        let mut cmd = ws.lifeboat(&["forget", "--repo", &repo, "--signing-key"]);
        cmd.arg(ws.path("keys/svc.key"));
        for e in &extra {
            cmd.arg(e);
        }
        cmd
    });
    let all = ws.objects("snapshots").len();
    kill_when(&mut child, &|| ws.objects("snapshots").len() < all);
    nothing_in_the_way(&mut ws, &repo, &committed, "forget");

    // 6. And a backup killed again, after all that; then one that completes.
    let before = ws.objects("data").len();
    let mut child = spawn(backup_cmd(&ws, &repo, &c, &part));
    kill_when(&mut child, &|| ws.objects("data").len() > before);
    committed.push((id(ws.backup(&[&c])), c));
    nothing_in_the_way(&mut ws, &repo, &committed, "backup again");
}

on_every_backend!(kill_campaign);
