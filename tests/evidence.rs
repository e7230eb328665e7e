//! Evidence: chains written through the library are exported and verified offline by
//! `lifeboat evidence verify`, and each signature by stock `sqv` and `gpg`. Editing,
//! deleting, reordering or inserting a record is detected and the first bad record named.

mod common;
use common::*;
use lifeboat::evidence::{chain, Check, Outcome, Record, RecordKind};
use lifeboat::repo::crypto::SecretKey;
use std::path::{Path, PathBuf};

/// Writes `n` drill records for `tenant` into the workspace's catalog.
fn write_records(ws: &Workspace, tenant: &str, n: usize) {
    let key = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let mut catalog = ws.catalog();
    for i in 0..n {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
            + chrono::Duration::hours(i as i64);
        let mut r = Record::new(RecordKind::Drill, tenant, t);
        r.source = Some("erp-db".into());
        r.measured.insert("rto_ms".into(), 60_000 + i as u64);
        r.checks.push(Check {
            name: "orders".into(),
            method: "sql".into(),
            expected: ">= 1000".into(),
            actual: "20000".into(),
            passed: true,
        });
        if i == 2 {
            r.outcome = Outcome::Failure;
            r.error = Some("order count below 1000".into());
        }
        chain::append(&mut catalog, &key, r).unwrap();
    }
}

fn export(ws: &Workspace, name: &str) -> PathBuf {
    let out = ws.path(name);
    ws.lifeboat(&["evidence", "export", "--out"]).arg(&out).ok();
    out
}

fn verify(ws: &Workspace, path: &Path) -> Run {
    ws.lifeboat(&["evidence", "verify"])
        .arg(path)
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .run()
}

fn record_file(dir: &Path, tenant: &str, n: u64) -> PathBuf {
    dir.join(tenant).join(chain::file_name(n))
}

#[test]
fn chains_verify_offline_and_with_stock_tools() {
    let ws = Workspace::new();
    write_records(&ws, "acme", 5);
    write_records(&ws, "bakery", 2);
    let listed = ws
        .lifeboat(&["evidence", "list", "--json", "--tenant", "acme"])
        .ok()
        .json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[2]["record"]["outcome"], "failure");
    assert!(listed[0]["record"].get("previous").is_none());
    assert_eq!(listed[1]["record"]["previous"], listed[0]["sha256"]);

    let dir = export(&ws, "export");
    let ok = verify(&ws, &dir);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stderr.contains("acme: 5 record(s), 1 to 5"),
        "{}",
        ok.stderr
    );
    assert!(ok.stderr.contains("bakery: 2 record(s)"), "{}", ok.stderr);

    // Every signature checks with stock tools, against the same certificate.
    let cert = ws.path("keys/svc.cert");
    for n in 1..=5 {
        let file = record_file(&dir, "acme", n);
        let mut sig = file.clone().into_os_string();
        sig.push(".asc");
        tool(
            std::process::Command::new("sqv")
                .arg("--keyring")
                .arg(&cert)
                .arg(&sig)
                .arg(&file),
        );
    }
    let gnupg = ws.path("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    let gpg = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("gpg")
            .arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--no-tty"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(gpg(&["--import".as_ref(), cert.as_os_str()]).0);
    let file = record_file(&dir, "bakery", 2);
    let mut sig = file.clone().into_os_string();
    sig.push(".asc");
    let (good, said) = gpg(&["--verify".as_ref(), sig.as_os_str(), file.as_os_str()]);
    assert!(good && said.contains("Good signature"), "{said}");

    // A partial export (only the newest records) verifies, and says it is partial.
    let part = ws.path("part/acme");
    std::fs::create_dir_all(&part).unwrap();
    for n in 4..=5 {
        for ext in ["", ".asc"] {
            let name = format!("{}{ext}", chain::file_name(n));
            std::fs::copy(dir.join("acme").join(&name), part.join(&name)).unwrap();
        }
    }
    let partial = verify(&ws, &part);
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert!(partial.stderr.contains("earlier records are not here"));
}

/// Copies the export, applies `tamper` to the copy, and returns what verify said.
fn tampered(ws: &Workspace, dir: &Path, name: &str, tamper: impl FnOnce(&Path)) -> Run {
    let copy = ws.path(name);
    tool(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(dir)
            .arg(&copy),
    );
    tamper(&copy);
    let run = verify(ws, &copy);
    assert_eq!(run.code, 3, "{name}: {}", run.stderr);
    run
}

#[test]
fn edits_deletions_reorderings_and_insertions_are_detected() {
    let ws = Workspace::new();
    write_records(&ws, "acme", 5);
    write_records(&ws, "bakery", 2);
    let dir = export(&ws, "export");
    assert_eq!(verify(&ws, &dir).code, 0);

    // An edit that keeps the JSON canonical: the failed drill turned into a success.
    let run = tampered(&ws, &dir, "edited", |d| {
        let f = record_file(d, "acme", 3);
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("\"outcome\":\"failure\""));
        std::fs::write(
            &f,
            text.replace("\"outcome\":\"failure\"", "\"outcome\":\"success\""),
        )
        .unwrap();
    });
    assert!(
        run.stderr
            .contains("00000003.json: record 3: the signature does not verify"),
        "{}",
        run.stderr
    );

    // An edit that re-encodes the record (pretty-printed): not canonical, so not evidence.
    let run = tampered(&ws, &dir, "reencoded", |d| {
        let f = record_file(d, "acme", 2);
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        std::fs::write(&f, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    });
    assert!(
        run.stderr.contains("record 2: not in canonical form"),
        "{}",
        run.stderr
    );

    // A record deleted from the middle.
    let run = tampered(&ws, &dir, "deleted", |d| {
        std::fs::remove_file(record_file(d, "acme", 3)).unwrap();
    });
    assert!(
        run.stderr
            .contains("record 3 is missing: the chain jumps from 2 to 4"),
        "{}",
        run.stderr
    );

    // Two records swapped (each with its own signature).
    let run = tampered(&ws, &dir, "swapped", |d| {
        for ext in ["", ".asc"] {
            let a = d.join("acme").join(format!("{}{ext}", chain::file_name(2)));
            let b = d.join("acme").join(format!("{}{ext}", chain::file_name(4)));
            let t = d.join("tmp");
            std::fs::rename(&a, &t).unwrap();
            std::fs::rename(&b, &a).unwrap();
            std::fs::rename(&t, &b).unwrap();
        }
    });
    assert!(
        run.stderr.contains("the file of record 2 holds record 4"),
        "{}",
        run.stderr
    );

    // A validly signed record of another tenant slipped into the chain.
    let run = tampered(&ws, &dir, "inserted", |d| {
        for ext in ["", ".asc"] {
            std::fs::copy(
                d.join("bakery")
                    .join(format!("{}{ext}", chain::file_name(2))),
                d.join("acme").join(format!("{}{ext}", chain::file_name(6))),
            )
            .unwrap();
        }
    });
    assert!(
        run.stderr.contains("the file of record 6 holds record 2"),
        "{}",
        run.stderr
    );

    // A forged record appended, signed by another key.
    let run = tampered(&ws, &dir, "forged", |d| {
        let other = SecretKey::generate("mallory").unwrap();
        let bytes = std::fs::read(record_file(d, "acme", 5)).unwrap();
        let mut r = Record::parse(&bytes).unwrap();
        r.sequence = 6;
        r.previous = Some(lifeboat::evidence::record::sha256_hex(&bytes));
        let forged = r.canonical().unwrap();
        let f = record_file(d, "acme", 6);
        std::fs::write(&f, &forged).unwrap();
        let mut sig = f.into_os_string();
        sig.push(".asc");
        std::fs::write(
            sig,
            lifeboat::repo::crypto::sign_detached(&other, &forged).unwrap(),
        )
        .unwrap();
    });
    assert!(
        run.stderr
            .contains("record 6: the signature does not verify"),
        "{}",
        run.stderr
    );
    // The untouched tenant still verifies beside the bad one.
    assert!(run.stderr.contains("bakery: 2 record(s)"), "{}", run.stderr);
}
