//! Two `lifeboat serve` instances on one PostgreSQL catalog, each with a data directory of its
//! own and a clock 60 times faster, and 200 sources backed up daily into one repository. Every slot runs exactly once, and the tenant's evidence chain does not fork.
//! The instance running the day's largest backup is killed with -9 in the middle of it: the
//! other takes the job back once its lease runs out, and runs it. A backup asked for at one
//! instance wakes the site's agent waiting at the other. Synchronisation is by the
//! instances' log lines, their metrics and the catalog's rows, never by sleeping.

mod common;
use common::agent::{wait_for, Agent};
use common::api::{token, with_office};
use common::postgres::{PgServer, SUPERUSER_PASSWORD};
use common::server::Server;
use common::*;
use std::fs;
use std::time::Duration;

const SOURCES: usize = 200;
/// The one large source: its backup lasts long enough to be killed in the middle of.
const BIG: &str = "z-big";

fn config(ws: &Workspace, pg: &PgServer) -> std::path::PathBuf {
    let mut text = format!(
        r#"
[service]
time_zone = "UTC"
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
workers = 2
jitter = "0s"
prune = "never"
catalog = "postgres://postgres@127.0.0.1:{port}/lifeboat"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME"

[contracts.files]
tenant = "acme"
rpo = "1d"
rto = "4h"
"#,
        keys = ws.path("keys").display(),
        repo = ws.path("repo").display(),
        port = pg.port,
    );
    let source = |name: &str, path: &std::path::Path| {
        format!(
            "\n[sources.{name}]\ntenant = \"acme\"\ncontract = \"files\"\nkind = \"files\"\n\
             paths = [\"{}\"]\ntier = \"30/1\"\ntargets = [\"nas\"]\n",
            path.display()
        )
    };
    for i in 0..SOURCES - 1 {
        text.push_str(&source(&format!("s{i:03}"), &ws.path("small")));
    }
    text.push_str(&source(BIG, &ws.path("big")));
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

fn instance(ws: &Workspace, cfg: &std::path::Path, name: &str) -> Agent {
    let mut c = ws.lifeboat(&["serve", "--listen", "127.0.0.1:0", "--config"]);
    c.arg(cfg)
        .env("LIFEBOAT_DATA_DIR", ws.path(name))
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        // Ten seconds before the day's slot when the instance first reads it, however long
        // it took to start: each plans the slot ahead of it.
        .env("LIFEBOAT_CLOCK_START", "2026-11-23T23:59:50Z")
        .env("LIFEBOAT_CLOCK_SPEED", "60");
    Agent::start(&mut c.0)
}

/// One number from the catalog.
fn count(pg: &PgServer, sql: &str) -> usize {
    pg.psql("lifeboat", sql).trim().parse().unwrap()
}

#[test]
fn two_instances_run_every_slot_once_and_take_over_a_killed_ones_job() {
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE lifeboat;");
    let ws = Workspace::empty(Store::Local);
    fs::create_dir_all(ws.path("small")).unwrap();
    for i in 0..3 {
        fs::write(ws.path(&format!("small/f{i}")), format!("file {i}\n")).unwrap();
    }
    fs::create_dir_all(ws.path("big")).unwrap();
    random_file(&ws.path("big/disk.img"), 256 << 20, 7);
    let cfg = config(&ws, &pg);

    let mut a = instance(&ws, &cfg, "data-a");
    let mut b = instance(&ws, &cfg, "data-b");

    // The large backup starts on one of them: that one is killed in the middle of it.
    let started = format!("started: {BIG} slot");
    wait_for(
        "the large backup's start",
        Duration::from_secs(600),
        || a.log().contains(&started) || b.log().contains(&started),
        || format!("--- a ---\n{}\n--- b ---\n{}", a.log(), b.log()),
    );
    let (killed, survivor) = if a.log().contains(&started) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // Its job is claimed; the kill comes once its backup is under way (the repository's turn
    // is the large one's then, so no other backup of that instance is in the middle).
    wait_for(
        "the large backup under way",
        Duration::from_secs(600),
        || {
            count(
                &pg,
                &format!(
                    "SELECT count(*) FROM runs WHERE source = '{BIG}' AND result = 'running';"
                ),
            ) == 1
        },
        || killed.log(),
    );
    killed.kill();
    let killed_log = killed.log();
    assert!(
        !killed_log
            .lines()
            .any(|l| l.contains(" done: ") && l.contains(BIG)),
        "the large backup ended before the kill; make it larger:\n{killed_log}"
    );
    let survivor_log = || survivor.log();
    wait_for(
        "every slot done",
        Duration::from_secs(600),
        || {
            count(
                &pg,
                "SELECT count(*) FROM jobs WHERE state = 'done' AND source NOT LIKE '%>%';",
            ) == SOURCES
        },
        survivor_log,
    );
    let log = survivor.log();
    assert!(
        log.lines()
            .any(|l| l.contains("was taken back") && l.contains("stopped renewing its lease")),
        "{log}"
    );
    // Both worked while both ran.
    for l in [&killed_log, &log] {
        assert!(l.contains(" started: s"), "{killed_log}\n---\n{log}");
    }

    // One job per source for the day, each run once: one successful run each, and the
    // killed instance's run of the large one ended as cut off.
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM jobs WHERE source NOT LIKE '%>%';"
        ),
        SOURCES
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM (SELECT job FROM runs WHERE result = 'success' \
             GROUP BY job HAVING count(*) > 1) twice;"
        ),
        0
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(DISTINCT job) FROM runs WHERE result = 'success';"
        ),
        SOURCES
    );
    assert_eq!(
        count(
            &pg,
            &format!("SELECT attempts FROM jobs WHERE source = '{BIG}';")
        ),
        2
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM runs WHERE result = 'running';"),
        0,
        "the killed run is ended with its job"
    );
    assert_eq!(
        count(
            &pg,
            &format!(
                "SELECT count(*) FROM runs WHERE source = '{BIG}' AND result = 'failure' \
                 AND error LIKE 'taken over: %stopped renewing its lease%';"
            )
        ),
        1
    );

    // One chain, each backup in it once, and it verifies from the repository.
    let chain = count(&pg, "SELECT count(*) FROM evidence WHERE tenant = 'acme';");
    assert!(chain >= SOURCES, "{chain} records");
    let repo = ws.path("repo/acme");
    ws.lifeboat(&["evidence", "verify", "--repo"])
        .arg(&repo)
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .ok();
    let check = ws
        .lifeboat(&["check", "--repo"])
        .arg(&repo)
        .arg("--key")
        .arg(ws.key())
        .arg("--signer")
        .arg(ws.path("keys/svc.cert"))
        .run();
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
}

/// One value of an instance's `/metrics`.
fn metric(srv: &Server, admin: &str, name: &str) -> i64 {
    let text = srv.get("/metrics", Some(admin)).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn a_backup_asked_for_at_one_instance_wakes_the_agent_waiting_at_another() {
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE lifeboat;");
    let mut ws = Workspace::empty(Store::Local);
    // Every command of the workspace on the one catalog (its password for all: the other
    // test of this file uses the same).
    ws.catalog = Some(pg.address("lifeboat"));
    std::env::set_var("PGPASSWORD", SUPERUSER_PASSWORD);
    let cfg = with_office(&ws);
    let serve = |name: &str| {
        let mut c = ws.lifeboat(&["serve", "--config"]);
        c.arg(&cfg).env("LIFEBOAT_DATA_DIR", ws.path(name));
        Server::start(c.0)
    };
    let (a, b) = (serve("data-a"), serve("data-b"));
    let admin = token(&ws, &["--role", "admin"]);
    let enroll_token = ws
        .lifeboat(&["site", "enroll-token", "acme-office", "--config"])
        .arg(&cfg)
        .ok()
        .stdout
        .trim()
        .to_string();
    // The agent knows instance b only.
    let dir = ws.path("agent");
    ws.lifeboat(&["agent", "enroll", "--server", &b.base, "--token"])
        .arg(&enroll_token)
        .arg("--data-dir")
        .arg(&dir)
        .ok();
    let mut cmd = ws.lifeboat(&["agent", "run", "--every", "1s", "--data-dir"]);
    cmd.arg(&dir);
    let agent = Agent::start(&mut cmd.0);
    wait_for(
        "the agent's poll for jobs waiting at b",
        Duration::from_secs(120),
        || metric(&b, &admin, "lifeboat_agent_job_polls_waiting") == 1,
        || agent.log(),
    );

    // Asked for at a; a job of the site's, and its end, read the same at either instance.
    let done = a.back_up_now("acme-office-share", &admin);
    let id = done["id"].as_i64().unwrap();
    let at_b = b.get(&format!("/api/v1/jobs/{id}"), Some(&admin)).json();
    assert_eq!(at_b["state"], "done", "{at_b}");
    assert!(agent.log().contains("took 1 job(s)"), "{}", agent.log());
    // The poll waiting at b was woken by it (not by its time running out): b heard of the
    // job from the catalog, a's own polls none.
    assert_eq!(
        metric(&b, &admin, "lifeboat_agent_job_polls_woken_total"),
        1
    );
    assert_eq!(
        metric(&a, &admin, "lifeboat_agent_job_polls_woken_total"),
        0
    );

    // The instances' listening connections are cut; each makes its own again, and b hears
    // the next one too.
    let listeners = "SELECT count(*) FROM pg_stat_activity \
                     WHERE application_name = 'lifeboat-listener';";
    assert_eq!(count(&pg, listeners), 2);
    pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'lifeboat-listener';",
    );
    wait_for(
        "both instances listening again",
        Duration::from_secs(60),
        || a.log().contains("listening connection") && b.log().contains("listening connection"),
        || format!("--- a ---\n{}\n--- b ---\n{}", a.log(), b.log()),
    );
    wait_for(
        "both instances listening again",
        Duration::from_secs(60),
        || count(&pg, listeners) == 2,
        || format!("--- a ---\n{}\n--- b ---\n{}", a.log(), b.log()),
    );
    wait_for(
        "the agent's poll waiting at b",
        Duration::from_secs(120),
        || metric(&b, &admin, "lifeboat_agent_job_polls_waiting") == 1,
        || agent.log(),
    );
    a.back_up_now("acme-office-share", &admin);
    assert_eq!(
        metric(&b, &admin, "lifeboat_agent_job_polls_woken_total"),
        2
    );
}
