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

/// A tmpfs of `size` at `small` of the workspace, unmounted when the guard goes; `None` (the
/// test is skipped, and says why) where it cannot be mounted.
fn small_disk(ws: &Workspace, size: &str) -> Option<(std::path::PathBuf, Mount)> {
    let small = ws.path("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&small)
        .output();
    match mounted {
        Ok(o) if o.status.success() => Some((small.clone(), Mount(small))),
        other => {
            eprintln!("skipped: cannot mount a small tmpfs to fill up (needs root): {other:?}");
            None
        }
    }
}

#[test]
fn full_disk_fails_cleanly_and_the_repository_stays_healthy() {
    let ws = Workspace::new();
    let Some((small, _guard)) = small_disk(&ws, "40M") else {
        return;
    };
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
    says_the_target_is_full(&run.stderr, &repo);
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

/// A full target is named with its free space and what to do, not blamed on the source, and
/// not called temporary.
fn says_the_target_is_full(stderr: &str, repo: &std::path::Path) {
    assert!(
        stderr.contains(&format!("the target {} is full", repo.display()))
            && stderr
                .contains("free space there, or forget old snapshots and run 'lifeboat prune'"),
        "{stderr}"
    );
    assert!(!stderr.contains("reading the source failed"), "{stderr}");
    assert!(!stderr.contains("may be temporary"), "{stderr}");
}

fn free_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

/// The disk fills up at every step a backup writes (its session, packs, the index, the
/// snapshot): each time the backup fails cleanly or succeeds whole, leaves no temporary file,
/// and the repository checks.
#[test]
fn a_disk_full_at_each_write_step_fails_cleanly() {
    let ws = Workspace::new();
    let Some((small, _guard)) = small_disk(&ws, "48M") else {
        return;
    };
    let repo = small.join("repo");
    ws.init_at(&repo).ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("data"), 12 << 20, 9);
    for i in 0..20 {
        fs::write(src.join(format!("small{i}")), format!("{i}")).unwrap();
    }
    let mut failures = 0;
    for free in [
        0u64,
        1 << 10,
        16 << 10,
        256 << 10,
        4 << 20,
        11 << 20,
        13 << 20,
    ] {
        let filler = small.join("filler");
        let _ = fs::remove_file(&filler);
        let room = free_bytes(&small);
        fs::write(&filler, vec![0u8; room.saturating_sub(free) as usize]).unwrap_or(());
        let before = fs::read_dir(repo.join("snapshots")).unwrap().count();
        let run = ws
            .lifeboat(&["backup", "--json", "--repo"])
            .arg(&repo)
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .arg(&src)
            .run();
        let after = fs::read_dir(repo.join("snapshots")).unwrap().count();
        if run.code == 0 {
            assert_eq!(after, before + 1);
        } else {
            failures += 1;
            assert_eq!(run.code, 1, "{free} free: {}", run.stderr);
            says_the_target_is_full(&run.stderr, &repo);
            assert_eq!(after, before, "{free} free: a snapshot was committed");
        }
        assert_eq!(
            fs::read_dir(repo.join("tmp")).unwrap().count(),
            0,
            "{free} free: temporary files left behind"
        );
        fs::remove_file(&filler).unwrap();
        let check = ws.lifeboat(&["check", "--repo"]).arg(&repo).ok();
        assert!(check.stderr.contains("no problems"), "{}", check.stderr);
    }
    assert!(failures >= 4, "the disk was never full");
    ws.lifeboat(&["check", "--repo"])
        .arg(&repo)
        .arg("--key")
        .arg(ws.key())
        .arg("--read-data")
        .ok();
}

on_every_backend!(kill_during_backup_then_check_passes_and_next_backup_reuses);
