//! The API tests' service: two tenants with contracts, sources, drill specs and evidence,
//! tokens for each role, and `lifeboat serve` on a fixed clock.

use super::server::Server;
use super::*;
use lifeboat::evidence::record::{time, SnapshotRef};
use lifeboat::evidence::{chain, Incident, Outcome, Record, RecordKind};
use lifeboat::repo::crypto::SecretKey;
use std::path::PathBuf;

/// Two tenants: acme (contract erp, source acme-files) and bakery (contract bakery-basic,
/// sources bakery-files and bakery-vm, drill spec bakery-files-drill).
pub fn config(ws: &Workspace) -> PathBuf {
    std::fs::create_dir_all(ws.path("srv/acme")).unwrap();
    std::fs::create_dir_all(ws.path("srv/bakery")).unwrap();
    std::fs::write(ws.path("srv/acme/orders.csv"), "1,acme\n").unwrap();
    std::fs::write(ws.path("srv/bakery/recipes.txt"), "bread\n").unwrap();
    for (name, source) in [
        ("acme-drill", "acme-files"),
        ("bakery-drill", "bakery-files"),
    ] {
        std::fs::write(
            ws.path(&format!("{name}.toml")),
            format!(
                "source = \"{source}\"\n[environment]\nkind = \"dir\"\n[[checks]]\nname = \"x\"\ncommand = [\"true\"]\n"
            ),
        )
        .unwrap();
    }
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
drill_key = "{keys}/rec.key"
drills = ["acme-drill.toml", "bakery-drill.toml"]
prune = "never"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME Maschinenbau"

[tenants.bakery]
name = "Bäckerei Schmidt"

[contracts.erp]
tenant = "acme"
rpo = "1d"
rto = "4h"
test_restores_per_year = 2
cancellation_notice = "7d"

[contracts.bakery-basic]
tenant = "bakery"
rpo = "1d"
rto = "1d"
test_restores_per_year = 1

[contracts.bakery-vms]
tenant = "bakery"
rpo = "93d"
rto = "2d"

[sources.acme-files]
tenant = "acme"
contract = "erp"
kind = "files"
paths = ["{srv}/acme"]
tier = "7/1"
targets = ["nas"]

[sources.bakery-files]
tenant = "bakery"
contract = "bakery-basic"
kind = "files"
paths = ["{srv}/bakery"]
tier = "7/1"
targets = ["nas"]

[sources.bakery-vm]
tenant = "bakery"
contract = "bakery-vms"
kind = "vm"
tier = "cold-vm-quarterly"
targets = ["nas"]

[sources.bakery-vm.vm]
hypervisor = "qemu"
qmp = "{srv}/bakery-vm.qmp"
start = ["false"]
"#,
        keys = ws.path("keys").display(),
        repo = ws.target_root(),
        srv = ws.path("srv").display(),
    );
    let path = ws.path("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn backup_record(tenant: &str, contract: &str, source: &str, at: &str, ok: bool) -> Record {
    let t = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut r = Record::new(RecordKind::Backup, tenant, t);
    r.contract = Some(contract.into());
    r.source = Some(source.into());
    if ok {
        r.snapshot = Some(SnapshotRef {
            id: "ab".repeat(32),
            time: time(t),
        });
    } else {
        r.outcome = Outcome::Failure;
        r.error = Some("disk full".into());
        r.incident = Some(Incident {
            severity: "high".into(),
            summary: format!("backup of {source} failed: disk full"),
        });
    }
    r
}

/// Evidence for both tenants, and a real backup of each tenant's files (so that the catalog
/// lists snapshots of both).
pub fn history(ws: &Workspace) {
    let key = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let mut catalog = ws.catalog();
    for (at, ok) in [
        ("2026-11-20T00:00:00Z", true),
        ("2026-11-21T00:00:00Z", false),
        ("2026-11-22T00:00:00Z", true),
    ] {
        chain::append(
            &mut catalog,
            &key,
            backup_record("acme", "erp", "acme-files", at, ok),
        )
        .unwrap();
        chain::append(
            &mut catalog,
            &key,
            backup_record("bakery", "bakery-basic", "bakery-files", at, ok),
        )
        .unwrap();
    }
    drop(catalog);
    // Each tenant's backups in its own repository on the target, as the service keeps them.
    for (tenant, source, dir) in [
        ("acme", "acme-files", "srv/acme"),
        ("bakery", "bakery-files", "srv/bakery"),
    ] {
        let repo = format!("{}/{tenant}", ws.target_root());
        ws.init_at(&repo).ok();
        ws.lifeboat(&["backup", "--tag"])
            .arg(format!("source={source}"))
            .arg("--repo")
            .arg(&repo)
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .arg(ws.path(dir))
            .ok();
    }
}

pub fn token(ws: &Workspace, args: &[&str]) -> String {
    let run = ws
        .lifeboat(&["token", "create"])
        .args(args)
        .arg("--config")
        .arg(ws.path("lifeboat.toml"))
        .ok();
    run.stdout.trim().to_string()
}

/// The service's "now" in these tests, whatever the calendar says: a few days after the
/// history, in the month the reports ask for.
pub const NOW: &str = "2026-11-25T12:00:00Z";

pub fn serve(ws: &Workspace) -> Server {
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_CLOCK_START", NOW);
    Server::start(cmd)
}

pub struct Setup {
    pub ws: Workspace,
    pub server: Server,
    pub admin: String,
    pub acme: String,
    pub bakery_drill: i64,
}

pub fn setup() -> Setup {
    let ws = Workspace::empty(Store::Local);
    config(&ws);
    history(&ws);
    let admin = token(&ws, &["--role", "admin"]);
    let acme = token(&ws, &["--role", "customer", "--tenant", "acme"]);
    let bakery_drill = ws
        .lifeboat(&["drill", "request"])
        .arg(ws.path("bakery-drill.toml"))
        .args(&["--at", "2027-06-01T08:00:00Z", "--config"])
        .arg(ws.path("lifeboat.toml"))
        .env("LIFEBOAT_NOW", NOW)
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap();
    let server = serve(&ws);
    Setup {
        ws,
        server,
        admin,
        acme,
        bakery_drill,
    }
}

/// The server of `setup`, stopped and started again with `service` lines added to
/// `[service]` and, when not empty, `http` as its `[service.http]` table.
pub fn restart_with(s: &mut Setup, service: &str, http: &str) {
    s.server.stop();
    let path = s.ws.path("lifeboat.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen("[service]\n", &format!("[service]\n{service}\n"), 1);
    if !http.is_empty() {
        text.push_str(&format!("\n[service.http]\n{http}\n"));
    }
    std::fs::write(&path, text).unwrap();
    s.server = serve(&s.ws);
}

/// The API tests' service, with a site of tenant acme whose files go to the office's NAS.
pub fn with_office(ws: &Workspace) -> PathBuf {
    let path = config(ws);
    std::fs::create_dir_all(ws.path("office/share")).unwrap();
    random_file(&ws.path("office/share/drawings.bin"), 200_000, 7);
    std::fs::write(
        ws.path("office-drill.toml"),
        "source = \"acme-office-share\"\n[environment]\nkind = \"dir\"\n[[checks]]\nname = \"x\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap().replacen(
        "\"bakery-drill.toml\"]",
        "\"bakery-drill.toml\", \"office-drill.toml\"]",
        1,
    );
    text.push_str(&format!(
        r#"
[targets.office-nas]
kind = "local"
path = "{nas}"

[sites.acme-office]
tenant = "acme"
name = "ACME head office"

[sources.acme-office-share]
tenant = "acme"
contract = "erp"
kind = "files"
paths = ["{share}"]
tier = "7/48"
targets = ["office-nas"]
site = "acme-office"
"#,
        nas = ws.path("office-nas").display(),
        share = ws.path("office/share").display(),
    ));
    std::fs::write(&path, text).unwrap();
    path
}
