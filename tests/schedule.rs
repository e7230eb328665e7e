//! `lifeboat schedule preview`: a tier's next runs, across a daylight-saving change.

mod common;
use common::*;

#[test]
fn preview_shows_the_next_runs_in_the_time_zone() {
    let ws = Workspace::empty(Store::Local);
    let run = ws
        .lifeboat(&[
            "schedule",
            "preview",
            "--tier",
            "14/1",
            "--tz",
            "Europe/Berlin",
        ])
        .args(&["--from", "2026-03-27T12:00:00Z", "--next", "3"])
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "14/1 (a daily copy to a second site, kept 14 days): cron '0 30 2 * * *' in Europe/Berlin",
            "  Sat 2026-03-28 02:30 CET",
            "  Sun 2026-03-29 03:00 CEST",
            "  Mon 2026-03-30 02:30 CEST",
        ]
    );
    for (flag, value, says) in [
        ("--tier", "90/7", "spread evenly"),
        ("--tz", "Mars/Olympus", "not an IANA time zone"),
    ] {
        let mut c = ws.lifeboat(&["schedule", "preview"]);
        if flag == "--tz" {
            c.args(&["--tier", "90/48"]);
        }
        let run = c.args(&[flag, value]).run();
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
}

#[test]
fn retention_simulate_prints_kept_snapshots_and_storage_day_by_day() {
    let ws = Workspace::empty(Store::Local);
    let days = ws
        .lifeboat(&["retention", "simulate", "--tier", "90/4", "--days", "14"])
        .args(&[
            "--from",
            "2026-01-05T00:00:00Z",
            "--size-gib",
            "1",
            "--change-rate",
            "1%",
        ])
        .arg("--json")
        .ok()
        .json();
    let runs: Vec<u64> = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["runs"].as_u64().unwrap())
        .collect();
    assert_eq!(runs, [4, 4, 4, 4, 4, 0, 0, 4, 4, 4, 4, 4, 0, 0]);
    assert_eq!(days[13]["kept"], 40);
    assert_eq!(days[0]["date"], "2026-01-05");
    assert!(days[13]["stored_bytes"].as_u64().unwrap() > 1 << 30);

    let run = ws
        .lifeboat(&[
            "retention",
            "simulate",
            "--tier",
            "90/48",
            "--change-rate",
            "150%",
        ])
        .run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("between 0% and 100%"), "{}", run.stderr);
}

#[test]
fn preview_of_a_configured_source_uses_its_tier_and_the_service_time_zone() {
    let ws = Workspace::empty(Store::Local);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lifeboat.example.toml");
    let run = ws
        .lifeboat(&["schedule", "preview", "acme-share", "--config", example])
        .args(&["--from", "2026-11-27T12:00:00Z", "--next", "3"])
        .ok();
    let lines: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "  Fri 2026-11-27 15:00 CET",
            "  Fri 2026-11-27 19:00 CET",
            "  Mon 2026-11-30 07:00 CET"
        ]
    );
    let run = ws
        .lifeboat(&["schedule", "preview", "payroll", "--config", example])
        .run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no source 'payroll'"), "{}", run.stderr);
}
