//! Recovery reports: exact figures from a history with known gaps, failed backups and a failed
//! drill; the auditor's bundle verifies offline (with Lifeboat and with stock `sqv`), and
//! every kind of tampering is caught.

mod common;
use common::*;
use lifeboat::evidence::record::{time, SnapshotRef};
use lifeboat::evidence::{chain, Check, Incident, Outcome, Record, RecordKind};
use lifeboat::repo::crypto::SecretKey;
use std::path::{Path, PathBuf};

type Utc = chrono::DateTime<chrono::Utc>;

fn t(s: &str) -> Utc {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Tenant acme, contract erp (RPO 12h, RTO 1h, 4 test restores a year), source db on tier
/// 7/4 (00:00, 06:00, 12:00, 18:00 UTC); and contract web of the same tenant.
fn config(ws: &Workspace) -> PathBuf {
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME Maschinenbau"

[tenants.other]
name = "Other"

[contracts.erp]
tenant = "acme"
rpo = "12h"
rto = "1h"
test_restores_per_year = 4

[contracts.web]
tenant = "acme"
rpo = "1d"
rto = "1d"

[contracts.other]
tenant = "other"
rpo = "1d"
rto = "1d"

[sources.db]
tenant = "acme"
contract = "erp"
kind = "files"
paths = ["/srv"]
tier = "7/4"
targets = ["nas"]

[sources.site]
tenant = "acme"
contract = "web"
kind = "files"
paths = ["/srv/www"]
tier = "7/1"
targets = ["nas"]
"#,
        keys = ws.path("keys").display(),
        repo = ws.repo(),
    );
    let path = ws.path("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn backup(tenant: &str, contract: &str, source: &str, slot: &str, ok: bool) -> Record {
    let slot = t(slot);
    let mut r = Record::new(
        RecordKind::Backup,
        tenant,
        slot + chrono::Duration::minutes(1),
    );
    r.contract = Some(contract.into());
    r.source = Some(source.into());
    r.tier = Some("7/4".into());
    if ok {
        r.snapshot = Some(SnapshotRef {
            id: format!("{:064x}", slot.timestamp()),
            time: time(slot),
        });
        r.measured.insert("bytes".into(), 1000);
    } else {
        r.outcome = Outcome::Failure;
        r.error = Some("connection refused".into());
        r.incident = Some(Incident {
            severity: "high".into(),
            summary: format!("backup of {source} failed: connection refused"),
        });
    }
    r
}

fn drill(started: &str, passed: bool, rto_min: i64) -> Record {
    let mut r = Record::new(RecordKind::Drill, "acme", t(started));
    r.contract = Some("erp".into());
    r.source = Some("db".into());
    r.drill = Some("erp-restore".into());
    r.measured.insert("rto_ms".into(), rto_min as u64 * 60_000);
    r.measured.insert("rpo_ms".into(), 4 * 3_600_000);
    r.checks.push(Check {
        name: "orders".into(),
        method: "sql".into(),
        expected: ">= 1000".into(),
        actual: if passed { "20000" } else { "12" }.into(),
        passed,
    });
    if !passed {
        r.outcome = Outcome::Failure;
        r.error = Some("check orders failed".into());
        r.incident = Some(Incident {
            severity: "high".into(),
            summary: "drill erp-restore failed: check orders failed".into(),
        });
    }
    r
}

/// The history, in the order it was written:
/// - 1: a backup on 27 Feb (before the anchor; outside the report);
/// - 2: the last backup before the period (28 Feb 18:00): the anchor;
/// - 1 Mar: 00, 06 ok, 12 failed, 18 ok; a passed drill at 10:00 (RTO 30 min);
/// - 2 Mar: 00 ok, 06, 12, 18 failed (an outage);
/// - 3 Mar: 00 missing (the daemon was down), 06, 12, 18 ok; a failed drill at 10:00 (RTO
///   2 h); a backup of contract web;
/// - 4 Mar 06:00: after the period.
fn write_history(ws: &Workspace) {
    let key = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let mut catalog = ws.catalog();
    let db = |slot: &str, ok: bool| backup("acme", "erp", "db", slot, ok);
    let records = vec![
        db("2026-02-27T18:00:00Z", true),
        db("2026-02-28T18:00:00Z", true),
        db("2026-03-01T00:00:00Z", true),
        db("2026-03-01T06:00:00Z", true),
        drill("2026-03-01T10:00:00Z", true, 30),
        db("2026-03-01T12:00:00Z", false),
        db("2026-03-01T18:00:00Z", true),
        db("2026-03-02T00:00:00Z", true),
        db("2026-03-02T06:00:00Z", false),
        db("2026-03-02T12:00:00Z", false),
        db("2026-03-02T18:00:00Z", false),
        db("2026-03-03T06:00:00Z", true),
        drill("2026-03-03T10:00:00Z", false, 120),
        backup("acme", "web", "site", "2026-03-03T11:00:00Z", true),
        db("2026-03-03T12:00:00Z", true),
        db("2026-03-03T18:00:00Z", true),
        db("2026-03-04T06:00:00Z", true),
    ];
    for r in records {
        chain::append(&mut catalog, &key, r).unwrap();
    }
    // Another tenant's records never show up in acme's report.
    chain::append(
        &mut catalog,
        &key,
        backup("other", "other", "x", "2026-03-02T00:00:00Z", false),
    )
    .unwrap();
}

fn report(ws: &Workspace, args: &[&str]) -> Run {
    ws.lifeboat(&["report", "erp", "--period", "2026-03-01..2026-03-03"])
        .args(args)
        .arg("--config")
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", "2026-03-05T00:00:00Z")
        .run()
}

const H: u64 = 3_600_000;

#[test]
fn figures_from_a_history_with_gaps_and_failed_drills() {
    let ws = Workspace::new();
    config(&ws);
    write_history(&ws);
    let run = report(&ws, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();

    assert_eq!(r["period"]["from"], "2026-03-01T00:00:00.000Z");
    assert_eq!(r["period"]["to"], "2026-03-04T00:00:00.000Z");
    assert_eq!(r["measured_until"], "2026-03-04T00:00:00.000Z");
    // Records 2 (the anchor) to 16 (the last recorded in the period).
    assert_eq!(r["evidence"]["first"], 2);
    assert_eq!(r["evidence"]["last"], 16);
    assert_eq!(r["evidence"]["records"], 15);

    // Slots: each succeeded, failed, or was missed (3 Mar 00:00: no backup at all).
    let days: Vec<(String, u64, u64, u64, u64, u64)> = r["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["scheduled"].as_u64().unwrap(),
                d["succeeded"].as_u64().unwrap(),
                d["failed"].as_u64().unwrap(),
                d["missed"].as_u64().unwrap(),
                d["worst_data_age_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-03-01".into(), 4, 3, 1, 0, 12 * H),
            ("2026-03-02".into(), 4, 1, 3, 0, 24 * H),
            ("2026-03-03".into(), 4, 3, 0, 1, 30 * H),
        ]
    );
    // Slots are counted from the source's first record (no daemon scheduled it here).
    assert_eq!(
        r["terms"]["sources"][0]["since"],
        "2026-02-27T18:01:00.000Z"
    );

    // The longest gap: 2 Mar 00:00 to 3 Mar 06:00. The RPO (12 h) was exceeded from 2 Mar
    // 12:00 to 3 Mar 06:00: 18 of 72 hours.
    let rpo = &r["rpo"][0];
    assert_eq!(rpo["source"], "db");
    assert_eq!(rpo["longest_gap_ms"], 30 * H);
    assert_eq!(rpo["longest_gap_from"], "2026-03-02T00:00:00.000Z");
    assert_eq!(rpo["longest_gap_to"], "2026-03-03T06:00:00.000Z");
    assert_eq!(rpo["measured_ms"], 72 * H);
    assert_eq!(rpo["held_ms"], 54 * H);
    assert_eq!(rpo["held_percent"], 75.0);
    assert_eq!(rpo["met"], false);

    let s = &r["summary"];
    assert_eq!(s["backups_scheduled"], 12);
    assert_eq!(s["backups_succeeded"], 7);
    assert_eq!(s["backups_failed"], 4);
    assert_eq!(s["backups_missed"], 1);
    assert_eq!(s["backups_pending"], 0);
    assert_eq!(s["rpo_met"], false);
    assert_eq!(s["drills_done"], 2);
    assert_eq!(s["drills_passed"], 1);
    assert_eq!(s["drills_within_rto"], 1);
    assert_eq!(s["incidents"], 5);

    let drills = &r["drills"];
    assert_eq!(drills["quota_per_year"], 4);
    assert_eq!(drills["expected_in_period"], 0.03); // 4 × 3/365
    assert_eq!(drills["list"][0]["rto_met"], true);
    assert_eq!(drills["list"][1]["rto_met"], false);
    assert_eq!(drills["list"][1]["passed"], false);
    assert_eq!(drills["list"][1]["severity"], "high");
    assert_eq!(drills["list"][1]["checks_passed"], 0);

    let incidents: Vec<u64> = r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["evidence"].as_u64().unwrap())
        .collect();
    assert_eq!(incidents, vec![6, 9, 10, 11, 13]);

    assert_eq!(drills["due_in_period"], 1);

    // Backups ran and one drill passed, but the RPO was missed: partial, not supported.
    let control = |id: &str| {
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(control("ISO/IEC 27001:2022 A.8.13"), "partial");
    assert_eq!(control("ISO 22301:2019 8.5"), "supported");
    assert_eq!(control("NIS2 Art. 21(2)(c)"), "partial");

    // CSV: a header and one row per day.
    let csv = report(&ws, &["--format", "csv"]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", csv.stdout);
    assert_eq!(
        lines[0],
        "date,source,scheduled,succeeded,failed,missed,worst_data_age_ms,rpo_ms"
    );
    assert_eq!(lines[2], "2026-03-02,db,4,1,3,0,86400000,43200000");
    assert_eq!(lines[3], "2026-03-03,db,4,3,0,1,108000000,43200000");

    // HTML: the figures, two charts, nothing that needs a script.
    let html = report(&ws, &["--format", "html"]);
    assert_eq!(html.code, 0, "{}", html.stderr);
    let page = &html.stdout;
    assert!(page.contains("ACME Maschinenbau"));
    assert!(page.contains("7 / 12"), "backups card");
    assert!(page.contains("4 failed, 1 missed"), "backups card");
    assert!(page.contains("slots counted from 2026-02-27T18:01:00.000Z"));
    assert!(page.contains("B and R and D"), "the rules are stated");
    assert!(page.contains("30.0 h"), "longest gap");
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(!page.contains("<script"));

    // A period before the contract's evidence: nothing to report, and said so.
    let before = ws
        .lifeboat(&[
            "report", "erp", "--period", "2025-12", "--format", "json", "--config",
        ])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", "2026-03-05T00:00:00Z")
        .run();
    assert_eq!(before.code, 1);
    assert!(
        before.stderr.contains(
            "the contract's evidence begins 2026-02-27; a report may start on 2026-01-01"
        ),
        "{}",
        before.stderr
    );

    // Mistakes get clear errors.
    let bad = ws
        .lifeboat(&["report", "nope", "--period", "2026-03", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .run();
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("no contract 'nope'"), "{}", bad.stderr);
    let bad = ws
        .lifeboat(&["report", "erp", "--period", "2026-Q5", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .run();
    assert!(bad.stderr.contains("is not a month"), "{}", bad.stderr);
}

fn make_bundle(ws: &Workspace) -> PathBuf {
    let out = ws.path("erp-2026-03.tar");
    let run = report(ws, &["--format", "bundle", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    out
}

fn verify(ws: &Workspace, bundle: &Path, cert: &str) -> Run {
    ws.lifeboat(&["report", "verify"])
        .arg(bundle)
        .arg("--cert")
        .arg(ws.path(cert))
        .run()
}

fn unpack(ws: &Workspace, bundle: &Path, into: &str) -> PathBuf {
    let dir = ws.path(into);
    std::fs::create_dir_all(&dir).unwrap();
    tool(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(bundle)
            .arg("-C")
            .arg(&dir),
    );
    let top = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    top.path()
}

fn repack(ws: &Workspace, top: &Path, name: &str) -> PathBuf {
    let out = ws.path(name);
    tool(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(&out)
            .arg("-C")
            .arg(top.parent().unwrap())
            .arg(top.file_name().unwrap()),
    );
    out
}

#[test]
fn bundle_verifies_offline_and_tampering_is_caught() {
    let ws = Workspace::new();
    config(&ws);
    write_history(&ws);
    let bundle = make_bundle(&ws);

    let ok = verify(&ws, &bundle, "keys/svc.cert");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stderr
            .contains("every figure of the report was recomputed"),
        "{}",
        ok.stderr
    );
    assert!(ok.stderr.contains("report.html shows the signed report"));

    // What is inside, and stock sqv agrees with the signatures.
    let top = unpack(&ws, &bundle, "plain");
    for name in [
        "VERIFY.md",
        "report.json",
        "report.html",
        "days.csv",
        "service.cert",
    ] {
        assert!(top.join(name).is_file(), "{name}");
    }
    let records: Vec<_> = std::fs::read_dir(top.join("evidence/acme"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "json")
        .collect();
    assert_eq!(records.len(), 15);
    tool(
        std::process::Command::new("sqv")
            .arg("--keyring")
            .arg(top.join("service.cert"))
            .arg(top.join("report.json.asc"))
            .arg(top.join("report.json")),
    );
    let verify_md = std::fs::read_to_string(top.join("VERIFY.md")).unwrap();
    assert!(verify_md.contains("records 2 to 16"), "{verify_md}");
    // The records alone verify with `evidence verify` too.
    let alone = ws
        .lifeboat(&["evidence", "verify"])
        .arg(top.join("evidence"))
        .arg("--cert")
        .arg(top.join("service.cert"))
        .run();
    assert_eq!(alone.code, 0, "{}", alone.stderr);

    // Another certificate: nothing verifies.
    let other = verify(&ws, &bundle, "keys/rec.cert");
    assert_eq!(other.code, 3);
    assert!(
        other.stderr.contains("not the certificate given"),
        "{}",
        other.stderr
    );

    // A record edited: caught and named.
    let top = unpack(&ws, &bundle, "edited");
    let file = top.join("evidence/acme/00000006.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"failure\"", "\"success\"")).unwrap();
    let bad = verify(&ws, &repack(&ws, &top, "edited.tar"), "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(bad.stderr.contains("00000006.json"), "{}", bad.stderr);

    // A failed backup's record left out: the chain has a hole.
    let top = unpack(&ws, &bundle, "dropped");
    std::fs::remove_file(top.join("evidence/acme/00000009.json")).unwrap();
    std::fs::remove_file(top.join("evidence/acme/00000009.json.asc")).unwrap();
    let bad = verify(&ws, &repack(&ws, &top, "dropped.tar"), "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(bad.stderr.contains("record 9 is missing"), "{}", bad.stderr);

    // The last records left out (a shorter chain, each link intact): the report names its
    // head, so this is caught too.
    let top = unpack(&ws, &bundle, "short");
    for n in [15, 16] {
        let f = top.join(format!("evidence/acme/{n:08}.json"));
        std::fs::remove_file(&f).unwrap();
        std::fs::remove_file(f.with_extension("json.asc")).unwrap();
    }
    let bad = verify(&ws, &repack(&ws, &top, "short.tar"), "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr.contains("the bundle holds 2 to 14"),
        "{}",
        bad.stderr
    );

    // A figure edited in report.json: the signature fails.
    let top = unpack(&ws, &bundle, "figure");
    let file = top.join("report.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("\"backups_failed\":4", "\"backups_failed\":0"),
    )
    .unwrap();
    let bad = verify(&ws, &repack(&ws, &top, "figure.tar"), "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr
            .contains("report.json: the signature does not verify"),
        "{}",
        bad.stderr
    );

    // The HTML made to look better: it no longer shows the signed report.
    let top = unpack(&ws, &bundle, "html");
    let file = top.join("report.html");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("7 / 12", "12 / 12")).unwrap();
    let bad = verify(&ws, &repack(&ws, &top, "html.tar"), "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr.contains("report.html does not show"),
        "{}",
        bad.stderr
    );

    // A provider that signs figures its evidence does not support: the recomputation
    // disagrees and says where.
    let loaded = lifeboat::config::load(&ws.path("lifeboat.toml")).unwrap();
    let catalog = ws.catalog();
    let terms = lifeboat::report::Terms::of(&loaded, "erp").unwrap();
    let stored = lifeboat::report::Stored {
        centre: catalog.evidence(Some("acme")).unwrap(),
        sites: Vec::new(),
    };
    let entries: Vec<_> = stored
        .centre
        .iter()
        .map(|e| lifeboat::report::Entry {
            sequence: e.sequence,
            sha256: e.sha256.clone(),
            record: Record::parse(&e.record).unwrap(),
            agent: None,
        })
        .collect();
    let period = lifeboat::report::Period::parse("2026-03-01..2026-03-03").unwrap();
    let mut lie =
        lifeboat::report::compute(&terms, &period, t("2026-03-05T00:00:00Z"), &entries).unwrap();
    lie.rpo[0].held_ms = 72 * H;
    let key = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let records = lifeboat::report::bundle::records_for(&lie, &stored);
    let lying = ws.path("lie.tar");
    lifeboat::report::bundle::write(&lying, &lie, &records, &key).unwrap();
    let bad = verify(&ws, &lying, "keys/svc.cert");
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr
            .contains("report.json says .rpo[0].held_ms = 259200000, the records give 194400000"),
        "{}",
        bad.stderr
    );
}

/// The history as report entries, and the terms of contract erp.
fn entries_and_terms(ws: &Workspace) -> (Vec<lifeboat::report::Entry>, lifeboat::report::Terms) {
    let loaded = lifeboat::config::load(&ws.path("lifeboat.toml")).unwrap();
    let catalog = ws.catalog();
    let entries = catalog
        .evidence(Some("acme"))
        .unwrap()
        .iter()
        .map(|e| lifeboat::report::Entry {
            sequence: e.sequence,
            sha256: e.sha256.clone(),
            record: Record::parse(&e.record).unwrap(),
            agent: None,
        })
        .collect();
    (
        entries,
        lifeboat::report::Terms::of(&loaded, "erp").unwrap(),
    )
}

#[test]
fn slots_count_from_when_the_source_was_first_scheduled_and_an_open_one_is_pending() {
    let ws = Workspace::new();
    config(&ws);
    write_history(&ws);
    let (entries, mut terms) = entries_and_terms(&ws);
    // The service first scheduled the source on 2 Mar at 06:00: nothing before counts.
    terms.sources[0].since = Some("2026-03-02T06:00:00.000Z".into());
    let period = lifeboat::report::Period::parse("2026-03-01..2026-03-03").unwrap();
    let r =
        lifeboat::report::compute(&terms, &period, t("2026-03-05T00:00:00Z"), &entries).unwrap();
    let per_day: Vec<(u64, u64, u64, Option<u64>)> = r
        .days
        .iter()
        .map(|d| (d.scheduled, d.succeeded, d.failed, d.missed))
        .collect();
    assert_eq!(
        per_day,
        vec![(0, 0, 0, Some(0)), (3, 0, 3, Some(0)), (4, 3, 0, Some(1))]
    );
    assert_eq!(r.summary.backups_scheduled, 7);

    // Made on 3 Mar at 19:00: the 18:00 slot's backup (recorded 18:01) counts; made at
    // 12:30 the 12:00 slot is still open with its backup not yet recorded: pending, not
    // missed, and not judged at all.
    let noon =
        lifeboat::report::compute(&terms, &period, t("2026-03-03T12:00:30Z"), &entries).unwrap();
    assert_eq!(noon.summary.backups_pending, Some(1));
    assert_eq!(noon.summary.backups_missed, Some(1));
    assert_eq!(noon.summary.backups_scheduled, 6);
    assert_eq!(noon.summary.backups_succeeded, 1);

    // Never scheduled: no slot counts.
    terms.sources[0].since = None;
    let never =
        lifeboat::report::compute(&terms, &period, t("2026-03-05T00:00:00Z"), &entries).unwrap();
    assert_eq!(never.summary.backups_scheduled, 0);
    assert_eq!(
        never.controls[0].status, "partial",
        "backups ran, but no slot to judge"
    );
}

#[test]
fn a_bundle_of_report_version_1_still_verifies() {
    let ws = Workspace::new();
    config(&ws);
    write_history(&ws);
    let (entries, terms) = entries_and_terms(&ws);
    let period = lifeboat::report::Period::parse("2026-03-01..2026-03-03").unwrap();
    let old =
        lifeboat::report::compute_version(1, &terms, &period, t("2026-03-05T00:00:00Z"), &entries)
            .unwrap();
    assert_eq!(old.version, 1);
    // Version 1 counted records per day, the whole period's slots, and no missed ones.
    assert!(old.summary.backups_missed.is_none());
    assert_eq!(old.summary.backups_scheduled, 12);
    let json = serde_json::to_value(&old).unwrap();
    assert!(json["days"][0].get("missed").is_none(), "{json}");
    let catalog = ws.catalog();
    let stored = lifeboat::report::Stored {
        centre: catalog.evidence(Some("acme")).unwrap(),
        sites: Vec::new(),
    };
    let key = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let records = lifeboat::report::bundle::records_for(&old, &stored);
    let bundle = ws.path("v1.tar");
    lifeboat::report::bundle::write(&bundle, &old, &records, &key).unwrap();
    let ok = verify(&ws, &bundle, "keys/svc.cert");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stderr
            .contains("every figure of the report was recomputed"),
        "{}",
        ok.stderr
    );
    assert!(
        ok.stderr
            .contains("made by an older Lifeboat (report version 1)"),
        "{}",
        ok.stderr
    );
}
