//! Cold VM backups against a real VM under software emulation (QEMU with QMP): shut down,
//! back up the disks, start again and see the boot marker; a VM that ignores the shutdown is
//! left running with nothing backed up; a second backup of an unchanged VM adds almost
//! nothing; the restored images check out (`qemu-img check`, sparse raw disk) and boot in a
//! drill; an admin triggers one through the API.

mod common;
use common::server::Server;
use common::vm::{Guest, Mode};
use common::*;
use std::path::{Path, PathBuf};

/// Tenant acme, contract acme-vms, VM source `web` (tier cold-vm-quarterly) on the local
/// repository, and a drill spec booting its restored system disk.
fn config(ws: &Workspace, guest: &Guest, shutdown_timeout: &str) -> PathBuf {
    let vm = common::vm::test_vm();
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
drill_key = "{keys}/rec.key"
prune = "never"
jitter = "0s"
qemu = "{vm}/qemu-system-x86_64"
vm_kernel = "{vm}/vmlinuz"
vm_initrd = "{vm}/initrd.gz"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME"

[contracts.acme-vms]
tenant = "acme"
rpo = "100d"
rto = "1h"

[sources.web]
tenant = "acme"
contract = "acme-vms"
kind = "vm"
tier = "cold-vm-quarterly"
targets = ["nas"]

{table}"#,
        keys = ws.path("keys").display(),
        repo = ws.path("repo").display(),
        vm = vm.display(),
        table = guest.vm_table("web", shutdown_timeout),
    );
    let path = ws.path("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        ws.path("web-boot.toml"),
        format!(
            "source = \"web\"\ntime_limit = \"5m\"\n\n[environment]\nkind = \"qemu\"\n\
             disk_image = \"virtio0-system.qcow2\"\n\n[[checks]]\nname = \"boots\"\n\
             console = \"{}\"\nwithin = \"2m\"\n",
            guest.marker
        ),
    )
    .unwrap();
    path
}

fn cold_backup(ws: &Workspace, cfg: &Path) -> Run {
    ws.lifeboat(&["vm", "cold-backup", "web", "--config"])
        .arg(cfg)
        .run()
}

/// The evidence records, oldest first.
fn records(ws: &Workspace) -> Vec<serde_json::Value> {
    let list = ws.lifeboat(&["evidence", "list", "--json"]).ok().json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["record"].clone())
        .collect()
}

fn events(record: &serde_json::Value) -> Vec<String> {
    record["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_cold_backup_stops_copies_and_restarts_the_vm_and_a_second_adds_almost_nothing() {
    let ws = Workspace::new();
    let guest = Guest::new(&ws.path("guest"), Mode::Stay, "LIFEBOAT-COLD-OK web-1");
    let cfg = config(&ws, &guest, "60s");
    guest.launch();
    let before = std::fs::read(&guest.system).unwrap();

    let run = cold_backup(&ws, &cfg);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("cold backup, down "), "{}", run.stdout);
    // It came back: a new boot printed its marker (the old console log was set aside).
    assert!(guest.running(), "the VM does not run after its cold backup");
    assert!(guest.console_text().contains(&guest.marker));
    assert!(guest.dir.join("console.log.previous").exists());
    let log = std::fs::read_to_string(guest.dir.join("console.log.previous")).unwrap();
    assert!(log.contains("power button pressed"), "{log}");

    // The evidence has each step in order and the downtime.
    let first = records(&ws).pop().unwrap();
    assert_eq!(first["outcome"], "success", "{first:#}");
    assert_eq!(first["source"], "web");
    let steps = events(&first);
    let at = |name: &str| {
        steps
            .iter()
            .position(|e| e == name)
            .unwrap_or_else(|| panic!("no '{name}' in {steps:?}"))
    };
    assert!(at("vm shutdown requested") < at("vm off"));
    assert!(at("vm off") < at("vm disks read"));
    assert!(at("vm disks read") < at("vm start requested"));
    assert!(at("vm start requested") < at("vm back"));
    let downtime = first["measured"]["downtime_ms"].as_u64().unwrap();
    assert!(downtime > 0, "{first:#}");
    assert_eq!(first["measured"]["forced_power_off"], 0);
    assert_eq!(first["measured"]["files"], 2);

    // The restored images: the qcow2 byte for byte and sound, the raw disk sparse.
    let out = ws.path("restored");
    ws.restore("latest", &out, &[]).ok();
    let system = out.join("virtio0-system.qcow2");
    assert_eq!(std::fs::read(&system).unwrap(), before);
    tool(
        std::process::Command::new("qemu-img")
            .arg("check")
            .arg(&system),
    );
    let data = out.join("virtio1-data.raw");
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(&guest.data).unwrap()
    );
    let meta = std::fs::metadata(&data).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.len(), 32 << 20);
    assert!(
        meta.blocks() * 512 <= 2 << 20,
        "the restored raw disk is not sparse: {} bytes allocated",
        meta.blocks() * 512
    );

    // Nothing changed in the VM: the second cold backup stores almost nothing new.
    let run = cold_backup(&ws, &cfg);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let second = records(&ws).pop().unwrap();
    let added = second["measured"]["bytes_added"].as_u64().unwrap();
    let total = second["measured"]["bytes"].as_u64().unwrap();
    eprintln!(
        "first cold backup: down {downtime} ms, {} bytes added; second: down {} ms, {added} of \
         {total} bytes added",
        first["measured"]["bytes_added"], second["measured"]["downtime_ms"]
    );
    assert!(total > 32 << 20, "{second:#}");
    assert!(
        added < 64 << 10,
        "the second cold backup added {added} of {total} bytes"
    );
    assert!(guest.running());

    // The restored system disk boots in a throw-away VM.
    let drill = ws
        .lifeboat(&["drill", "run"])
        .arg(ws.path("web-boot.toml"))
        .arg("--config")
        .arg(&cfg)
        .arg("--json")
        .run();
    assert_eq!(drill.code, 0, "{}{}", drill.stdout, drill.stderr);
}

#[test]
fn a_vm_that_ignores_the_shutdown_is_left_running_and_nothing_is_backed_up() {
    let ws = Workspace::new();
    let guest = Guest::new(&ws.path("guest"), Mode::Ignore, "LIFEBOAT-COLD-OK stubborn");
    let cfg = config(&ws, &guest, "5s");
    guest.launch();

    let run = cold_backup(&ws, &cfg);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "did not shut down within 5 s; it was left running and nothing was backed up"
        ),
        "{}",
        run.stderr
    );
    assert!(guest.running(), "the VM was stopped");
    assert!(guest.console_text().contains("ignoring the power button"));
    let snapshots = ws
        .lifeboat(&["snapshots", "--json", "--repo"])
        .arg(ws.repo())
        .ok()
        .json();
    assert_eq!(snapshots.as_array().unwrap().len(), 0, "{snapshots:#}");
    let failed = records(&ws).pop().unwrap();
    assert_eq!(failed["outcome"], "failure");
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("did not shut down"));
    assert!(failed["snapshot"].is_null());
}

#[test]
fn an_admin_triggers_a_cold_backup_through_the_api() {
    let ws = Workspace::new();
    let guest = Guest::new(&ws.path("guest"), Mode::Stay, "LIFEBOAT-COLD-OK api");
    let cfg = config(&ws, &guest, "60s");
    guest.launch();
    let token = |role: &str| {
        ws.lifeboat(&["token", "create", "--role", role, "--config"])
            .arg(&cfg)
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let (admin, operator) = (token("admin"), token("operator"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(["serve", "--config"])
        .arg(&cfg)
        .env("LIFEBOAT_DATA_DIR", ws.path("data"));
    let server = Server::start(cmd);
    let refused = server.send(
        "POST",
        "/api/v1/sources/web/cold-backup",
        Some(&operator),
        None,
        b"",
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    let accepted = server.send(
        "POST",
        "/api/v1/sources/web/cold-backup",
        Some(&admin),
        None,
        b"",
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["job"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let job = loop {
        let job = server
            .get(&format!("/api/v1/jobs/{id}"), Some(&admin))
            .json();
        if job["state"] == "done" || job["state"] == "failed" {
            break job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{job}\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_eq!(job["state"], "done", "{job}\n{}", server.log());
    assert!(guest.running());
    assert!(guest.console_text().contains(&guest.marker));
    let evidence = server
        .get("/api/v1/evidence?tenant=acme", Some(&admin))
        .json();
    assert!(
        evidence
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "web" && e["outcome"] == "success"),
        "{evidence:#}"
    );
}
