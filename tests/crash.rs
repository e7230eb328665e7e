//! Crashes and full disks in the middle of a backup leave a healthy repository, and the next
//! backup reuses what was already stored.

mod common;
use common::*;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

fn kill_during_backup_then_check_passes_and_next_backup_reuses(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..12 {
        random_file(&src.join(format!("part{i:02}")), 32 << 20, i);
    }
    let total: u64 = 12 * (32 << 20);
    let mut child = ws
        .lifeboat(&["backup", "--quiet", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .arg(&src)
        .0
        .spawn()
        .unwrap();
    // Wait until some packs are stored, then kill it hard.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ws.objects("data").len() < 6 {
        assert!(Instant::now() < deadline, "no pack appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "backup ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        ws.objects("snapshots").is_empty(),
        "the backup finished before the kill; use more data"
    );
    let stored: u64 = ws
        .objects("data")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    let check = ws.check(false).ok();
    assert!(check.stderr.contains("no problems"), "{}", check.stderr);
    ws.check(true).ok();

    let result = ws.backup(&[&src]);
    let added = result["bytes_added"].as_u64().unwrap();
    assert!(added + stored >= total, "everything is stored");
    // Each uploader (2 on a folder, 4 on S3) may have stored a pack (16 MiB) it had not yet
    // reported when killed.
    let uploads = if store == Store::S3 { 4 } else { 2 };
    let slack = uploads * (17 << 20);
    assert!(
        added <= total - stored + slack,
        "the packs stored before the kill are reused: added {added}, stored before {stored}"
    );
    ws.check(true).ok();
    let out = ws.path("out");
    ws.restore("latest", &out, &[]).ok();
    assert!(diff_trees(&src, &out.join(src.strip_prefix("/").unwrap())).is_empty());
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_fails_cleanly_and_the_repository_stays_healthy() {
    let ws = Workspace::new();
    let small = ws.path("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40M", "tmpfs"])
        .arg(&small)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("skipped: cannot mount a small tmpfs to fill up (needs root): {other:?}");
            return;
        }
    }
    let _guard = Mount(small.clone());
    let repo = small.join("repo");
    ws.init_at(&repo).ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("big"), 64 << 20, 5);
    let backup = |path: &std::path::Path| {
        ws.lifeboat(&["backup", "--json", "--repo"])
            .arg(&repo)
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .arg(path)
            .run()
    };
    let run = backup(&src);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left") || run.stderr.contains("full"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_dir(repo.join("snapshots")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(repo.join("tmp")).unwrap().count(),
        0,
        "no temporary files left behind"
    );
    let check = ws.lifeboat(&["check", "--repo"]).arg(&repo).ok();
    assert!(check.stderr.contains("no problems"), "{}", check.stderr);

    // After freeing space (a smaller source), the next backup works and the repository checks.
    let small_src = ws.path("small-src");
    fs::create_dir_all(&small_src).unwrap();
    random_file(&small_src.join("f"), 1 << 20, 6);
    backup(&small_src).ok();
    ws.lifeboat(&["check", "--repo"])
        .arg(&repo)
        .arg("--key")
        .arg(ws.key())
        .arg("--read-data")
        .ok();
}

on_every_backend!(kill_during_backup_then_check_passes_and_next_backup_reuses);
