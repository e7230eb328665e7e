//! PostgreSQL sources against real servers: a database with schemas, large objects and roles
//! is backed up, restored into a fresh cluster, and dumps the same; failures (wrong password,
//! unreachable server, dump killed midway) say why and commit nothing.

mod common;
use common::postgres::{PgServer, SUPERUSER_PASSWORD};
use common::*;
use std::os::unix::fs::PermissionsExt;

const ERP: &str = "
CREATE ROLE erp_owner LOGIN PASSWORD 'owner-secret';
CREATE ROLE erp_reader;
CREATE DATABASE erp OWNER erp_owner;
";

const ERP_CONTENT: &str = "
CREATE SCHEMA sales AUTHORIZATION erp_owner;
CREATE SCHEMA stock;
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer text NOT NULL,
                           amount numeric(12,2), placed timestamptz DEFAULT '2026-01-01');
INSERT INTO sales.orders (customer, amount)
    SELECT 'customer ' || g, g * 1.5 FROM generate_series(1, 20000) g;
CREATE TABLE stock.items (sku text PRIMARY KEY, qty int CHECK (qty >= 0));
INSERT INTO stock.items SELECT 'sku-' || g, g FROM generate_series(1, 1000) g;
CREATE VIEW sales.big AS SELECT * FROM sales.orders WHERE amount > 100;
GRANT USAGE ON SCHEMA sales TO erp_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO erp_reader;
SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 20000), 'hex'));
";

fn erp_server() -> PgServer {
    let pg = PgServer::start();
    pg.psql("postgres", ERP);
    pg.psql("erp", ERP_CONTENT);
    pg
}

fn backup(ws: &Workspace, address: &str, extra: &[&str]) -> Run {
    let mut c = ws.lifeboat(&["backup", "--json", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(&["--postgres", address])
        .args(extra);
    c.run()
}

fn snapshots(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.lifeboat(&["snapshots", "--json", "--repo"])
        .arg(ws.repo())
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_database_with_schemas_large_objects_and_roles_round_trips() {
    let ws = Workspace::new();
    let src = erp_server();
    let passfile = src.passfile(SUPERUSER_PASSWORD);
    let passfile = passfile.display().to_string();
    let first = backup(&ws, &src.address("erp"), &["--passfile", &passfile])
        .ok()
        .json();
    assert_eq!(first["files"], 2, "globals and the dump: {first}");
    let details = &first["details"];
    assert_eq!(details["kind"], "postgres");
    assert!(
        details["server_version"]
            .as_str()
            .unwrap()
            .starts_with("15"),
        "{first}"
    );
    assert!(
        details["database_size_bytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(details["dump_duration_ms"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());

    // The manifest names the database without any secret.
    let listed = snapshots(&ws);
    let paths = listed[0]["paths"].to_string();
    assert!(paths.contains(&src.address("erp")), "{paths}");
    assert!(!paths.contains(SUPERUSER_PASSWORD));

    // An unchanged database deduplicates against the first dump.
    let second = backup(&ws, &src.address("erp"), &["--passfile", &passfile])
        .ok()
        .json();
    let dumped = second["bytes"].as_u64().unwrap();
    let added = second["bytes_added"].as_u64().unwrap();
    assert!(added * 10 < dumped, "{added} of {dumped} bytes added");

    // Into a fresh cluster: roles first, then the database.
    let dst = PgServer::start();
    let restored = ws
        .lifeboat(&["restore", "--json", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--to-postgres", &dst.address("erp")])
        .args(&["--password-env", "LIFEBOAT_TEST_PGPASSWORD"])
        .env("LIFEBOAT_TEST_PGPASSWORD", SUPERUSER_PASSWORD)
        .ok()
        .json();
    assert!(restored["duration_ms"].as_u64().is_some(), "{restored}");
    assert_eq!(
        dst.psql(
            "postgres",
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'erp_%' ORDER BY 1"
        ),
        "erp_owner\nerp_reader\n"
    );
    assert_eq!(
        dst.psql("erp", "SELECT count(*) FROM pg_largeobject_metadata"),
        "1\n"
    );
    let (before, after) = (src.dump_sql("erp"), dst.dump_sql("erp"));
    assert!(before.contains("CREATE SCHEMA sales"), "{before}");
    assert_eq!(
        common::postgres::first_difference(&before, &after),
        None,
        "the two pg_dump outputs differ (line, source, restored)"
    );

    // In parallel (two pg_restore jobs, from a temporary file), into a second database.
    ws.lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&[
            "latest",
            "--to-postgres",
            &dst.address("erp_parallel"),
            "--jobs",
            "2",
        ])
        .args(&["--password-env", "LIFEBOAT_TEST_PGPASSWORD"])
        .env("LIFEBOAT_TEST_PGPASSWORD", SUPERUSER_PASSWORD)
        .ok();
    assert_eq!(
        common::postgres::first_difference(&before, &dst.dump_sql("erp_parallel")),
        None,
        "the parallel restore differs (line, source, restored)"
    );

    // Restoring into a database that exists is refused, and says so.
    let again = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--to-postgres", &dst.address("erp")])
        .args(&["--password-env", "LIFEBOAT_TEST_PGPASSWORD"])
        .env("LIFEBOAT_TEST_PGPASSWORD", SUPERUSER_PASSWORD)
        .run();
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    // The dump is also a plain file of the snapshot.
    let out = ws.path("files");
    ws.restore("latest", &out, &[]).ok();
    assert!(out.join("erp.dump").is_file() && out.join("globals.sql").is_file());
    ws.check(true).ok();
}

#[test]
fn failures_say_why_and_commit_nothing() {
    let ws = Workspace::new();
    let pg = erp_server();

    // Wrong password: the server's words, never the password.
    let wrong = pg.passfile("not-the-password");
    let run = backup(
        &ws,
        &pg.address("erp"),
        &["--passfile", &wrong.display().to_string()],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);

    // A password in the address is refused before anything runs.
    let inline = backup(&ws, "postgres://postgres:hunter2@127.0.0.1:1/erp", &[]);
    assert_eq!(inline.code, 2, "{}", inline.stderr);
    assert!(!inline.stderr.contains("hunter2"), "{}", inline.stderr);

    // Nobody listens there.
    let nobody = format!("postgres://postgres@127.0.0.1:{}/erp", s3::free_port());
    let run = backup(&ws, &nobody, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("Connection refused") || run.stderr.contains("could not connect"),
        "{}",
        run.stderr
    );

    // pg_dump killed midway, after some of its output was stored.
    let shim = ws.path("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let real = String::from_utf8(tool(
        std::process::Command::new("sh").args(["-c", "command -v pg_dump"]),
    ))
    .unwrap();
    std::fs::write(
        shim.join("pg_dump"),
        format!(
            "#!/bin/sh\n{} \"$@\" | head -c 300000\nkill -KILL $$\n",
            real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(shim.join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let passfile = pg.passfile(SUPERUSER_PASSWORD).display().to_string();
    let mut c = ws.lifeboat(&["backup", "--json", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(&["--postgres", &pg.address("erp"), "--passfile", &passfile])
        .env("PATH", &path);
    let run = c.run();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("pg_dump failed (killed by signal 9)"),
        "{}",
        run.stderr
    );

    assert!(snapshots(&ws).is_empty(), "no snapshot was committed");
    let runs = ws.lifeboat(&["runs", "--json"]).ok().json();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "failure"),
        "{runs}"
    );
    ws.check(true).ok();
}
