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
