//! The HTTP API of `lifeboat serve`: tenant isolation on every route (refused changes are
//! audited), token roles, expiry and revocation, clear JSON errors for bad requests, the
//! OpenAPI document, metrics, a report bundle downloaded by a customer that verifies
//! offline, and schemathesis against the document. Abuse (guessing, slow clients, forged
//! requests) is in `api_abuse.rs`.

mod common;
use common::api::*;
use common::server::{Reply, Server};
use common::*;
use std::path::PathBuf;

#[test]
fn a_customer_never_sees_another_tenants_objects() {
    let s = setup();
    let (srv, acme) = (&s.server, Some(s.acme.as_str()));

    // The admin sees both tenants; the tests below are not vacuous.
    let all = srv.get("/api/v1/tenants", Some(&s.admin));
    assert_eq!(all.status, 200);
    assert!(all.text().contains("bakery") && all.text().contains("acme"));
    let evidence = srv
        .get("/api/v1/evidence?tenant=bakery", Some(&s.admin))
        .json();
    assert_eq!(evidence.as_array().unwrap().len(), 3);
    let snapshots = srv.get("/api/v1/snapshots", Some(&s.admin)).json();
    assert_eq!(snapshots.as_array().unwrap().len(), 2);
    let job = srv.send(
        "POST",
        "/api/v1/sources/bakery-files/backup",
        Some(&s.admin),
        None,
        b"",
    );
    assert_eq!(job.status, 202, "{}", job.text());
    let bakery_job = job.json()["job"].as_i64().unwrap();
    assert!(
        srv.get(&format!("/api/v1/jobs/{bakery_job}"), Some(&s.admin))
            .status
            == 200
    );

    // Lists: the customer's own objects, none of the other tenant's.
    for path in [
        "/api/v1/tenants",
        "/api/v1/contracts",
        "/api/v1/sources",
        "/api/v1/snapshots",
        "/api/v1/runs",
        "/api/v1/drills",
        "/api/v1/evidence",
        "/api/v1/evidence?tenant=bakery",
        "/api/v1/snapshots?source=bakery-files",
        "/api/v1/runs?source=bakery-files",
        "/api/v1/drills?contract=bakery-basic",
        "/api/v1/jobs",
        "/metrics",
    ] {
        let r = srv.get(path, acme);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let text = r.text();
        assert!(!text.contains("bakery"), "{path} shows bakery: {text}");
    }
    for path in [
        "/api/v1/tenants",
        "/api/v1/sources",
        "/api/v1/evidence",
        "/api/v1/snapshots",
    ] {
        assert!(srv.get(path, acme).text().contains("acme"), "{path}");
    }

    // Objects by id: as if they did not exist.
    let drill = s.bakery_drill;
    for (method, path, body) in [
        ("GET", "/api/v1/tenants/bakery".to_string(), None),
        ("GET", "/api/v1/contracts/bakery-basic".into(), None),
        ("GET", "/api/v1/sources/bakery-files".into(), None),
        ("POST", "/api/v1/sources/bakery-files/backup".into(), None),
        ("POST", "/api/v1/sources/bakery-vm/cold-backup".into(), None),
        ("GET", format!("/api/v1/drills/{drill}"), None),
        ("POST", format!("/api/v1/drills/{drill}/cancel"), None),
        (
            "POST",
            "/api/v1/drills".into(),
            Some(serde_json::json!({"spec": "bakery-drill", "at": "2027-07-01T08:00:00Z"})),
        ),
        ("GET", "/api/v1/evidence/bakery/1".into(), None),
        ("GET", "/api/v1/evidence/bakery/1/signature".into(), None),
        (
            "GET",
            "/api/v1/reports/bakery-basic?period=2026-11".into(),
            None,
        ),
        ("GET", format!("/api/v1/jobs/{bakery_job}"), None),
    ] {
        let r = match &body {
            Some(b) => srv.post_json(&path, acme, b),
            None => srv.send(method, &path, acme, None, b""),
        };
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("there is no"));
    }
    // The audit log is for staff.
    assert_eq!(srv.get("/api/v1/audit", acme).status, 403);
    // The bakery drill is still planned: the customer's cancel changed nothing.
    let d = srv
        .get(&format!("/api/v1/drills/{drill}"), Some(&s.admin))
        .json();
    assert_eq!(d["state"], "planned");
    // Each of those change attempts is in the audit log as a refusal.
    let audit = srv.get("/api/v1/audit", Some(&s.admin)).json();
    let refused: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["actor"].as_str().unwrap().contains("tenant acme")
                && a["outcome"] == "refused: not found for this token"
        })
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (action, target) in [
        ("backup now", "source bakery-files".to_string()),
        ("cold backup", "source bakery-vm".into()),
        ("cancel drill", format!("drill {drill}")),
        ("request drill", "drill spec bakery-drill".into()),
    ] {
        assert!(
            refused.contains(&(action.to_string(), target.clone())),
            "{action} {target} not audited: {refused:?}"
        );
    }

    // The same through the dashboard's session.
    let (cookie, _) = srv.login(&s.acme);
    let page = srv.get_with_cookie("/tenants/bakery", &cookie);
    assert_eq!(page.status, 404);
    assert!(!page.text().contains("recipes") && !page.text().contains("Bäckerei"));
    let own = srv.get_with_cookie("/tenants/acme", &cookie);
    assert_eq!(own.status, 200);
    assert!(own.text().contains("acme-files"));
    assert!(!own.text().contains("bakery"));
}

#[test]
fn roles_expiry_revocation_and_the_audit_log() {
    let s = setup();
    let srv = &s.server;
    let ws = &s.ws;

    // No token, a malformed one, an unknown one: 401 with a JSON error.
    let none = srv.get("/api/v1/sources", None);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert!(none.json()["error"].as_str().unwrap().contains("token"));
    assert_eq!(srv.get("/api/v1/sources", Some("nonsense")).status, 401);
    assert_eq!(
        srv.get("/api/v1/sources", Some("lb_000000000000_AAAA"))
            .status,
        401
    );

    // Expired: made a year ago, valid for an hour.
    let expired = ws
        .lifeboat(&[
            "token",
            "create",
            "--role",
            "operator",
            "--expires",
            "1h",
            "--config",
        ])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", "2025-11-01T00:00:00Z")
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(srv.get("/api/v1/sources", Some(&expired)).status, 401);

    // Revoked: works, then not.
    let operator = token(ws, &["--role", "operator", "--label", "night shift"]);
    assert_eq!(srv.get("/api/v1/sources", Some(&operator)).status, 200);
    let listed = ws
        .lifeboat(&["token", "list", "--json", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .ok()
        .json();
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "night shift")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        listed.to_string().find(&operator[16..]).is_none(),
        "the secret is not stored"
    );
    ws.lifeboat(&["token", "revoke", &id, "--config"])
        .arg(ws.path("lifeboat.toml"))
        .ok();
    let r = srv.get("/api/v1/sources", Some(&operator));
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("revoked"));

    // Roles.
    let auditor = token(ws, &["--role", "auditor", "--tenant", "acme"]);
    let acme = Some(s.acme.as_str());
    let request = serde_json::json!({"spec": "acme-drill", "at": "2027-03-01T08:00:00Z"});
    let r = srv.post_json("/api/v1/drills", Some(&auditor), &request);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("auditor"));
    assert_eq!(
        srv.send("POST", "/api/v1/sources/acme-files/backup", acme, None, b"")
            .status,
        403
    );
    let operator = token(ws, &["--role", "operator"]);
    assert_eq!(
        srv.send(
            "POST",
            "/api/v1/sources/bakery-vm/cold-backup",
            Some(&operator),
            None,
            b""
        )
        .status,
        403
    );
    // An admin's cold backup is accepted as a job; a source that is no VM is refused.
    let cold = srv.send(
        "POST",
        "/api/v1/sources/bakery-vm/cold-backup",
        Some(&s.admin),
        None,
        b"",
    );
    assert_eq!(cold.status, 202, "{}", cold.text());
    let job = cold.json()["job"].as_i64().unwrap();
    assert_eq!(
        cold.header("location"),
        Some(format!("/api/v1/jobs/{job}").as_str())
    );
    let status = srv
        .get(&format!("/api/v1/jobs/{job}"), Some(&s.admin))
        .json();
    assert_eq!(status["source"], "bakery-vm>cold");
    let not_vm = srv.send(
        "POST",
        "/api/v1/sources/acme-files/cold-backup",
        Some(&s.admin),
        None,
        b"",
    );
    assert_eq!(not_vm.status, 409);

    // A customer requests drills within the quota (2 a year), then is refused; cancels one.
    let first = srv.post_json("/api/v1/drills", acme, &request);
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["left_in_year"], 1);
    let second = srv.post_json(
        "/api/v1/drills",
        acme,
        &serde_json::json!({"spec": "acme-drill", "at": "2027-04-01T08:00:00Z"}),
    );
    assert_eq!(second.status, 201);
    let third = srv.post_json(
        "/api/v1/drills",
        acme,
        &serde_json::json!({"spec": "acme-drill", "at": "2027-05-01T08:00:00Z"}),
    );
    assert_eq!(third.status, 409, "{}", third.text());
    assert!(
        third.json()["error"]
            .as_str()
            .unwrap()
            .contains("allows 2 test restore(s) in 2027"),
        "{}",
        third.text()
    );
    let id = first.json()["drill"]["id"].as_i64().unwrap();
    let cancelled = srv.send(
        "POST",
        &format!("/api/v1/drills/{id}/cancel"),
        acme,
        None,
        b"",
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["state"], "cancelled");
    let contract = srv.get("/api/v1/contracts/erp", acme).json();
    assert_eq!(contract["test_restores_left_this_year"], 2, "{contract}");

    // Every change is in the audit log: who, what, when, and how it ended.
    let log = srv.get("/api/v1/audit", Some(&s.admin)).json();
    let lines: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} | {} | {} | {}",
                e["actor"], e["action"], e["target"], e["outcome"]
            )
        })
        .collect();
    let has = |needle: &[&str]| lines.iter().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        has(&["customer, tenant acme", "request drill", "refused"]),
        "{lines:#?}"
    );
    assert!(
        has(&["customer, tenant acme", "cancel drill", "ok"]),
        "{lines:#?}"
    );
    assert!(
        has(&["(admin)", "cold backup", "bakery-vm", "ok: job"]),
        "{lines:#?}"
    );
    assert!(
        has(&["(auditor, tenant acme)", "request drill", "refused: role"]),
        "{lines:#?}"
    );
    assert!(has(&["cli (", "revoke token"]), "{lines:#?}");
    assert!(log[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn bad_requests_get_clear_json_errors() {
    let s = setup();
    let srv = &s.server;
    let admin = Some(s.admin.as_str());
    let cases: Vec<(u16, &str, Reply)> = vec![
        (
            400,
            "not valid JSON",
            srv.send("POST", "/api/v1/drills", admin, Some("application/json"), b"{\"spec\": "),
        ),
        (
            422,
            "unknown field",
            srv.post_json(
                "/api/v1/drills",
                admin,
                &serde_json::json!({"spec": "acme-drill", "at": "2027-03-01T08:00:00Z", "force": true}),
            ),
        ),
        (
            422,
            "at",
            srv.post_json("/api/v1/drills", admin, &serde_json::json!({"spec": "acme-drill", "at": "soon"})),
        ),
        (
            415,
            "Content-Type: application/json",
            srv.send("POST", "/api/v1/drills", admin, Some("text/plain"), b"{}"),
        ),
        (
            413,
            "larger than",
            srv.send(
                "POST",
                "/api/v1/drills",
                admin,
                Some("application/json"),
                format!("{{\"spec\": \"{}\"}}", "x".repeat(100_000)).as_bytes(),
            ),
        ),
        (400, "bad id", srv.get("/api/v1/drills/abc", admin)),
        (400, "bad id", srv.get("/api/v1/evidence/acme/-1", admin)),
        (400, "bad query", srv.get("/api/v1/snapshots?sauce=x", admin)),
        (400, "is not a month", srv.get("/api/v1/reports/erp?period=2026-Q9", admin)),
        (400, "bad query", srv.get("/api/v1/reports/erp", admin)),
        (400, "not json, csv", srv.get("/api/v1/reports/erp?period=2026&format=pdf", admin)),
        (404, "no such", srv.get("/api/v1/nothing-here", admin)),
        (404, "there is no drill spec", srv.post_json(
            "/api/v1/drills",
            admin,
            &serde_json::json!({"spec": "nope", "at": "2027-03-01T08:00:00Z"}),
        )),
    ];
    for (status, says, reply) in cases {
        assert_eq!(reply.status, status, "{says}: {}", reply.text());
        let body = reply.json();
        assert_eq!(body["status"], status);
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "expected '{says}' in {body}"
        );
    }
}

#[test]
fn openapi_document_metrics_and_a_bundle_that_verifies() {
    let s = setup();
    let srv = &s.server;
    let acme = Some(s.acme.as_str());

    let doc = srv.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/tenants",
        "/api/v1/tenants/{tenant}",
        "/api/v1/contracts/{contract}",
        "/api/v1/sources/{source}/backup",
        "/api/v1/sources/{source}/cold-backup",
        "/api/v1/snapshots",
        "/api/v1/runs",
        "/api/v1/drills",
        "/api/v1/drills/{id}",
        "/api/v1/drills/{id}/cancel",
        "/api/v1/evidence/{tenant}/{sequence}/signature",
        "/api/v1/reports/{contract}",
        "/api/v1/jobs/{id}",
        "/api/v1/audit",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(paths["/api/v1/drills"]["post"].is_object());
    assert!(paths["/api/v1/drills/{id}/cancel"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every GET route of the document answers (not 404 for the route itself).
    for (p, item) in paths {
        if item.get("get").is_none() || p.contains('{') {
            continue;
        }
        if p.starts_with("/api/v1/agent/") {
            // Agents' routes take only requests signed by an enrolled agent (tests/agents.rs).
            assert_eq!(srv.get(p, Some(&s.admin)).status, 401, "{p}");
            continue;
        }
        let r = srv.get(
            &format!(
                "{p}{}",
                if p.ends_with("reports") {
                    "?period=2026"
                } else {
                    ""
                }
            ),
            Some(&s.admin),
        );
        assert_eq!(r.status, 200, "{p}: {}", r.text());
    }

    // An immediate backup through the API, run by the daemon.
    let job = srv.send(
        "POST",
        "/api/v1/sources/acme-files/backup",
        Some(&s.admin),
        None,
        b"",
    );
    assert_eq!(job.status, 202, "{}", job.text());
    let status = job.json()["status"].as_str().unwrap().to_string();
    let state = srv.finished_job(&status, &s.admin, std::time::Duration::from_secs(120));
    assert_eq!(state["state"], "done", "{state} {}", srv.log());
    let source = srv.get("/api/v1/sources/acme-files", acme).json();
    assert_eq!(source["rpo_state"], "ok", "{source}");
    assert_eq!(source["last_result"], "success");
    assert!(source["next_run"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00.000Z"));

    let metrics = srv.get("/metrics", Some(&s.admin));
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("lifeboat_backup_rpo_compliant{tenant=\"acme\",source=\"acme-files\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lifeboat_backup_runs_total{tenant=\"acme\",source=\"acme-files\",result=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lifeboat_backup_last_success_timestamp_seconds"),
        "{text}"
    );
    assert!(text.contains("# EOF"));
    assert_eq!(srv.get("/metrics", None).status, 401);

    // The customer downloads November's bundle; it verifies offline.
    let bundle = srv.get("/api/v1/reports/erp?period=2026-11&format=bundle", acme);
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    assert_eq!(bundle.header("content-type"), Some("application/x-tar"));
    let path = s.ws.path("erp.tar");
    std::fs::write(&path, &bundle.body).unwrap();
    let verify =
        s.ws.lifeboat(&["report", "verify"])
            .arg(&path)
            .arg("--cert")
            .arg(s.ws.path("keys/svc.cert"))
            .run();
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify.stderr.contains("4 evidence record(s)"),
        "{}",
        verify.stderr
    );
    let json = srv.get("/api/v1/reports/erp?period=2026-11", acme).json();
    assert_eq!(json["summary"]["backups_failed"], 1);
    let csv = srv.get("/api/v1/reports/erp?period=2026-11&format=csv", acme);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // Evidence records download with their signatures, which stock sqv checks.
    let record = srv.get("/api/v1/evidence/acme/2", acme);
    assert_eq!(record.status, 200);
    let sig = srv.get("/api/v1/evidence/acme/2/signature", acme);
    std::fs::write(s.ws.path("r.json"), &record.body).unwrap();
    std::fs::write(s.ws.path("r.json.asc"), &sig.body).unwrap();
    tool(
        std::process::Command::new("sqv")
            .arg("--keyring")
            .arg(s.ws.path("keys/svc.cert"))
            .arg(s.ws.path("r.json.asc"))
            .arg(s.ws.path("r.json")),
    );
}

/// schemathesis (from tests/run.sh's venv, or `LIFEBOAT_TEST_SCHEMATHESIS`).
fn schemathesis() -> PathBuf {
    std::env::var_os("LIFEBOAT_TEST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/test-tools/schemathesis/bin/schemathesis")
        })
}

/// Runs schemathesis against the server's OpenAPI document with `token`; returns the count
/// of answers by (method, status) from its HAR report.
fn fuzz(
    ws: &Workspace,
    srv: &Server,
    token: &str,
    name: &str,
) -> std::collections::BTreeMap<(String, u16), usize> {
    let tool = schemathesis();
    assert!(
        tool.exists(),
        "{} is missing; run tests/run.sh, which installs it",
        tool.display()
    );
    let dir = ws.path(&format!("schemathesis-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let run = std::process::Command::new(&tool)
        .current_dir(&dir)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", srv.base))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Every check but one: the server refuses values a schema cannot rule out (month 42
        // in a period, a drill spec that does not exist), so schema-valid is not always valid.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        // The agent's own routes take requests signed with its key, never a token: every
        // case would be a 401, each slowed by the login throttle (about a second apiece at
        // the end). tests/agents.rs tests them with signed requests, forged and replayed.
        .args([
            "--exclude-path-regex",
            "^/api/v1/agent/(jobs|check-in|assignment|evidence)",
        ])
        .args(["--max-examples", "25", "--seed", "1", "--no-color"])
        .args(["--report", "har", "--report-dir", "report"])
        .output()
        .expect("run schemathesis");
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis ({name}) found problems:\n{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let har = std::fs::read_dir(dir.join("report"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a HAR report");
    let har: serde_json::Value = serde_json::from_slice(&std::fs::read(har).unwrap()).unwrap();
    let mut answers = std::collections::BTreeMap::new();
    for entry in har["log"]["entries"].as_array().unwrap() {
        let method = entry["request"]["method"].as_str().unwrap().to_string();
        let status = entry["response"]["status"].as_u64().unwrap() as u16;
        *answers.entry((method, status)).or_insert(0) += 1;
    }
    answers
}

#[test]
fn the_server_keeps_to_its_openapi_document() {
    let mut s = setup();
    // schemathesis sends bad credentials to every operation on purpose (and expects 401):
    // the lock-out, tested on its own in api_abuse.rs, is moved out of its way.
    restart_with(&mut s, "", "lock_after = 100000");
    for (name, token) in [("admin", &s.admin), ("customer", &s.acme)] {
        let answers = fuzz(&s.ws, &s.server, token, name);
        let count = |f: &dyn Fn(&str, u16) -> bool| {
            answers
                .iter()
                .filter(|((m, st), _)| f(m, *st))
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        // No server errors; and the run reached the handlers rather than the login throttle.
        assert_eq!(count(&|_, st| st >= 500), 0, "{name}: {answers:?}");
        assert_eq!(count(&|_, st| st == 429), 0, "{name}: {answers:?}");
        assert!(
            count(&|m, st| m == "GET" && st == 200) > 50,
            "{name}: {answers:?}"
        );
        assert!(count(&|_, st| st == 422) > 0, "{name}: {answers:?}");
    }
    // The admin's run triggered backups and requested drills; the customer's could request
    // drills of its own tenant only.
    let audit = s.server.get("/api/v1/audit", Some(&s.admin)).json();
    let audit = audit.as_array().unwrap();
    let done = |a: &serde_json::Value| a["outcome"].as_str().is_some_and(|o| o.starts_with("ok"));
    assert!(
        audit.iter().any(|a| a["action"] == "backup now" && done(a)),
        "{audit:?}"
    );
    assert!(
        !audit.iter().any(|a| {
            a["actor"]
                .as_str()
                .is_some_and(|w| w.contains("tenant acme"))
                && a["target"].as_str().is_some_and(|t| t.contains("bakery"))
                && done(a)
        }),
        "{audit:?}"
    );
}
