//! Bad input gets a clear error and changes nothing.

mod common;
use common::*;
use std::fs;

fn wrong_key_names_the_recipients(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "x").unwrap();
    ws.backup(&[&src]);
    let rec_fp = fs::read_to_string(ws.path("keys/rec.cert")).unwrap();
    assert!(rec_fp.contains("BEGIN PGP PUBLIC KEY BLOCK"));
    let run = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.path("keys/svc.key"))
        .args(&["latest", "--target"])
        .arg(ws.path("out"))
        .run();
    assert_eq!(run.code, 4, "{}", run.stderr);
    let cert = lifeboat::repo::crypto::PublicCert::load(&ws.path("keys/rec.cert")).unwrap();
    assert!(
        run.stderr.contains(&cert.fingerprint().to_hex()),
        "{}",
        run.stderr
    );
    assert!(!ws.path("out").exists() || fs::read_dir(ws.path("out")).unwrap().next().is_none());

    let run = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.path("keys/missing.key"))
        .args(&["latest", "--target"])
        .arg(ws.path("out"))
        .run();
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("missing.key"), "{}", run.stderr);

    // A public certificate where a secret key belongs.
    let run = ws
        .lifeboat(&["ls", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.path("keys/rec.cert"))
        .arg("latest")
        .run();
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("not a secret key"), "{}", run.stderr);
}

fn init_refuses_a_non_empty_place(store: Store) {
    let ws = Workspace::with(store);
    let (address, dir) = ws.sibling("full");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("precious"), "do not touch").unwrap();
    let run = ws.init_at(&address).run();
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    // The existing repository cannot be initialised again either.
    let run = ws.init_at(ws.repo()).run();
    assert_ne!(run.code, 0);
}

fn missing_source_path_writes_no_snapshot(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let run = ws
        .lifeboat(&["backup", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .arg(&src)
        .arg(ws.path("no-such-dir"))
        .run();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no-such-dir"), "{}", run.stderr);
    assert!(ws.objects("snapshots").is_empty());
    assert!(ws.objects("data").is_empty());
}

fn backup_with_a_foreign_signing_key_is_refused(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let run = ws
        .lifeboat(&["backup", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/rec.key"))
        .arg(&src)
        .run();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("not signed by the trusted service certificate"),
        "{}",
        run.stderr
    );
    assert!(ws.objects("snapshots").is_empty());
}

fn catalog_rebuild_restores_deduplication(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("f"), 2 << 20, 3);
    ws.backup(&[&src]);
    fs::remove_dir_all(ws.path("data")).unwrap();
    // Without the pinned certificate the service's certificate must be given.
    let run = ws
        .lifeboat(&["catalog", "rebuild", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .run();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("--signer"), "{}", run.stderr);
    ws.lifeboat(&["catalog", "rebuild", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .arg("--signer")
        .arg(ws.path("keys/svc.cert"))
        .ok();
    let again = ws.backup(&[&src]);
    assert_eq!(
        again["bytes_read"],
        2 << 20,
        "the file cache is gone, so the file is read"
    );
    // Only the tree is new (the workspace folder above the source changed); the 2 MiB of data
    // are known again and not stored twice.
    assert!(
        again["bytes_added"].as_u64().unwrap() < 4096,
        "its chunks are known again: {again}"
    );
}

on_every_backend!(
    wrong_key_names_the_recipients,
    init_refuses_a_non_empty_place,
    missing_source_path_writes_no_snapshot,
    backup_with_a_foreign_signing_key_is_refused,
    catalog_rebuild_restores_deduplication,
);

/// Every listing command whose reader has gone (`| head -1`, `| true`) ends quietly: no
/// panic, no backtrace, exit 0.
#[test]
fn listings_into_a_closed_pipe_end_quietly() {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..50 {
        fs::write(src.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    ws.backup(&[&src]);
    ws.backup(&[&src]);
    let repo = ws.repo();
    let key = ws.key().display().to_string();
    let listings: Vec<Vec<&str>> = vec![
        vec!["snapshots", "--repo", &repo],
        vec!["snapshots", "--json", "--repo", &repo],
        vec!["ls", "--repo", &repo, "--key", &key, "latest"],
        vec!["ls", "--json", "--repo", &repo, "--key", &key, "latest"],
        vec!["runs"],
        vec!["evidence", "list"],
        vec!["schedule", "preview", "--tier", "90/48", "--next", "500"],
        vec!["retention", "simulate", "--tier", "90/48", "--days", "120"],
    ];
    for args in listings {
        // A pipe whose reading end is closed before the command starts: its first write
        // fails, every time.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut c = ws.lifeboat(&args);
        let out =
            c.0.stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
