//! A site's agent at work: it fetches its site's assignment, backs the site's sources up to
//! the site's own target with its own catalog and key, and pushes the evidence to the centre,
//! which keeps each record once, in order, whatever stops on the way. The centre and the
//! agent share one simulated timeline (ten minutes a second), so half-hourly slots come
//! every few seconds.

mod common;
use common::agent::Agent;
use common::api::{token, with_office, NOW};
use common::server::Server;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SPEED: &str = "600";

/// The clock both processes share: it read NOW at `at`.
fn timeline(cmd: &mut Command, at: &str) {
    cmd.env("LIFEBOAT_CLOCK_START", NOW)
        .env("LIFEBOAT_CLOCK_SPEED", SPEED)
        .env("LIFEBOAT_CLOCK_AT", at);
}

fn centre(ws: &Workspace, at: &str, listen: &str) -> Server {
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(ws.path("lifeboat.toml"));
    timeline(&mut cmd, at);
    Server::start_at(cmd, listen)
}

/// `lifeboat agent run` for the agent in `dir`, on the shared timeline read at `at`.
fn start_agent(dir: &Path, at: &str) -> Agent {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(["agent", "run", "--every", "1s", "--data-dir"])
        .arg(dir);
    timeline(&mut cmd, at);
    Agent::start(&mut cmd)
}

/// Waits for `done` to hold; panics with `what` after two minutes.
fn wait_for(what: &str, done: impl FnMut() -> bool, log: impl Fn() -> String) {
    common::agent::wait_for(what, Duration::from_secs(120), done, log)
}

/// The records the centre holds of `agent`'s chain, by sequence.
fn site_records(srv: &Server, admin: &str, agent: &str) -> Vec<serde_json::Value> {
    let all = srv.get("/api/v1/evidence?tenant=acme", Some(admin)).json();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"] == agent)
        .cloned()
        .collect()
}

#[test]
fn a_sites_agent_backs_up_there_and_every_record_reaches_the_centre_once_and_in_order() {
    let ws = Workspace::empty(Store::Local);
    with_office(&ws);
    let at = chrono::Utc::now().to_rfc3339();
    let mut srv = centre(&ws, &at, "127.0.0.1:0");
    let listen = srv.base.trim_start_matches("http://").to_string();
    let admin = token(&ws, &["--role", "admin"]);
    let made = ws
        .lifeboat(&["site", "enroll-token", "acme-office", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", NOW)
        .ok();
    let dir = ws.path("agent");
    let enrolled = ws
        .lifeboat(&[
            "agent", "enroll", "--json", "--server", &srv.base, "--token",
        ])
        .arg(made.stdout.trim())
        .arg("--data-dir")
        .arg(&dir)
        .ok()
        .json();
    let id = enrolled["agent"].as_str().unwrap().to_string();

    // The agent fetches its assignment: the site's source only, no secrets, no other tenant.
    let mut agent = start_agent(&dir, &at);
    wait_for(
        "the agent's first backup",
        || agent.backups("office-nas") >= 1,
        || agent.log(),
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("assignment.json")).unwrap()).unwrap();
    let config = kept["config"].as_str().unwrap();
    assert!(config.contains("acme-office-share"), "{config}");
    assert!(kept["drills"]["office-drill"].is_string(), "{kept}");
    for elsewhere in ["acme-files", "bakery", "signing_key", "svc.key", "webhook"] {
        assert!(!config.contains(elsewhere), "{elsewhere} in {config}");
    }
    assert!(
        agent.log().contains("drill(s), but the agent holds no"),
        "{}",
        agent.log()
    );

    // The data went to the office's NAS, not through the centre; the centre's own daemon
    // left the site's source alone.
    assert!(ws.path("office-nas/acme").is_dir());
    assert!(!srv.log().contains("acme-office-share"), "{}", srv.log());

    // The records arrive at the centre, signed by the agent.
    wait_for(
        "the first record at the centre",
        || !site_records(&srv, &admin, &id).is_empty(),
        || agent.log(),
    );
    let first = &site_records(&srv, &admin, &id)[0];
    assert_eq!(first["kind"], "backup");
    assert_eq!(first["source"], "acme-office-share");
    assert_eq!(first["outcome"], "success");
    let cert = lifeboat::repo::crypto::PublicCert::load(&dir.join("agent.cert")).unwrap();
    lifeboat::repo::crypto::verify_detached(
        &cert,
        first["record"].as_str().unwrap().as_bytes(),
        first["signature"].as_str().unwrap().as_bytes(),
    )
    .unwrap();

    // A backup asked for at the centre reaches the site's agent, which runs it there; its
    // end comes back as the centre's job's.
    let before = agent.backups("office-nas");
    let job = srv.back_up_now("acme-office-share", &admin);
    assert_eq!(job["source"], "acme-office-share", "{job}");
    wait_for(
        "the agent's log of the backup asked for",
        || agent.backups("office-nas") > before && agent.log().contains("took 1 job(s)"),
        || agent.log(),
    );
    assert!(!srv.log().contains("job failed"), "{}", srv.log());

    // The centre stops for a while; the agent goes on backing up, its outbox filling.
    srv.stop();
    let before = agent.backups("office-nas");
    wait_for(
        "two backups while the centre is away",
        || agent.backups("office-nas") >= before + 2,
        || agent.log(),
    );
    assert!(
        agent.log().contains("failed: cannot reach the centre"),
        "{}",
        agent.log()
    );

    // Killed hard, it starts again from its last assignment and its outbox; now with a
    // drill key, it runs drills too.
    agent.kill();
    std::fs::copy(ws.path("keys/rec.key"), dir.join("drill.key")).unwrap();
    let agent = start_agent(&dir, &at);
    wait_for(
        "a backup after the restart",
        || agent.backups("office-nas") >= 1,
        || agent.log(),
    );
    assert!(
        agent.log().contains("working from the last assignment"),
        "{}",
        agent.log()
    );

    // The centre is back: every record arrives, once and in order, and the backlog empties.
    let srv = centre(&ws, &at, &listen);

    // A drill requested at the centre runs at the site, with the site's own drill key, and
    // the centre's plan of it is done when the agent says how it ended.
    let later = chrono::DateTime::parse_from_rfc3339(NOW).unwrap()
        + chrono::Duration::seconds(
            (chrono::Utc::now().fixed_offset()
                - chrono::DateTime::parse_from_rfc3339(&at).unwrap())
            .num_seconds()
            .max(0)
                * 600
                + 600,
        );
    let asked = srv.post_json(
        "/api/v1/drills",
        Some(&admin),
        &serde_json::json!({"spec": "office-drill", "at": later.to_rfc3339()}),
    );
    assert_eq!(asked.status, 201, "{}", asked.text());
    let drill = asked.json()["drill"]["id"].as_i64().unwrap();
    wait_for(
        "the site's drill done at the centre",
        || {
            srv.get(&format!("/api/v1/drills/{drill}"), Some(&admin))
                .json()["state"]
                == "done"
        },
        || agent.log(),
    );
    let row = srv
        .get(&format!("/api/v1/drills/{drill}"), Some(&admin))
        .json();
    assert_eq!(row["outcome"], "success", "{row}\n{}", agent.log());
    let local = lifeboat::catalog::Catalog::open(&dir)
        .unwrap()
        .evidence(Some("acme"))
        .unwrap()
        .len();
    assert!(local >= 4, "{local} records at the site");
    wait_for(
        "every record of the site at the centre",
        || site_records(&srv, &admin, &id).len() >= local,
        || agent.log(),
    );
    let records = site_records(&srv, &admin, &id);
    let sequences: Vec<u64> = records
        .iter()
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected, "each record once, in order");
    let mut previous: Option<String> = None;
    for r in &records {
        let record: serde_json::Value =
            serde_json::from_str(r["record"].as_str().unwrap()).unwrap();
        assert_eq!(record["previous"].as_str().map(str::to_string), previous);
        previous = Some(r["sha256"].as_str().unwrap().to_string());
    }
    wait_for(
        "an empty outbox reported",
        || {
            let sites = srv.get("/api/v1/sites", Some(&admin)).json();
            sites[0]["agents"][0]["backlog"] == 0
        },
        || agent.log(),
    );
    let (cookie, _) = srv.login(&admin);
    let page = srv.get_with_cookie("/tenants", &cookie).text();
    assert!(page.contains("data-backlog=\"0\""), "{page}");

    // The month's report rests on the site's records too, and its bundle carries what an
    // auditor needs to check them offline: the agent's certificate and the centre's signed
    // word that the agent works for the tenant.
    let bundle = srv.get(
        "/api/v1/reports/erp?period=2026-11&format=bundle",
        Some(&admin),
    );
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    let tar = ws.path("erp.tar");
    std::fs::write(&tar, &bundle.body).unwrap();
    let verify = |tar: &Path| {
        ws.lifeboat(&["report", "verify", "--json"])
            .arg(tar)
            .arg("--cert")
            .arg(ws.path("keys/svc.cert"))
            .run()
    };
    let verified = verify(&tar);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let checked = verified.json()["checked"].to_string();
    assert!(
        checked.contains("works for site 'acme-office'"),
        "{checked}"
    );
    assert!(checked.contains("signed by its agent"), "{checked}");
    let report = srv
        .get("/api/v1/reports/erp?period=2026-11", Some(&admin))
        .json();
    assert_eq!(report["sites"][0]["agent"], id.as_str(), "{report}");
    assert!(
        report["sites"][0]["records"].as_u64().unwrap() >= 4,
        "{report}"
    );
    assert!(
        report["days"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["source"] == "acme-office-share"),
        "{report}"
    );

    // An agent's record changed in the bundle is found out.
    let unpacked = ws.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    tool(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&unpacked),
    );
    let top = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let md = std::fs::read_to_string(top.join("VERIFY.md")).unwrap();
    assert!(md.contains(&format!("sites/{id}/agent.cert")), "{md}");
    let record = top.join(format!("sites/{id}/acme/00000001.json"));
    let site_dir = top.join(format!("sites/{id}"));
    tool(
        Command::new("sqv")
            .arg("--keyring")
            .arg(ws.path("keys/svc.cert"))
            .arg(site_dir.join("enrollment.json.asc"))
            .arg(site_dir.join("enrollment.json")),
    );
    tool(
        Command::new("sqv")
            .arg("--keyring")
            .arg(site_dir.join("agent.cert"))
            .arg(top.join(format!("sites/{id}/acme/00000001.json.asc")))
            .arg(&record),
    );
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replacen("success", "failure", 1)).unwrap();
    let forged = ws.path("forged.tar");
    tool(
        Command::new("tar")
            .arg("-cf")
            .arg(&forged)
            .arg("-C")
            .arg(&unpacked)
            .arg(top.file_name().unwrap()),
    );
    let refused = verify(&forged);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stdout.contains(&format!("sites/{id}")),
        "{}",
        refused.stdout
    );
    drop(agent);
}

#[test]
fn an_agent_killed_mid_push_pushes_again_and_the_centre_keeps_each_record_once() {
    let ws = Workspace::empty(Store::Local);
    with_office(&ws);
    let at = chrono::Utc::now().to_rfc3339();
    let srv = centre(&ws, &at, "127.0.0.1:0");
    let admin = token(&ws, &["--role", "admin"]);
    // The agent reaches the centre through a proxy that holds back the centre's answer to
    // its first push: the centre has taken the records, the agent never hears so.
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = common::proxy::Proxy::start(port, 0, 1);
    proxy.hold_answer_once("POST", "/api/v1/agent/evidence");
    let made = ws
        .lifeboat(&["site", "enroll-token", "acme-office", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", NOW)
        .ok();
    let dir = ws.path("agent");
    let id = ws
        .lifeboat(&["agent", "enroll", "--json", "--server"])
        .arg(proxy.endpoint())
        .arg("--token")
        .arg(made.stdout.trim())
        .arg("--data-dir")
        .arg(&dir)
        .ok()
        .json()["agent"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = start_agent(&dir, &at);
    wait_for(
        "the centre's answer to the first push held back",
        || proxy.count(|c| &c.held) == 1,
        || agent.log(),
    );
    agent.kill();
    let taken = site_records(&srv, &admin, &id).len();
    assert!(taken >= 1, "the centre kept the push it answered");

    // Started again, the agent pushes what it never heard acknowledged; the centre takes
    // it as the same records, and the rest after them.
    let agent = start_agent(&dir, &at);
    wait_for(
        "a push after the restart",
        || proxy.requests_matching("POST /api/v1/agent/evidence") >= 2,
        || agent.log(),
    );
    let local = || {
        lifeboat::catalog::Catalog::open(&dir)
            .unwrap()
            .evidence(Some("acme"))
            .unwrap()
            .len()
    };
    let before = local();
    assert!(
        before >= taken,
        "{before} records at the site, {taken} at the centre"
    );
    wait_for(
        "every record of the site at the centre",
        || site_records(&srv, &admin, &id).len() >= before,
        || agent.log(),
    );
    let sequences: Vec<u64> = site_records(&srv, &admin, &id)
        .iter()
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected, "each record once, in order");
    assert!(!agent.log().contains("refused"), "{}", agent.log());
    assert!(!srv.log().contains("fork"), "{}", srv.log());
}
