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

#[test]
fn a_cold_backup_stops_copies_and_restarts_the_vm_and_a_second_adds_almost_nothing() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
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
    let steps = timeline(&first);
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
    let ws = Workspace::for_tenant(Store::Local, "acme");
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
    let snapshots = ws.snapshots_json();
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
    let ws = Workspace::for_tenant(Store::Local, "acme");
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
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&cfg);
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
    let job = server.finished_job(
        &format!("/api/v1/jobs/{id}"),
        &admin,
        std::time::Duration::from_secs(240),
    );
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

/// A stand-in for a Proxmox VE host's API, answering from fixtures/proxmox: the VM runs until
/// a shutdown, and runs again after a start. Every request is logged with its token.
mod proxmox {
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct Host {
        pub running: bool,
        pub requests: Vec<String>,
    }

    pub fn serve() -> (String, Arc<Mutex<Host>>) {
        let host = Arc::new(Mutex::new(Host {
            running: true,
            requests: Vec::new(),
        }));
        let fixture = |name: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/proxmox")
                    .join(name),
            )
            .unwrap()
        };
        let running = fixture("status-running.json");
        let stopped = fixture("status-stopped.json");
        let config = fixture("config.json");
        let task = fixture("task.json");
        let shared = host.clone();
        // One handler for the VM's few calls: logs each, answers from the fixtures, and turns
        // the VM off or on as a shutdown, stop or start would.
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap| {
                let call = uri
                    .path()
                    .strip_prefix("/api2/json/nodes/pve1/qemu/101/")
                    .unwrap_or(uri.path())
                    .to_string();
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let mut h = shared.lock().unwrap();
                h.requests.push(format!("{method} {call} [{auth}]"));
                let answer = match (method.as_str(), call.as_str()) {
                    ("GET", "status/current") if h.running => Ok(running.clone()),
                    ("GET", "status/current") => Ok(stopped.clone()),
                    ("GET", "config") => Ok(config.clone()),
                    ("POST", "status/shutdown" | "status/stop") => {
                        h.running = false;
                        Ok(task.clone())
                    }
                    ("POST", "status/start") => {
                        h.running = true;
                        Ok(task.clone())
                    }
                    _ => Err(axum::http::StatusCode::NOT_IMPLEMENTED),
                };
                async move { answer }
            },
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        (address, host)
    }
}

#[test]
fn the_proxmox_driver_runs_a_cold_backup_through_the_api() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let (address, host) = proxmox::serve();
    // The host's `local` storage, as Lifeboat sees it on the node.
    let images = ws.path("pve/images/101");
    std::fs::create_dir_all(&images).unwrap();
    random_file(&images.join("vm-101-disk-0.qcow2"), 3 << 20, 7);
    random_file(&images.join("vm-101-disk-1.raw"), 128 << 10, 8);
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
prune = "never"
jitter = "0s"

[targets.nas]
kind = "local"
path = "{repo}"

[tenants.acme]
name = "ACME"

[contracts.acme-vms]
tenant = "acme"
rpo = "100d"
rto = "1h"

[sources.app01]
tenant = "acme"
contract = "acme-vms"
kind = "vm"
tier = "cold-vm-quarterly"
targets = ["nas"]

[sources.app01.vm]
hypervisor = "proxmox"
url = "http://{address}"
node = "pve1"
vmid = 101
token_env = "TEST_PVE_TOKEN"
storage = {{ local = "{storage}" }}
shutdown_timeout = "30s"

[sources.app01.vm.health]
tcp = "{address}"
timeout = "30s"
"#,
        keys = ws.path("keys").display(),
        repo = ws.path("repo").display(),
        storage = ws.path("pve/images").display(),
    );
    let cfg = ws.path("lifeboat.toml");
    std::fs::write(&cfg, text).unwrap();

    // Without the token in the environment: a clear error, and the VM untouched.
    let run = ws
        .lifeboat(&["vm", "cold-backup", "app01", "--config"])
        .arg(&cfg)
        .run();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("TEST_PVE_TOKEN (vm.token_env) is not set"),
        "{}",
        run.stderr
    );
    assert!(host.lock().unwrap().requests.is_empty());

    let run = ws
        .lifeboat(&["vm", "cold-backup", "app01", "--config"])
        .arg(&cfg)
        .env(
            "TEST_PVE_TOKEN",
            "lifeboat@pve!cold=5e1f0c2a-7d3b-4e8f-9a6c-0b1d2e3f4a5b",
        )
        .run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let host = host.lock().unwrap();
    assert!(host.running, "the VM was not started again");
    let calls: Vec<&str> = host
        .requests
        .iter()
        .map(|r| r.split(" [").next().unwrap())
        .collect();
    let first = |c: &str| calls.iter().position(|x| *x == c).unwrap();
    assert_eq!(calls[0], "GET status/current", "{calls:?}");
    assert!(
        first("GET config") < first("POST status/shutdown"),
        "{calls:?}"
    );
    assert!(
        first("POST status/shutdown") < first("POST status/start"),
        "{calls:?}"
    );
    assert!(!calls.contains(&"POST status/stop"), "{calls:?}");
    assert!(host.requests.iter().all(
        |r| r.ends_with("[PVEAPIToken=lifeboat@pve!cold=5e1f0c2a-7d3b-4e8f-9a6c-0b1d2e3f4a5b]")
    ));
    // Both disks, the CD-ROM left out, restored byte for byte.
    let out = ws.path("restored");
    ws.restore("latest", &out, &[]).ok();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["efidisk0-vm-101-disk-1.raw", "scsi0-vm-101-disk-0.qcow2"]
    );
    assert_eq!(
        std::fs::read(out.join("scsi0-vm-101-disk-0.qcow2")).unwrap(),
        std::fs::read(images.join("vm-101-disk-0.qcow2")).unwrap()
    );
}

#[test]
fn a_libvirt_domain_is_backed_up_cold_and_comes_back() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let libvirt = common::libvirt::Libvirtd::start(&ws.path("libvirt"));
    let guest = Guest::new(&ws.path("guest"), Mode::Stay, "LIFEBOAT-COLD-OK libvirt");
    let xml = ws.path("web.xml");
    std::fs::write(&xml, guest.libvirt_domain("web")).unwrap();
    libvirt.virsh(&["define", &xml.display().to_string()]);
    libvirt.virsh(&["start", "web"]);
    guest.wait_for_marker(std::time::Duration::from_secs(120));

    let cfg = config(&ws, &guest, "60s");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let qemu_table = text.find("[sources.web.vm]").expect("a vm table");
    let libvirt_table = format!(
        "[sources.web.vm]\nhypervisor = \"libvirt\"\ndomain = \"web\"\nconnect = \"{}\"\n\
         shutdown_timeout = \"60s\"\n\n[sources.web.vm.health]\nconsole = \"{}\"\n\
         marker = \"{}\"\ntimeout = \"2m\"\n",
        libvirt.uri(),
        guest.console.display(),
        guest.marker
    );
    std::fs::write(&cfg, format!("{}{libvirt_table}", &text[..qemu_table])).unwrap();

    let run = cold_backup(&ws, &cfg);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(libvirt.virsh(&["domstate", "web"]), "running");
    // It was shut down through the guest (the ACPI power button), not pulled.
    let before = std::fs::read_to_string(guest.dir.join("console.log.previous")).unwrap();
    assert!(before.contains("power button pressed"), "{before}");
    assert!(guest.console_text().contains(&guest.marker));
    let record = records(&ws).pop().unwrap();
    assert_eq!(record["outcome"], "success", "{record:#}");
    assert!(record["measured"]["downtime_ms"].as_u64().unwrap() > 0);
    assert!(timeline(&record).contains(&"vm back".to_string()));
    let out = ws.path("restored");
    ws.restore("latest", &out, &[]).ok();
    assert_eq!(
        std::fs::read(out.join("vdb-data.raw")).unwrap(),
        std::fs::read(&guest.data).unwrap()
    );
    tool(
        std::process::Command::new("qemu-img")
            .arg("check")
            .arg(out.join("vda-system.qcow2")),
    );
}

#[test]
fn with_force_off_a_vm_that_ignores_the_shutdown_is_powered_off_hard_and_backed_up() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let guest = Guest::new(&ws.path("guest"), Mode::Ignore, "LIFEBOAT-COLD-OK forced");
    let cfg = config(&ws, &guest, "5s");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "shutdown_timeout = \"5s\"",
        "shutdown_timeout = \"5s\"\nforce_off = true",
    );
    std::fs::write(&cfg, text).unwrap();
    guest.launch();

    let run = cold_backup(&ws, &cfg);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("powering it off hard"),
        "{}",
        run.stderr
    );
    assert!(guest.running());
    assert!(guest.console_text().contains(&guest.marker));
    let record = records(&ws).pop().unwrap();
    assert_eq!(record["outcome"], "success", "{record:#}");
    assert_eq!(record["measured"]["forced_power_off"], 1);
    let steps = timeline(&record);
    assert!(
        steps.contains(&"vm powered off hard".to_string()),
        "{steps:?}"
    );
    assert!(record["measured"]["downtime_ms"].as_u64().unwrap() >= 5000);
}

#[test]
fn on_its_tier_a_vm_that_does_not_come_back_is_a_critical_incident_reported_at_once() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    let hook = common::hook::Hook::start();
    let guest = Guest::new(&ws.path("guest"), Mode::Stay, "LIFEBOAT-COLD-OK lost");
    let cfg = config(&ws, &guest, "60s");
    // The VM starts for the test, but the configured start command fails afterwards.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let start = text
        .lines()
        .find(|l| l.starts_with("start = ["))
        .unwrap()
        .to_string();
    let text = text.replace(&start, "start = [\"false\"]").replace(
        "jitter = \"0s\"",
        &format!("jitter = \"0s\"\nwebhook = \"{}\"", hook.url),
    );
    std::fs::write(&cfg, text).unwrap();
    guest.launch();

    // The daemon's clock starts 5 s before the quarter's slot (03:00 on 1 January).
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&cfg)
        .env("LIFEBOAT_CLOCK_START", "2027-01-01T02:59:55Z");
    let server = Server::start(cmd);
    let sent = hook.next();
    assert_eq!(sent["severity"], "critical", "{sent:#}\n{}", server.log());
    assert!(
        sent["summary"]
            .as_str()
            .unwrap()
            .contains("did not come back after its cold backup"),
        "{sent:#}"
    );
    assert!(!guest.running(), "the VM runs after all");
    let record = records(&ws).pop().unwrap();
    assert_eq!(record["outcome"], "failure", "{record:#}");
    assert_eq!(record["tier"], "cold-vm-quarterly");
    assert_eq!(record["incident"]["severity"], "critical");
    // The backup itself was made and is kept.
    assert_eq!(record["snapshot"]["id"].as_str().unwrap().len(), 64);
    let steps = timeline(&record);
    assert!(steps.contains(&"vm disks read".to_string()), "{steps:?}");
    assert!(!steps.contains(&"vm back".to_string()), "{steps:?}");
    // Failed for good: not tried again on its own.
    let admin = ws.admin_token(&cfg);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let jobs = server.get("/api/v1/jobs", Some(&admin)).json();
        let job = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["source"] == "web")
            .cloned()
            .unwrap_or_else(|| panic!("{jobs:#}"));
        if job["state"] != "running" || std::time::Instant::now() > deadline {
            break job;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["attempts"], 1, "{job:#}");
}
