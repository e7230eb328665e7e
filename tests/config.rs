//! `lifeboat config check`: the documented example is valid; a broken file gets every problem
//! with its line; a missing file is named.

mod common;
use common::*;
use std::fs;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lifeboat.example.toml");

#[test]
fn config_check_validates_without_running_anything() {
    let ws = Workspace::empty(Store::Local);
    let ok = ws.lifeboat(&["config", "check", "--config", EXAMPLE]).ok();
    assert!(
        ok.stdout.contains("is valid: 3 target(s), 2 tenant(s)"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout.contains("acme-office-drawings: tier 90/4")
            && ok
                .stdout
                .contains("at site acme-office (its agent runs it)"),
        "{}",
        ok.stdout
    );

    let text = fs::read_to_string(EXAMPLE).unwrap();
    let broken = text
        .replacen(
            "tier = \"90/4\"",
            "tier = \"90/4\"\nretain = \"forever\"",
            1,
        )
        .replacen(
            "targets = [\"second-site\"]",
            "targets = [\"third-site\"]",
            1,
        );
    let path = ws.path("lifeboat.toml");
    fs::write(&path, &broken).unwrap();
    let line = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let run = ws
        .lifeboat(&["config", "check"])
        .env("LIFEBOAT_CONFIG", &path)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("has 2 problem(s)"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "lifeboat.toml:{}: unknown key 'sources.acme-share.retain'",
            line("retain = ")
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "lifeboat.toml:{}: source 'bakery-shop-db' names target 'third-site'",
            line("third-site")
        )),
        "{}",
        run.stderr
    );

    let run = ws
        .lifeboat(&["config", "check", "--config"])
        .arg(ws.path("nowhere.toml"))
        .run();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("nowhere.toml") && run.stderr.contains("cannot read it"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_shipped_drill_specs_are_valid_against_the_example() {
    let ws = Workspace::empty(Store::Local);
    let specs = concat!(env!("CARGO_MANIFEST_DIR"), "/restore-tests");
    let mut names: Vec<_> = fs::read_dir(specs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    for spec in names {
        let run = ws
            .lifeboat(&["drill", "check", "--config", EXAMPLE])
            .arg(&spec)
            .ok();
        assert!(run.stdout.contains("is valid"), "{}", run.stdout);
    }
}

#[test]
fn credentials_in_an_endpoint_and_bad_http_limits_are_refused() {
    let ws = Workspace::empty(Store::Local);
    let text = fs::read_to_string(EXAMPLE).unwrap();
    let broken = text
        .replace(
            "endpoint = \"https://s3.dc2.example.net\"",
            "endpoint = \"https://AKIA0000:verysecret@s3.dc2.example.net\"",
        )
        .replace(
            "trusted_proxies = [\"127.0.0.1\"]",
            "trusted_proxies = [\"10.0.0.0/8\", \"the-proxy\"]",
        )
        .replace("stop_timeout = \"30s\"", "stop_timeout = \"soon\"")
        .replace("header_timeout = \"10s\"", "header_timeout = \"0s\"")
        .replace("max_connections = 512", "max_connections = 0");
    assert_ne!(broken, text);
    let path = ws.path("lifeboat.toml");
    fs::write(&path, &broken).unwrap();
    let run = ws
        .lifeboat(&["config", "check", "--config"])
        .arg(&path)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    for says in [
        "target 'second-site': endpoint: it has credentials in it",
        "trusted_proxies: 'the-proxy' is not an IP address or network",
        "stop_timeout:",
        "[service.http] header_timeout:",
        "[service.http] max_connections: must be at least 1",
    ] {
        assert!(run.stderr.contains(says), "'{says}' in {}", run.stderr);
    }
    // The secret itself is never repeated back.
    assert!(!run.stderr.contains("verysecret"), "{}", run.stderr);
}
