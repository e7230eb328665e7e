//! Hypervisor drivers for cold VM backups, behind one small trait: what state a VM is in, which
//! disk images it has, a clean shutdown, a hard power-off, and a start. `cold` runs a cold
//! backup over any of them; `health` checks that a VM came back.

pub mod cold;
pub mod health;
pub mod libvirt;
pub mod proxmox;
pub mod qemu;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

/// What the hypervisor says of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    /// Shut down: its disks are not in use.
    Off,
    /// Anything else (paused, suspended, crashed, in migration), as the hypervisor names it.
    Other(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Running => f.write_str("running"),
            State::Off => f.write_str("off"),
            State::Other(s) => f.write_str(s),
        }
    }
}

/// One disk image of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The VM's name for it (`virtio0`, `vda`, `scsi0`).
    pub device: String,
    /// The image file or block device on this host.
    pub path: PathBuf,
    /// `qcow2`, `raw`, … as the hypervisor says, or from the file name.
    pub format: String,
}

impl Disk {
    /// A disk named in the configuration: its format from the file name's extension.
    pub fn configured(index: usize, path: PathBuf) -> Disk {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("qcow2") => "qcow2",
            Some("vmdk") => "vmdk",
            Some("vdi") => "vdi",
            _ => "raw",
        };
        Disk {
            device: format!("disk{index}"),
            format: format.into(),
            path,
        }
    }
}

/// A VM as one hypervisor sees it.
pub trait Hypervisor: Send + Sync {
    /// The VM, for messages (`qemu VM at /run/web.qmp`).
    fn describe(&self) -> String;
    fn state(&self) -> Result<State>;
    /// The VM's disk images (while it runs: some hypervisors cannot say once it is off).
    fn disks(&self) -> Result<Vec<Disk>>;
    /// Asks the guest to shut down cleanly (ACPI power button); returns without waiting.
    fn shutdown(&self) -> Result<()>;
    /// Powers the VM off at once, as pulling the plug would.
    fn power_off(&self) -> Result<()>;
    /// Starts the VM; returns once the hypervisor runs it.
    fn start(&self) -> Result<()>;
}

/// The driver for a source's `[sources.NAME.vm]` table (validated at load).
pub fn driver(name: &str, vm: &crate::config::vm::Vm) -> Result<Box<dyn Hypervisor>> {
    let missing = |key: &str| Error(format!("source '{name}': vm.{key} is not set"));
    Ok(match vm.hypervisor.get_ref().as_str() {
        "qemu" => Box::new(qemu::Qemu::new(
            vm.qmp.clone().ok_or_else(|| missing("qmp"))?,
            vm.start.clone().ok_or_else(|| missing("start"))?,
        )),
        "libvirt" => Box::new(libvirt::Libvirt::new(
            vm.domain.clone().ok_or_else(|| missing("domain"))?,
            vm.connect.clone(),
        )),
        "proxmox" => Box::new(proxmox::Proxmox::new(
            vm.url.clone().ok_or_else(|| missing("url"))?,
            vm.node.clone().ok_or_else(|| missing("node"))?,
            vm.vmid.ok_or_else(|| missing("vmid"))?,
            {
                let var = vm.token_env.clone().ok_or_else(|| missing("token_env"))?;
                std::env::var(&var).map_err(|_| {
                    Error(format!(
                        "source '{name}': the environment variable {var} (vm.token_env) is not \
                         set; it must hold a Proxmox API token, USER@REALM!NAME=SECRET"
                    ))
                })?
            },
            vm.storage.clone(),
            vm.ca_cert.as_deref(),
        )?),
        other => return Err(Error(format!("unknown hypervisor '{other}'"))),
    })
}
