//! A VM on a Proxmox VE host, through the host's API with an API token: `status/current`,
//! `config` (its disks), `status/shutdown`, `status/stop` and `status/start`. Lifeboat reads
//! the disk volumes itself, so it runs on the host (or where the storage is mounted);
//! `vm.storage` says where each storage keeps its volumes.
//!
//! No Proxmox host runs in the test environment: this driver is tested against recorded API
//! answers, and kept to the few calls above.

use super::{Disk, Error, Hypervisor, Result, State};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct Proxmox {
    /// `https://HOST:8006/api2/json/nodes/NODE/qemu/VMID`
    base: String,
    token: String,
    storage: BTreeMap<String, PathBuf>,
    agent: ureq::Agent,
    vmid: u32,
}

impl Proxmox {
    pub fn new(
        url: String,
        node: String,
        vmid: u32,
        token: String,
        storage: BTreeMap<String, PathBuf>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Proxmox> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false);
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Error(format!("vm.ca_cert {}: {e}", path.display())))?;
            let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| {
                Error(format!(
                    "vm.ca_cert {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        cert,
                    ])))
                    .build(),
            );
        }
        Ok(Proxmox {
            base: format!(
                "{}/api2/json/nodes/{node}/qemu/{vmid}",
                url.trim_end_matches('/')
            ),
            token,
            storage,
            agent: config.build().into(),
            vmid,
        })
    }

    /// Calls the API; the answer's `data`.
    fn call(&self, method: &str, path: &str) -> Result<Value> {
        let url = format!("{}/{path}", self.base);
        let auth = format!("PVEAPIToken={}", self.token);
        let response = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut response =
            response.map_err(|e| Error(format!("Proxmox API {method} {url}: {e}")))?;
        let status = response.status();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| Error(format!("Proxmox API {method} {url}: {e}")))?;
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 => " (is the API token in vm.token_env right?)",
                403 => " (the token needs VM.PowerMgmt and VM.Audit on this VM)",
                _ => "",
            };
            return Err(Error(format!(
                "Proxmox API {method} {url}: {status}{hint}: {}",
                body.trim()
            )));
        }
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| Error(format!("Proxmox API {method} {url}: not JSON: {e}")))?;
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }
}

impl Hypervisor for Proxmox {
    fn describe(&self) -> String {
        format!("Proxmox VM {}", self.vmid)
    }

    fn state(&self) -> Result<State> {
        Ok(state_of(&self.call("GET", "status/current")?))
    }

    fn disks(&self) -> Result<Vec<Disk>> {
        disks_of(&self.call("GET", "config")?, &self.storage)
    }

    fn shutdown(&self) -> Result<()> {
        self.call("POST", "status/shutdown").map(|_| ())
    }

    fn power_off(&self) -> Result<()> {
        self.call("POST", "status/stop").map(|_| ())
    }

    fn start(&self) -> Result<()> {
        self.call("POST", "status/start").map(|_| ())
    }
}

fn state_of(data: &Value) -> State {
    let status = data.get("status").and_then(Value::as_str).unwrap_or("");
    let qmp = data.get("qmpstatus").and_then(Value::as_str);
    match (status, qmp) {
        ("running", Some("running") | None) => State::Running,
        ("stopped", _) => State::Off,
        ("running", Some(other)) => State::Other(other.to_string()),
        (other, _) => State::Other(other.to_string()),
    }
}

/// The disks in a VM's `config`: every ide/sata/scsi/virtio/efidisk/tpmstate volume but
/// CD-ROMs and empty drives, each found under its storage's folder.
fn disks_of(config: &Value, storage: &BTreeMap<String, PathBuf>) -> Result<Vec<Disk>> {
    let mut disks = Vec::new();
    let Some(entries) = config.as_object() else {
        return Err(Error("the VM's config is not an object".into()));
    };
    for (key, value) in entries {
        let bus = key.trim_end_matches(|c: char| c.is_ascii_digit());
        if bus == key.as_str()
            || !["ide", "sata", "scsi", "virtio", "efidisk", "tpmstate"].contains(&bus)
        {
            continue;
        }
        let Some(spec) = value.as_str() else { continue };
        let mut parts = spec.split(',');
        let volume = parts.next().unwrap_or("");
        if parts.any(|p| p == "media=cdrom") || volume == "none" || volume.is_empty() {
            continue;
        }
        let (store, name) = volume.split_once(':').ok_or_else(|| {
            Error(format!(
                "{key} = {spec}: not a STORAGE:VOLUME volume; list it in vm.disks"
            ))
        })?;
        let folder = storage.get(store).ok_or_else(|| {
            Error(format!(
                "{key} lives on storage '{store}', which vm.storage does not map to a folder \
                 (e.g. {store} = \"/var/lib/vz/images\" or \"/dev/pve\")"
            ))
        })?;
        let mut disk = Disk::configured(disks.len(), folder.join(name));
        disk.device = key.clone();
        disks.push(disk);
    }
    if disks.is_empty() {
        return Err(Error("the VM's config lists no disks".into()));
    }
    Ok(disks)
}
