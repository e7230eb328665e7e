//! Restore drills in real scratch environments: a PostgreSQL drill with SQL checks, a MariaDB
//! drill, a file-tree drill, an SQLite drill. Broken backups fail their drills: a dump that
//! restores but lacks rows, a file whose content changed, a damaged repository. Every drill
//! leaves evidence that verifies offline, and its environment torn down.

mod common;
use common::mariadb::{MariaServer, ROOT_PASSWORD};
use common::postgres::{PgServer, SUPERUSER_PASSWORD};
use common::vm::test_vm;
use common::*;
use std::path::{Path, PathBuf};

/// A configuration with one source (`source` holds its kind-specific lines) on the
/// workspace's repository, contract RPO 1h and RTO 10m.
fn config(ws: &Workspace, source: &str) -> PathBuf {
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
drill_key = "{keys}/rec.key"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME"

[contracts.erp]
tenant = "acme"
rpo = "1h"
rto = "10m"
test_restores_per_year = 12

[sources.app]
tenant = "acme"
contract = "erp"
tier = "90/48"
targets = ["nas"]
{source}
"#,
        keys = ws.path("keys").display(),
        repo = ws.target_root(),
    );
    let path = ws.path("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spec(ws: &Workspace, name: &str, text: &str) -> PathBuf {
    let path = ws.path(&format!("{name}.toml"));
    std::fs::write(&path, format!("source = \"app\"\n{text}")).unwrap();
    path
}

/// `lifeboat backup` tagged as the daemon tags it, with extra arguments.
fn backup(ws: &Workspace, args: &[&str]) -> serde_json::Value {
    let mut c = ws.lifeboat(&["backup", "--json", "--tag", "source=app", "--repo"]);
    c.arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(args);
    c.ok().json()
}

/// The TMPDIR drills of this test make their scratch environments in: its own, so that tests
/// running side by side do not see each other's; open to the `postgres` user.
fn scratch_root() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-test-scratch-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs a drill with its scratch environments under `scratch`; returns its exit code and its
/// evidence record.
fn drill(ws: &Workspace, cfg: &Path, spec: &Path, scratch: &Path) -> (i32, serde_json::Value) {
    let run = ws
        .lifeboat(&["drill", "run", "--json", "--config"])
        .arg(cfg)
        .arg(spec)
        .env("TMPDIR", scratch)
        .run();
    let record = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, record)
}

fn check<'a>(record: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    record["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check '{name}' in {record:#}"))
}

/// No scratch directory of a drill is left behind.
fn no_scratch_left(scratch: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(scratch)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn verify_evidence(ws: &Workspace) {
    let out = ws.path("evidence-export");
    let _ = std::fs::remove_dir_all(&out);
    ws.lifeboat(&["evidence", "export", "--out"]).arg(&out).ok();
    ws.lifeboat(&["evidence", "verify"])
        .arg(&out)
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .ok();
}

const ERP: &str = "
CREATE ROLE erp_owner LOGIN PASSWORD 'owner-secret';
CREATE DATABASE erp OWNER erp_owner;
";

#[test]
fn a_postgres_drill_passes_and_a_dump_lacking_rows_fails() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let pg = PgServer::start();
    pg.psql("postgres", ERP);
    pg.psql(
        "erp",
        "CREATE SCHEMA sales;
         CREATE TABLE sales.orders (id int PRIMARY KEY, placed timestamptz NOT NULL);
         INSERT INTO sales.orders SELECT g, now() - (g || ' minutes')::interval
             FROM generate_series(1, 5000) g;",
    );
    let passfile = pg.passfile(SUPERUSER_PASSWORD).display().to_string();
    let cfg = config(
        &ws,
        &format!(
            "kind = \"postgres\"\ndatabase = \"{}\"\npassfile = \"{passfile}\"",
            pg.address("erp")
        ),
    );
    let s = spec(
        &ws,
        "erp",
        r#"
[environment]
kind = "postgres"

[[checks]]
name = "orders are there"
sql = "SELECT count(*) FROM sales.orders"
expect = ">= 5000"

[[checks]]
name = "newest order"
sql = "SELECT max(placed) FROM sales.orders"
newest_within = "1h"
"#,
    );
    let scratch = scratch_root();
    backup(
        &ws,
        &["--postgres", &pg.address("erp"), "--passfile", &passfile],
    );
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(record["outcome"], "success");
    assert_eq!(record["kind"], "drill");
    assert_eq!(record["pick"], "latest");
    assert_eq!(check(&record, "orders are there")["actual"], "5000");
    assert_eq!(check(&record, "newest order")["passed"], true);
    assert_eq!(
        check(&record, "restored dump matches the snapshot")["passed"],
        true
    );
    assert_eq!(check(&record, "RTO")["passed"], true);
    assert_eq!(check(&record, "RPO")["passed"], true);
    let period = check(&record, "RPO over the last 30d");
    assert_eq!(period["passed"], true, "{period}");
    assert!(
        period["actual"]
            .as_str()
            .unwrap()
            .starts_with("longest gap "),
        "{period}"
    );
    let measured = &record["measured"];
    assert!(measured["rto_ms"].as_u64().unwrap() > 0, "{record:#}");
    assert!(measured["data_age_ms"].as_u64().unwrap() < 3_600_000);
    assert!(measured["rpo_ms"].as_u64().is_some());
    assert!(measured["longest_gap_ms"].as_u64().unwrap() < 3_600_000);
    assert_eq!(record["environment"]["kind"], "postgres");
    assert_eq!(record["environment"]["teardown"], "done");
    assert_eq!(
        timeline(&record),
        [
            "started",
            "snapshot picked",
            "environment ready",
            "restored",
            "checks done",
            "torn down"
        ]
    );

    // The live database loses rows; its next backup restores fine but fails the drill.
    pg.psql("erp", "DELETE FROM sales.orders WHERE id > 100;");
    backup(
        &ws,
        &["--postgres", &pg.address("erp"), "--passfile", &passfile],
    );
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["outcome"], "failure");
    let orders = check(&record, "orders are there");
    assert_eq!(
        (orders["passed"].as_bool(), orders["actual"].as_str()),
        (Some(false), Some("100"))
    );
    assert_eq!(record["incident"]["severity"], "high");
    assert!(record["error"]
        .as_str()
        .unwrap()
        .contains("orders are there"));
    assert_eq!(record["environment"]["teardown"], "done");
    no_scratch_left(scratch.path());

    // Both drills are in the tenant's chain, and the catalog's drill history.
    let listed = ws.lifeboat(&["evidence", "list", "--json"]).ok().json();
    let drills: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record"]["kind"] == "drill")
        .collect();
    assert_eq!(drills.len(), 2);
    verify_evidence(&ws);
}

#[test]
fn a_mariadb_drill_restores_into_a_throw_away_server() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let db = MariaServer::start();
    db.sql(None, "CREATE DATABASE shop;");
    db.sql(
        Some("shop"),
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_750;",
    );
    let options = db.option_file(ROOT_PASSWORD).display().to_string();
    let cfg = config(
        &ws,
        &format!(
            "kind = \"mysql\"\ndatabase = \"{}\"\npassfile = \"{options}\"",
            db.address("shop")
        ),
    );
    let s = spec(
        &ws,
        "shop",
        "[environment]\nkind = \"mariadb\"\n\n[[checks]]\nname = \"items\"\n\
         sql = \"SELECT COUNT(*) FROM items\"\nexpect = \"= 750\"\n",
    );
    let scratch = scratch_root();
    backup(
        &ws,
        &["--mysql", &db.address("shop"), "--passfile", &options],
    );
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(check(&record, "items")["actual"], "750");
    assert_eq!(record["environment"]["kind"], "mariadb");
    assert_eq!(record["environment"]["teardown"], "done");
    no_scratch_left(scratch.path());
}

#[test]
fn a_file_drill_checks_every_file_and_catches_changed_content() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let share = ws.path("srv/share");
    std::fs::create_dir_all(share.join("docs")).unwrap();
    random_file(&share.join("docs/handbook.pdf"), 300_000, 1);
    std::fs::write(share.join("prices.csv"), "widget,9.99\ngadget,19.99\n").unwrap();
    tool(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("sha256sum prices.csv docs/handbook.pdf > SHA256SUMS")
            .current_dir(&share),
    );
    let cfg = config(
        &ws,
        &format!("kind = \"files\"\npaths = [\"{}\"]", share.display()),
    );
    let hook = common::hook::Hook::start();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[targets.nas]",
        &format!("webhook = \"{}\"\n\n[targets.nas]", hook.url),
    );
    std::fs::write(&cfg, text).unwrap();
    let inside = share.display().to_string();
    let inside = inside.trim_start_matches('/');
    let s = spec(
        &ws,
        "share",
        &format!(
            r#"
[environment]
kind = "dir"

[[checks]]
name = "price list"
file = "{inside}/prices.csv"

[[checks]]
name = "checksums"
command = ["sh", "-c", "cd {inside} && sha256sum --quiet -c SHA256SUMS"]
"#
        ),
    );
    let scratch = scratch_root();
    backup(&ws, &[&share.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    let files = check(&record, "restored files match the snapshot");
    assert_eq!(files["passed"], true);
    assert!(
        files["actual"].as_str().unwrap().starts_with("3 file(s)"),
        "{files}"
    );
    assert_eq!(check(&record, "checksums")["passed"], true);
    assert_eq!(check(&record, "price list")["actual"], "exists");
    assert!(record["environment"]["isolation"]
        .as_str()
        .unwrap()
        .contains("network"));

    // Ransomware changed a file; the backup took the changed file; the drill says so.
    std::fs::write(share.join("prices.csv"), "widget,0.00 ENCRYPTED\n").unwrap();
    backup(&ws, &[&share.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 1, "{record:#}");
    let sums = check(&record, "checksums");
    assert_eq!(sums["passed"], false);
    assert!(
        sums["actual"].as_str().unwrap().contains("prices.csv"),
        "{sums}"
    );
    assert_eq!(record["incident"]["severity"], "high");
    // The incident went to the webhook, naming the evidence it rests on.
    let sent = hook.next();
    assert_eq!(sent["severity"], "high");
    assert_eq!(sent["tenant"], "acme");
    assert_eq!(sent["drill"], "share");
    assert!(
        sent["summary"].as_str().unwrap().contains("checksums"),
        "{sent}"
    );
    assert!(sent["evidence"]["sequence"].as_u64().unwrap() >= 2);

    // A damaged repository: the backup cannot be restored at all, which is critical.
    for pack in ws.objects("data") {
        let mut bytes = std::fs::read(&pack).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0x55;
        std::fs::write(&pack, bytes).unwrap();
    }
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["incident"]["severity"], "critical", "{record:#}");
    assert!(timeline(&record).contains(&"restore failed".to_string()));
    assert_eq!(hook.next()["severity"], "critical");
    assert!(hook.is_quiet(), "a passing drill sends nothing");
    assert_eq!(record["environment"]["teardown"], "done");
    no_scratch_left(scratch.path());
    verify_evidence(&ws);
}

#[test]
fn an_sqlite_drill_opens_the_restored_file_read_only() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    std::fs::create_dir_all(ws.path("till")).unwrap();
    let file = ws.path("till/till.db");
    let db = rusqlite::Connection::open(&file).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = wal;
         CREATE TABLE sales (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO sales SELECT i, datetime('now', '-' || i || ' minutes') FROM n;",
    )
    .unwrap();
    let cfg = config(
        &ws,
        &format!("kind = \"sqlite\"\ndatabase = \"{}\"", file.display()),
    );
    let s = spec(
        &ws,
        "till",
        r#"
[environment]
kind = "sqlite"

[[checks]]
name = "integrity"
integrity_check = true

[[checks]]
name = "sales"
sql = "SELECT COUNT(*) FROM sales"
expect = "between 300 and 300"

[[checks]]
name = "newest sale"
sql = "SELECT MAX(at) FROM sales"
newest_within = "30m"
"#,
    );
    let scratch = scratch_root();
    backup(&ws, &["--sqlite", &file.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(check(&record, "integrity")["actual"], "ok");
    assert_eq!(check(&record, "sales")["actual"], "300");
    assert_eq!(check(&record, "newest sale")["passed"], true);
    assert_eq!(record["environment"]["kind"], "sqlite");

    // Two hours later with no backup since: restorable, but the contract's RPO of 1h is
    // missed, now and over the period. With no data check failing, that is a medium incident.
    let basic = spec(
        &ws,
        "till-basic",
        "[environment]\nkind = \"sqlite\"\n\n[[checks]]\nname = \"integrity\"\n\
         integrity_check = true\n",
    );
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let run = ws
        .lifeboat(&["drill", "run", "--json", "--config"])
        .arg(&cfg)
        .arg(&basic)
        .env("TMPDIR", scratch.path())
        .env("LIFEBOAT_NOW", &later)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(check(&record, "RPO")["passed"], false);
    assert_eq!(check(&record, "RPO over the last 30d")["passed"], false);
    assert_eq!(check(&record, "integrity")["passed"], true);
    assert_eq!(record["incident"]["severity"], "medium", "{record:#}");
    assert!(record["measured"]["longest_gap_ms"].as_u64().unwrap() >= 7_200_000);
    no_scratch_left(scratch.path());
}

#[test]
fn invalid_specs_are_refused_with_file_and_line() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let cfg = config(&ws, "kind = \"files\"\npaths = [\"/srv\"]");
    let bad = ws.path("bad.toml");
    std::fs::write(
        &bad,
        r#"source = "app"
time_limit = "soon"

[snapshot]
pick = "latest"
within = "30d"

[environment]
kind = "postgres"

[[checks]]
name = "rows"
sql = "SELECT 1"

[[checks]]
name = "typo"
file = "x"
expct = "1"
"#,
    )
    .unwrap();
    let run = ws
        .lifeboat(&["drill", "check", "--config"])
        .arg(&cfg)
        .arg(&bad)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let at = |line: usize, says: &str| {
        assert!(
            run.stderr.contains(&format!("bad.toml:{line}: ")) && run.stderr.contains(says),
            "no '{says}' at line {line}:\n{}",
            run.stderr
        );
    };
    at(2, "time_limit 'soon' is not a duration");
    at(6, "within applies to pick = \"random\" only");
    at(
        9,
        "a postgres environment cannot hold a backup of source 'app'",
    );
    at(12, "an sql check needs expect or newest_within");
    at(18, "unknown key 'checks.1.expct'");
    // A spec naming a source the configuration lacks.
    std::fs::write(&bad, "source = \"nope\"\n[environment]\nkind = \"dir\"\n").unwrap();
    let run = ws
        .lifeboat(&["drill", "check", "--config"])
        .arg(&cfg)
        .arg(&bad)
        .run();
    assert!(
        run.stderr
            .contains("bad.toml:1: source 'nope' is not defined"),
        "{}",
        run.stderr
    );
}

#[test]
fn requests_count_against_the_quota_and_cancel_only_with_notice() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let cfg = config(&ws, "kind = \"files\"\npaths = [\"/srv\"]");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "test_restores_per_year = 12",
        "test_restores_per_year = 2\ncancellation_notice = \"7d\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let s = spec(&ws, "share", "[environment]\nkind = \"dir\"\n");
    let now = "2026-03-01T10:00:00Z";
    let request = |at: &str| {
        ws.lifeboat(&[
            "drill",
            "request",
            "--at",
            at,
            "--by",
            "customer@acme",
            "--config",
        ])
        .arg(&cfg)
        .arg(&s)
        .env("LIFEBOAT_NOW", now)
        .run()
    };
    let first = request("2026-03-05T08:00:00+01:00");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("1 test restore(s) left"),
        "{}",
        first.stderr
    );
    let second = request("2026-06-01T08:00:00+02:00");
    assert_eq!(second.code, 0, "{}", second.stderr);
    let third = request("2026-09-01T08:00:00+02:00");
    assert_eq!(third.code, 1);
    assert!(
        third
            .stderr
            .contains("allows 2 test restore(s) in 2026, and 2 are already planned or done"),
        "{}",
        third.stderr
    );
    // The first is 4 days away: too late to cancel with 7 days' notice.
    let id1 = first.stdout.trim();
    let late = ws
        .lifeboat(&["drill", "cancel", id1, "--config"])
        .arg(&cfg)
        .env("LIFEBOAT_NOW", now)
        .run();
    assert_eq!(late.code, 1);
    assert!(
        late.stderr
            .contains("could be cancelled until 2026-02-26 07:00 UTC (7d notice)"),
        "{}",
        late.stderr
    );
    // The second can be; its place in the quota is free again.
    let id2 = second.stdout.trim();
    ws.lifeboat(&["drill", "cancel", id2, "--config"])
        .arg(&cfg)
        .env("LIFEBOAT_NOW", now)
        .ok();
    assert_eq!(request("2026-09-01T08:00:00+02:00").code, 0);
    let listed = ws
        .lifeboat(&["drill", "list", "--json", "--config"])
        .arg(&cfg)
        .env("LIFEBOAT_NOW", now)
        .ok()
        .json();
    assert_eq!(listed["quotas"]["erp"]["used"], 2);
    assert_eq!(listed["quotas"]["erp"]["left"], 0);
    let states: Vec<&str> = listed["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["planned", "cancelled", "planned"]);
    assert_eq!(listed["drills"][0]["requested_by"], "customer@acme");
}

/// Points the configuration's qemu drills at the test VM.
fn use_vm(cfg: &Path, vm: &Path) {
    let text = std::fs::read_to_string(cfg).unwrap().replace(
        "[targets.nas]",
        &format!(
            "qemu = \"{vm}/qemu-system-x86_64\"\nvm_kernel = \"{vm}/vmlinuz\"\n\
             vm_initrd = \"{vm}/initrd.gz\"\n\n[targets.nas]",
            vm = vm.display()
        ),
    );
    std::fs::write(cfg, text).unwrap();
}

#[test]
fn a_vm_drill_boots_the_restored_disk_and_catches_one_that_does_not() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let vm = test_vm();
    let app = ws.path("srv/appliance");
    std::fs::create_dir_all(app.join("etc")).unwrap();
    std::fs::write(app.join("marker"), "APPLIANCE-READY 7\n").unwrap();
    std::fs::write(app.join("etc/app.conf"), "port = 8080\n").unwrap();
    let cfg = config(
        &ws,
        &format!("kind = \"files\"\npaths = [\"{}\"]", app.display()),
    );
    use_vm(&cfg, &vm);
    let inside = app.display().to_string();
    let s = spec(
        &ws,
        "appliance",
        &format!(
            "time_limit = \"5m\"\n\n[environment]\nkind = \"qemu\"\ndisk_root = \"{}\"\n\n\
             [[checks]]\nname = \"boots\"\nconsole = \"APPLIANCE-READY 7\"\nwithin = \"2m\"\n",
            inside.trim_start_matches('/')
        ),
    );
    let scratch = scratch_root();
    backup(&ws, &[&app.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    let boots = check(&record, "boots");
    assert!(
        boots["actual"].as_str().unwrap().starts_with("seen"),
        "{boots}"
    );
    assert_eq!(record["environment"]["kind"], "qemu");
    assert!(record["environment"]["isolation"]
        .as_str()
        .unwrap()
        .contains("no network device"));
    assert!(
        timeline(&record).contains(&"VM powered off".to_string()),
        "{record:#}"
    );

    // The next backup took an appliance whose disk no longer has what it boots with.
    std::fs::remove_file(app.join("marker")).unwrap();
    backup(&ws, &[&app.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 1, "{record:#}");
    let boots = check(&record, "boots");
    assert_eq!(boots["passed"], false);
    assert!(
        boots["actual"]
            .as_str()
            .unwrap()
            .contains("the disk has no /marker"),
        "{boots}"
    );
    assert_eq!(record["incident"]["severity"], "high");
    assert_eq!(record["environment"]["teardown"], "done");
    no_scratch_left(scratch.path());
}

#[test]
fn a_restored_vm_image_is_booted_as_it_is() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let vm = test_vm();
    // A VM's disk image (qcow2), as a cold backup stores it.
    let content = ws.path("guest");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("marker"), "LIFEBOAT-BOOT-OK guest-1\n").unwrap();
    let raw = ws.path("guest.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    tool(
        std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&content)
            .arg(&raw),
    );
    let images = ws.path("srv/vms");
    std::fs::create_dir_all(&images).unwrap();
    let qcow2 = images.join("guest.qcow2");
    tool(
        std::process::Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow2),
    );
    let cfg = config(
        &ws,
        &format!("kind = \"files\"\npaths = [\"{}\"]", images.display()),
    );
    use_vm(&cfg, &vm);
    let image = qcow2.display().to_string();
    let s = spec(
        &ws,
        "guest",
        &format!(
            "[environment]\nkind = \"qemu\"\ndisk_image = \"{}\"\n\n[[checks]]\n\
             name = \"boots\"\nconsole = \"LIFEBOAT-BOOT-OK guest-1\"\nwithin = \"2m\"\n",
            image.trim_start_matches('/')
        ),
    );
    let scratch = scratch_root();
    backup(&ws, &[&images.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(check(&record, "boots")["passed"], true);

    // The image the next backup took is damaged: its header no longer says qcow2.
    let mut bytes = std::fs::read(&qcow2).unwrap();
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&qcow2, bytes).unwrap();
    backup(&ws, &[&images.display().to_string()]);
    let (code, record) = drill(&ws, &cfg, &s, scratch.path());
    assert_eq!(code, 1, "{record:#}");
    let boots = check(&record, "boots");
    assert_eq!(boots["passed"], false);
    assert!(
        boots["actual"].as_str().unwrap().contains("qcow2"),
        "{boots}"
    );
    no_scratch_left(scratch.path());
}
