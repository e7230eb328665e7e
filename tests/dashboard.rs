//! The dashboard in headless Chromium (Debian's, driven by playwright-core from
//! tests/browser): a customer logs in, sees only their tenant, and downloads a report bundle
//! that verifies offline. The screenshot is kept in target/test-artifacts/. And the demo that
//! the README's first command starts: made from nothing, it serves a dashboard a customer
//! token opens.

mod common;
use common::server::Server;
use common::*;
use std::path::PathBuf;

fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run tests/run.sh (it runs 'npm ci' there)",
        dir.display()
    );
    dir
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_customer_logs_in_sees_their_tenant_and_downloads_a_bundle_that_verifies() {
    let browser = browser_dir();
    // The demo: made from nothing in a folder, with a second tenant added to its
    // configuration to show that the customer does not see it.
    let ws = Workspace::new();
    let demo = ws.path("demo");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    // The demo on a clock of its own, so that "this month" is the same whenever it runs.
    cmd.args(["serve", "--demo", "--demo-dir"])
        .arg(&demo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LIFEBOAT_DATA_DIR", ws.path("unused"))
        .env("LIFEBOAT_CLOCK_START", "2026-11-10T10:00:00Z");
    let first = Server::start(cmd);
    // The demo's first backup runs at once; wait for it through the API.
    let log = first.log();
    let token = |label: &str| {
        log.lines()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {label} in {log}"))
            .to_string()
    };
    let (customer, admin) = (token("Customer token:"), token("Admin token:"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let jobs = first.get("/api/v1/jobs", Some(&admin)).json();
        if jobs
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["state"] == "done")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backup: {}",
            first.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The demo's second site, the branch office: its agent, in the same process, enrolled
    // and checks in.
    loop {
        let sites = first.get("/api/v1/sites", Some(&admin)).json();
        let agent = &sites[0]["agents"][0];
        if agent["last_contact"].is_string() {
            assert_eq!(sites[0]["id"], "demo-branch", "{sites}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the branch agent never checked in: {}",
            first.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Its first report, minutes old, counts no slot from before the demo existed, misses
    // none, and claims no control: nothing has been judged or drilled yet.
    let report = first
        .get("/api/v1/reports/demo-files?period=2026-11", Some(&customer))
        .json();
    let summary = &report["summary"];
    let since = report["terms"]["sources"][0]["since"].as_str().unwrap();
    assert!(since >= "2026-11-10T10:00:00", "{report}");
    assert_eq!(summary["backups_missed"], 0, "{report}");
    let judged = [
        "backups_succeeded",
        "backups_failed",
        "backups_missed",
        "backups_pending",
    ]
    .iter()
    .map(|k| summary[k].as_u64().unwrap())
    .sum::<u64>();
    assert_eq!(
        summary["backups_scheduled"].as_u64().unwrap(),
        judged,
        "{report}"
    );
    assert!(
        report["controls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "supported"),
        "{report}"
    );
    drop(first);
    let config = demo.join("lifeboat.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[tenants.rival]\nname = \"Rival Industries\"\n\n[contracts.rival-basic]\ntenant = \"rival\"\nrpo = \"1d\"\nrto = \"1d\"\n",
    );
    std::fs::write(&config, text).unwrap();

    // Started again: the demo is kept, and a fresh customer token printed.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(["serve", "--demo", "--demo-dir"])
        .arg(&demo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // A minute on: before the drill the first start planned (two minutes after it) and
        // before the next 15-minute slot, so the evidence is still the one backup.
        .env("LIFEBOAT_CLOCK_START", "2026-11-10T10:01:00Z");
    let server = Server::start(cmd);
    let log = server.log();
    assert!(!log.contains("making a demo"), "{log}");
    let fresh = log
        .lines()
        .find(|l| l.contains("Customer token:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    assert_ne!(fresh, customer);

    let out = ws.path("browser");
    std::fs::create_dir_all(&out).unwrap();
    let run = std::process::Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .arg(&server.base)
        .arg(&fresh)
        .arg("Demo Customer Ltd")
        .arg("rival")
        .arg(&out)
        .output()
        .expect("node");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}\nserver: {}", server.log());
    assert!(
        said.contains("sources: demo-branch-files, demo-share"),
        "{said}"
    );

    // The screenshot is kept; the bundle verifies offline against the demo's certificate.
    let png = std::fs::read(out.join("dashboard.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(artifacts().join("dashboard.png"), &png).unwrap();
    let verify = ws
        .lifeboat(&["report", "verify"])
        .arg(out.join("bundle.tar"))
        .arg("--cert")
        .arg(demo.join("keys/service.cert"))
        .run();
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(verify.stderr.contains("every figure"), "{}", verify.stderr);
    assert!(
        verify.stderr.contains("1 evidence record(s)"),
        "{}",
        verify.stderr
    );
}
