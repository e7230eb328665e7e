//! Sites and their agents: an admin makes a one-time enrollment token for a site (CLI or
//! API); the agent at the site enrolls with it, gets a statement binding its key to the site
//! and tenant signed by the service, and pins the centre's certificate. A token enrolls one
//! agent once, before it expires; an agent cut off before it saved the answer gets the same
//! answer again.

mod common;
use common::api::{config, serve, token, NOW};
use common::*;
use lifeboat::repo::crypto::{self, PublicCert};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn with_site(ws: &Workspace) {
    config(ws);
    let path = ws.path("lifeboat.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\n[sites.acme-office]\ntenant = \"acme\"\nname = \"ACME head office\"\n");
    fs::write(&path, text).unwrap();
}

/// `lifeboat site enroll-token acme-office` made at `now` for `expires`.
fn enroll_token(ws: &Workspace, now: &str, expires: &str) -> String {
    let run = ws
        .lifeboat(&[
            "site",
            "enroll-token",
            "acme-office",
            "--expires",
            expires,
            "--config",
        ])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", now)
        .ok();
    run.stdout.trim().to_string()
}

fn enroll(ws: &Workspace, server: &str, token: &str, dir: &Path, extra: &[&str]) -> Run {
    let mut c = ws.lifeboat(&[
        "agent", "enroll", "--json", "--server", server, "--token", token,
    ]);
    c.arg("--data-dir").arg(dir).args(extra);
    c.run()
}

#[test]
fn an_agent_enrolls_once_with_its_sites_token_and_pins_the_centre() {
    let ws = Workspace::empty(Store::Local);
    with_site(&ws);
    let admin = token(&ws, &["--role", "admin"]);
    let operator = token(&ws, &["--role", "operator"]);
    let started = std::time::Instant::now();
    let srv = serve(&ws);
    let svc = PublicCert::load(&ws.path("keys/svc.cert")).unwrap();
    let fingerprint = svc.fingerprint().to_hex();

    // Enrolled, with the centre's fingerprint checked; the key stays private to the agent.
    let one = ws.path("agent-one");
    let first = enroll_token(&ws, NOW, "24h");
    let done = enroll(
        &ws,
        &srv.base,
        &first,
        &one,
        &["--centre-fingerprint", &fingerprint],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    let done = done.json();
    assert_eq!(done["site"], "acme-office");
    assert_eq!(done["tenant"], "acme");
    assert_eq!(done["centre"], fingerprint.as_str());
    let mode = fs::metadata(one.join("agent.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_cert = PublicCert::load(&one.join("agent.cert")).unwrap();
    assert_eq!(done["agent"], key_cert.fingerprint().to_hex().as_str());
    let pinned = PublicCert::load(&one.join("centre.cert")).unwrap();
    assert_eq!(pinned.fingerprint().to_hex(), fingerprint);
    let statement = done["statement"].as_str().unwrap();
    crypto::verify_detached(
        &svc,
        statement.as_bytes(),
        done["signature"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    let said: serde_json::Value = serde_json::from_str(statement).unwrap();
    assert_eq!(said["agent"], done["agent"]);
    assert_eq!(said["site"], "acme-office");
    assert_eq!(said["tenant"], "acme");

    // The centre knows it; staff see it, customers do not.
    let sites = srv.get("/api/v1/sites", Some(&admin)).json();
    assert_eq!(sites[0]["id"], "acme-office");
    assert_eq!(sites[0]["tenant"], "acme");
    assert_eq!(sites[0]["agents"][0]["id"], done["agent"], "{sites}");
    assert_eq!(sites[0]["agents"][0]["version"], env!("CARGO_PKG_VERSION"));
    let acme = token(&ws, &["--role", "customer", "--tenant", "acme"]);
    assert_eq!(srv.get("/api/v1/sites", Some(&acme)).status, 403);

    // Once only: another agent with the same token is refused, and nothing is saved there.
    let two = ws.path("agent-two");
    let again = enroll(&ws, &srv.base, &first, &two, &[]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("was used on"), "{}", again.stderr);
    assert!(!two.join("enrollment.json").exists());
    // The enrolled agent does not enroll again.
    let twice = enroll(&ws, &srv.base, &first, &one, &[]);
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("enrolls once"), "{}", twice.stderr);
    // Cut off before it saved the answer: the same key gets the same answer.
    fs::remove_file(one.join("enrollment.json")).unwrap();
    let resumed = enroll(&ws, &srv.base, &first, &one, &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed.json()["statement"], done["statement"]);

    // Unknown and expired tokens; a centre that signs with another key; plain http elsewhere.
    let bad = enroll(&ws, &srv.base, "lbe_0123456789ab_nope", &two, &[]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("not a valid enrollment token"),
        "{}",
        bad.stderr
    );
    let old = enroll_token(&ws, "2026-11-20T00:00:00Z", "1h");
    let expired = enroll(&ws, &srv.base, &old, &two, &[]);
    assert_eq!(expired.code, 1);
    assert!(
        expired.stderr.contains("expired on 2026-11-20T01:00:00"),
        "{}",
        expired.stderr
    );
    let third = enroll_token(&ws, NOW, "24h");
    let wrong = "0000000000000000000000000000000000000000";
    let mistrusted = enroll(
        &ws,
        &srv.base,
        &third,
        &two,
        &["--centre-fingerprint", wrong],
    );
    assert_eq!(mistrusted.code, 1);
    assert!(
        mistrusted.stderr.contains("not with the expected"),
        "{}",
        mistrusted.stderr
    );
    assert!(!two.join("enrollment.json").exists() && !two.join("centre.cert").exists());
    let plain = enroll(&ws, "http://lifeboat.example", &third, &two, &[]);
    assert_eq!(plain.code, 1);
    assert!(plain.stderr.contains("HTTPS"), "{}", plain.stderr);
    // With the right fingerprint the same key finishes what the check stopped.
    let trusted = enroll(
        &ws,
        &srv.base,
        &third,
        &two,
        &["--centre-fingerprint", &fingerprint],
    );
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);

    // Tokens from the API: admins only, for sites that exist.
    let path = "/api/v1/sites/acme-office/enroll-token?expires=2h";
    assert_eq!(
        srv.send("POST", path, Some(&operator), None, b"").status,
        403
    );
    let unknown = srv.send(
        "POST",
        "/api/v1/sites/nowhere/enroll-token",
        Some(&admin),
        None,
        b"",
    );
    assert_eq!(unknown.status, 404);
    let made = srv.send("POST", path, Some(&admin), None, b"");
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    // Two hours from the service's now, which its clock puts at NOW when it started.
    let expires = chrono::DateTime::parse_from_rfc3339(made["expires"].as_str().unwrap()).unwrap();
    let earliest = chrono::DateTime::parse_from_rfc3339(NOW).unwrap() + chrono::Duration::hours(2);
    let latest = earliest + chrono::Duration::from_std(started.elapsed()).unwrap();
    assert!(earliest <= expires && expires <= latest, "{made}");
    let three = ws.path("agent-three");
    let by_api = enroll(&ws, &srv.base, made["token"].as_str().unwrap(), &three, &[]);
    assert_eq!(by_api.code, 0, "{}", by_api.stderr);

    // Revoked: listed so, and said once.
    let id = done["agent"].as_str().unwrap();
    let revoke = |ws: &Workspace| {
        ws.lifeboat(&["site", "revoke-agent", id, "--config"])
            .arg(ws.path("lifeboat.toml"))
            .run()
    };
    assert_eq!(revoke(&ws).code, 0);
    let twice = revoke(&ws);
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("revoked already"), "{}", twice.stderr);
    let listed = ws
        .lifeboat(&["site", "list", "--json", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .ok()
        .json();
    let agents = listed[0]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{listed}");
    let revoked = agents.iter().find(|a| a["id"] == id).unwrap();
    assert!(revoked["revoked"].is_string(), "{listed}");

    // Every attempt is in the audit log.
    let audit = srv.get("/api/v1/audit", Some(&admin)).json();
    let enrolls: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "enroll agent")
        .collect();
    assert!(enrolls.iter().any(|e| e["outcome"] == "ok"), "{audit}");
    assert!(
        enrolls
            .iter()
            .any(|e| e["outcome"].as_str().unwrap().contains("was used on")),
        "{audit}"
    );
}

#[test]
fn sites_name_a_tenant_and_an_id_of_the_right_shape() {
    let ws = Workspace::empty(Store::Local);
    config(&ws);
    let path = ws.path("lifeboat.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(
        "\n[sites.\"acme office\"]\ntenant = \"acme\"\n\n[sites.far]\ntenant = \"nobody\"\n",
    );
    fs::write(&path, text).unwrap();
    let run = ws
        .lifeboat(&["config", "check", "--config"])
        .arg(&path)
        .run();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("site id 'acme office'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("site 'far' names tenant 'nobody'"),
        "{}",
        run.stderr
    );
    with_site(&ws);
    let unknown = ws
        .lifeboat(&["site", "enroll-token", "nowhere", "--config"])
        .arg(&path)
        .run();
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("there is no site 'nowhere'"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn an_agents_signed_requests_are_taken_once_and_never_after_it_is_revoked() {
    let ws = Workspace::empty(Store::Local);
    with_site(&ws);
    let admin = token(&ws, &["--role", "admin"]);
    // The service and the agent on the machine's own clock: skew is what the test makes it.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(ws.path("lifeboat.toml"));
    let srv = common::server::Server::start(cmd);
    let dir = ws.path("agent");
    let now = chrono::Utc::now().to_rfc3339();
    let made = enroll(&ws, &srv.base, &enroll_token(&ws, &now, "1h"), &dir, &[]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let id = made.json()["agent"].as_str().unwrap().to_string();
    let check_in = |extra_env: Option<&str>| {
        let mut c = ws.lifeboat(&["agent", "check-in", "--json", "--data-dir"]);
        c.arg(&dir);
        if let Some(at) = extra_env {
            c.env("LIFEBOAT_NOW", at);
        }
        c.run()
    };

    // Checked in: the centre knows it, and notes when and with which version.
    let ok = check_in(None);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let answer = ok.json();
    assert_eq!(answer["agent"], id.as_str());
    assert_eq!(answer["site"], "acme-office");
    assert!(
        answer["clock_skew_ms"].as_i64().unwrap().abs() < 60_000,
        "{answer}"
    );
    let sites = srv.get("/api/v1/sites", Some(&admin)).json();
    let agent = &sites[0]["agents"][0];
    assert!(agent["last_contact"].is_string(), "{sites}");
    assert!(agent["clock_skew_ms"].is_i64(), "{sites}");

    // The dashboard shows the site with its agent, version and last contact.
    let (cookie, _) = srv.login(&admin);
    let page = srv.get_with_cookie("/tenants", &cookie).text();
    assert!(page.contains(&format!("data-agent=\"{id}\"")), "{page}");
    assert!(
        page.contains(env!("CARGO_PKG_VERSION")) && page.contains("ago"),
        "{page}"
    );

    // A clock an hour behind is refused, and told so.
    let behind = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let skewed = check_in(Some(&behind));
    assert_eq!(skewed.code, 1);
    assert!(
        skewed.stderr.contains("behind the centre's"),
        "{}",
        skewed.stderr
    );

    // A captured request is not taken twice; a changed one not at all; unsigned neither.
    let key = lifeboat::repo::crypto::SecretKey::load(&dir.join("agent.key")).unwrap();
    let path = "/api/v1/agent/check-in";
    let signed =
        lifeboat::agent::request::sign(&key, "GET", path, b"", chrono::Utc::now()).unwrap();
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(srv.get_with(path, &headers).status, 200);
    let replayed = srv.get_with(path, &headers);
    assert_eq!(replayed.status, 401);
    assert!(
        replayed.text().contains("seen before"),
        "{}",
        replayed.text()
    );
    let signed =
        lifeboat::agent::request::sign(&key, "GET", path, b"", chrono::Utc::now()).unwrap();
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let changed = srv.get_with(&format!("{path}?x=1"), &headers);
    assert_eq!(changed.status, 401);
    assert!(
        changed.text().contains("bad signature"),
        "{}",
        changed.text()
    );
    assert_eq!(srv.get(path, None).status, 401);

    // 'agent run' checks in at its pace (seen at the centre) and stops at SIGTERM.
    let contact = |srv: &common::server::Server| {
        let sites = srv.get("/api/v1/sites", Some(&admin)).json();
        sites[0]["agents"][0]["last_contact"].clone()
    };
    let run_agent = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["agent", "run", "--every", "1s", "--data-dir"])
            .arg(&dir)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let agent = run_agent();
    let mut seen = vec![contact(&srv)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < 3 {
        let now = contact(&srv);
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no check-ins: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let stopped = agent.wait_with_output().unwrap();
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );

    // Revoked: refused from the next request on; a running agent stops.
    ws.lifeboat(&["site", "revoke-agent", &id, "--config"])
        .arg(ws.path("lifeboat.toml"))
        .ok();
    let cut_off = check_in(None);
    assert_eq!(cut_off.code, 1);
    assert!(
        cut_off.stderr.contains("was revoked on"),
        "{}",
        cut_off.stderr
    );
    let agent = run_agent().wait_with_output().unwrap();
    assert_eq!(agent.status.code(), Some(1));
    let said = String::from_utf8_lossy(&agent.stderr);
    assert!(said.contains("refuses this agent"), "{said}");
}

/// The unit file in docs/ is one systemd takes (with the binary where this build has it).
#[test]
fn the_agents_systemd_unit_verifies() {
    let ws = Workspace::empty(Store::Local);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lifeboat-agent.service");
    let unit = fs::read_to_string(docs)
        .unwrap()
        .replace("/usr/local/bin/lifeboat", env!("CARGO_BIN_EXE_lifeboat"));
    let path = ws.path("lifeboat-agent.service");
    fs::write(&path, unit).unwrap();
    tool(
        std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path),
    );
}

#[test]
fn a_site_silent_past_the_limit_is_an_incident_once() {
    let ws = Workspace::empty(Store::Local);
    with_site(&ws);
    let hook = common::hook::Hook::start();
    let path = ws.path("lifeboat.toml");
    let text = fs::read_to_string(&path).unwrap().replacen(
        "[service]\n",
        &format!(
            "[service]\nsite_silence = \"10m\"\nwebhook = \"{}\"\n",
            hook.url
        ),
        1,
    );
    fs::write(&path, text).unwrap();
    let admin = token(&ws, &["--role", "admin"]);
    // A minute of the service's time each second: ten silent minutes pass in about ten.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&path)
        .env("LIFEBOAT_CLOCK_START", NOW)
        .env("LIFEBOAT_CLOCK_SPEED", "60");
    let srv = common::server::Server::start(cmd);
    let made = enroll(
        &ws,
        &srv.base,
        &enroll_token(&ws, NOW, "24h"),
        &ws.path("agent"),
        &[],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);

    // The agent never checks in after enrolling: the webhook hears of it.
    let call = hook.next();
    assert_eq!(call["event"], "incident");
    assert_eq!(call["kind"], "site");
    assert_eq!(call["tenant"], "acme");
    assert_eq!(call["severity"], "high");
    let summary = call["summary"].as_str().unwrap();
    assert!(summary.contains("site acme-office is silent"), "{summary}");

    // Once per silence: after the loop has gone round again (a backup run to its end),
    // nothing more.
    srv.back_up_now("acme-files", &admin);
    assert!(hook.is_quiet());
    let listed = ws
        .lifeboat(&["evidence", "list", "--tenant", "acme", "--json"])
        .ok()
        .json();
    let site_records: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"]["kind"] == "site")
        .collect();
    assert_eq!(site_records.len(), 1, "{listed}");

    // Signed and chained like every record.
    let out = ws.path("evidence");
    ws.lifeboat(&["evidence", "export", "--tenant", "acme", "--out"])
        .arg(&out)
        .ok();
    ws.lifeboat(&["evidence", "verify", "--cert"])
        .arg(ws.path("keys/svc.cert"))
        .arg(out.join("acme"))
        .ok();
}
