//! MariaDB sources against real servers: a database with tables, blobs, a view, a routine, a
//! trigger, an event and accounts is backed up, restored into a fresh server, and dumps the
//! same; failures (wrong password, unreachable server, dump killed midway) say why and commit
//! nothing.

mod common;
use common::mariadb::{MariaServer, ROOT_PASSWORD};
use common::*;
use std::os::unix::fs::PermissionsExt;

const SHOP: &str = "
CREATE USER shop_app@'%' IDENTIFIED BY 'app-secret';
CREATE ROLE shop_reader;
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT SELECT, INSERT, UPDATE ON shop.* TO shop_app@'%';
GRANT SELECT ON shop.* TO shop_reader;
GRANT shop_reader TO shop_app@'%';
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(80) NOT NULL,
                        city VARCHAR(40)) ENGINE=InnoDB;
INSERT INTO customers (name, city) SELECT CONCAT('Kundin ', seq, ' – Müller'), 'Zürich'
    FROM seq_1_to_2000;
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer INT NOT NULL,
                     amount DECIMAL(12,2), note BLOB,
                     FOREIGN KEY (customer) REFERENCES customers (id)) ENGINE=InnoDB;
INSERT INTO orders (customer, amount, note)
    SELECT 1 + seq % 2000, seq * 1.5, UNHEX(SHA2(seq, 256)) FROM seq_1_to_20000;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100;
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(100));
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id));
CREATE FUNCTION order_total(c INT) RETURNS DECIMAL(14,2) READS SQL DATA
    RETURN (SELECT COALESCE(SUM(amount), 0) FROM orders WHERE customer = c);
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 02:00:00'
    DO DELETE FROM audit WHERE id < 0;
";

fn shop_server() -> MariaServer {
    let db = MariaServer::start();
    db.sql(None, SHOP);
    db
}

fn backup(ws: &Workspace, address: &str, extra: &[&str]) -> Run {
    let mut c = ws.lifeboat(&["backup", "--json", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(&["--mysql", address])
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
fn a_database_with_routines_triggers_events_and_accounts_round_trips() {
    let ws = Workspace::new();
    let src = shop_server();
    let options = src.option_file(ROOT_PASSWORD).display().to_string();
    let first = backup(&ws, &src.address("shop"), &["--passfile", &options])
        .ok()
        .json();
    assert_eq!(first["files"], 2, "accounts and the dump: {first}");
    let details = &first["details"];
    assert_eq!(details["kind"], "mysql");
    assert!(
        details["server_version"]
            .as_str()
            .unwrap()
            .contains("MariaDB"),
        "{first}"
    );
    assert_eq!(details["character_set"], "utf8mb4");
    assert_eq!(details["collation"], "utf8mb4_unicode_ci");
    let size: u64 = details["database_size_bytes"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0, "{first}");
    let listed = snapshots(&ws);
    let paths = listed[0]["paths"].to_string();
    assert!(paths.contains(&src.address("shop")), "{paths}");
    assert!(!paths.contains(ROOT_PASSWORD));

    // An unchanged database deduplicates against the first dump.
    let second = backup(&ws, &src.address("shop"), &["--passfile", &options])
        .ok()
        .json();
    let dumped = second["bytes"].as_u64().unwrap();
    let added = second["bytes_added"].as_u64().unwrap();
    assert!(added * 10 < dumped, "{added} of {dumped} bytes added");

    // Into a fresh server: accounts first, then the database with its defaults.
    let dst = MariaServer::start();
    let restored = ws
        .lifeboat(&["restore", "--json", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--to-mysql", &dst.address("shop")])
        .args(&["--password-env", "LIFEBOAT_TEST_MYSQL_PASSWORD"])
        .env("LIFEBOAT_TEST_MYSQL_PASSWORD", ROOT_PASSWORD)
        .ok()
        .json();
    assert!(restored["duration_ms"].as_u64().is_some(), "{restored}");
    assert_eq!(
        dst.sql(None, "SHOW GRANTS FOR shop_app@'%'"),
        src.sql(None, "SHOW GRANTS FOR shop_app@'%'")
    );
    assert_eq!(
        dst.sql(
            None,
            "SELECT default_character_set_name, default_collation_name \
             FROM information_schema.schemata WHERE schema_name = 'shop'"
        ),
        "utf8mb4\tutf8mb4_unicode_ci\n"
    );
    assert_eq!(
        dst.sql(Some("shop"), "SELECT order_total(7), COUNT(*) FROM orders"),
        src.sql(Some("shop"), "SELECT order_total(7), COUNT(*) FROM orders")
    );
    let (before, after) = (src.dump_sql("shop"), dst.dump_sql("shop"));
    assert!(before.contains("TRIGGER orders_audit"), "{before}");
    assert!(before.contains("EVENT `nightly`") && before.contains("FUNCTION `order_total`"));
    assert_eq!(
        common::postgres::first_difference(&before, &after),
        None,
        "the two mariadb-dump outputs differ (line, source, restored)"
    );
    // The restored account logs in with its own password.
    let app = dst.option_file("app-secret");
    let login = std::process::Command::new("mariadb")
        .arg(format!("--defaults-extra-file={}", app.display()))
        .args([
            "-h127.0.0.1",
            "-ushop_app",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("-P{}", dst.port))
        .args(["shop", "-e", "SELECT COUNT(*) FROM customers"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&login.stdout), "2000\n");

    // Restoring into a database that exists is refused, and says so.
    let again = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--to-mysql", &dst.address("shop")])
        .args(&["--password-env", "LIFEBOAT_TEST_MYSQL_PASSWORD"])
        .env("LIFEBOAT_TEST_MYSQL_PASSWORD", ROOT_PASSWORD)
        .run();
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("database exists"), "{}", again.stderr);

    // A PostgreSQL target for a MariaDB snapshot is refused before anything is touched.
    let wrong_kind = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--to-postgres", "postgres://x@127.0.0.1/shop"])
        .run();
    assert_eq!(wrong_kind.code, 2, "{}", wrong_kind.stderr);
    assert!(wrong_kind.stderr.contains("not of a postgres source"));

    let out = ws.path("files");
    ws.restore("latest", &out, &[]).ok();
    assert!(out.join("shop.sql").is_file() && out.join("users.sql").is_file());
    ws.check(true).ok();
}

#[test]
fn failures_say_why_and_commit_nothing() {
    let ws = Workspace::new();
    let db = shop_server();

    // Wrong password: the server's words, never the password.
    let wrong = db.option_file("not-the-password");
    let run = backup(
        &ws,
        &db.address("shop"),
        &["--passfile", &wrong.display().to_string()],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("Access denied"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);

    // A password from an environment variable that is not set.
    let unset = backup(
        &ws,
        &db.address("shop"),
        &["--password-env", "LIFEBOAT_TEST_NOT_SET"],
    );
    assert_ne!(unset.code, 0);
    assert!(
        unset
            .stderr
            .contains("LIFEBOAT_TEST_NOT_SET, which is not set"),
        "{}",
        unset.stderr
    );

    // A password in the address is refused before anything runs.
    let inline = backup(&ws, "mysql://root:hunter2@127.0.0.1:1/shop", &[]);
    assert_eq!(inline.code, 2, "{}", inline.stderr);
    assert!(!inline.stderr.contains("hunter2"), "{}", inline.stderr);

    // Nobody listens there.
    let nobody = format!("mysql://root@127.0.0.1:{}/shop", s3::free_port());
    let run = backup(&ws, &nobody, &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("Can't connect"), "{}", run.stderr);

    // mariadb-dump killed midway, after some of its output was stored.
    let shim = ws.path("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let real = String::from_utf8(tool(
        std::process::Command::new("sh").args(["-c", "command -v mariadb-dump"]),
    ))
    .unwrap();
    std::fs::write(
        shim.join("mariadb-dump"),
        format!(
            "#!/bin/sh\ncase \"$*\" in *--system=users*) exec {real} \"$@\";; esac\n\
             {real} \"$@\" | head -c 300000\nkill -KILL $$\n",
            real = real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        shim.join("mariadb-dump"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let options = db.option_file(ROOT_PASSWORD).display().to_string();
    let mut c = ws.lifeboat(&["backup", "--json", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(&["--mysql", &db.address("shop"), "--passfile", &options])
        .env("PATH", &path);
    let run = c.run();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("mariadb-dump failed (killed by signal 9)"),
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
