//! `[sources.NAME.vm]`: how Lifeboat reaches a VM's hypervisor for cold backups, how long a
//! clean shutdown may take, and how it checks that the VM came back.

use crate::schedule::retention::parse_span;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
pub struct Vm {
    /// `qemu` (a QEMU process with a QMP socket), `libvirt` (through `virsh`) or `proxmox`
    /// (a Proxmox VE host's API).
    pub hypervisor: Spanned<String>,
    /// qemu: the QMP socket (`-qmp unix:PATH,server=on,wait=off`).
    pub qmp: Option<PathBuf>,
    /// qemu: the command line that starts the VM again, with the same QMP socket (best with
    /// `-daemonize`).
    pub start: Option<Vec<String>>,
    /// libvirt: the domain's name.
    pub domain: Option<String>,
    /// libvirt: the connection URI (default: virsh's own default).
    pub connect: Option<String>,
    /// proxmox: the API's address (`https://pve1.example:8006`).
    pub url: Option<String>,
    /// proxmox: the node the VM runs on.
    pub node: Option<String>,
    /// proxmox: the VM's id.
    pub vmid: Option<u32>,
    /// proxmox: the environment variable holding an API token, `USER@REALM!NAME=SECRET`.
    pub token_env: Option<String>,
    /// proxmox: the CA certificate (PEM) of the host's TLS certificate, when it is not signed by
    /// a public CA (Proxmox's own CA is /etc/pve/pve-root-ca.pem).
    pub ca_cert: Option<PathBuf>,
    /// proxmox: where each storage keeps its volumes on this host (`local = "/var/lib/vz/images"`,
    /// `local-lvm = "/dev/pve"`): a volume `STORAGE:NAME` is read from `FOLDER/NAME`.
    #[serde(default)]
    pub storage: BTreeMap<String, PathBuf>,
    /// The disk images to back up, instead of those the hypervisor lists (and for a VM that is
    /// off, when the hypervisor cannot say).
    #[serde(default)]
    pub disks: Vec<PathBuf>,
    /// How long a clean shutdown may take before the backup is given up (default 5m).
    #[serde(default = "default_timeout")]
    pub shutdown_timeout: Spanned<String>,
    /// On a shutdown time-out, power the VM off hard and go on (default: give up, VM running).
    #[serde(default)]
    pub force_off: bool,
    /// How Lifeboat checks that the VM came back after the backup.
    pub health: Option<Health>,
}

#[derive(Debug, Deserialize)]
pub struct Health {
    /// A file the VM's serial console is written to (`-serial file:PATH`); with `marker`.
    pub console: Option<PathBuf>,
    /// Text the console shows once the VM is up (e.g. `login:`).
    pub marker: Option<String>,
    /// An address (`HOST:PORT`) that accepts TCP connections once the VM is up.
    pub tcp: Option<String>,
    /// A command that succeeds once the VM is up.
    pub command: Option<Vec<String>>,
    /// How long the VM may take to come back (default 5m).
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<String>,
}

fn default_timeout() -> Spanned<String> {
    Spanned::new(0..0, "5m".into())
}

impl Vm {
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        duration(self.shutdown_timeout.get_ref())
    }
}

impl Health {
    pub fn timeout(&self) -> std::time::Duration {
        duration(self.timeout.get_ref())
    }
}

fn duration(text: &str) -> std::time::Duration {
    parse_span(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .unwrap_or(std::time::Duration::from_secs(300))
}

/// Every problem of a source's `vm` table, as (byte offset, message).
pub fn problems(name: &str, vm: &Vm) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let at = vm.hypervisor.span().start;
    let mut need = |what: bool, key: &str, hypervisor: &str| {
        if !what {
            out.push((
                at,
                format!("source '{name}': hypervisor {hypervisor} needs vm.{key}"),
            ));
        }
    };
    match vm.hypervisor.get_ref().as_str() {
        "qemu" => {
            need(vm.qmp.is_some(), "qmp (the QMP socket)", "qemu");
            need(
                vm.start.as_ref().is_some_and(|s| !s.is_empty()),
                "start (the command line that starts the VM)",
                "qemu",
            );
        }
        "libvirt" => need(vm.domain.is_some(), "domain", "libvirt"),
        "proxmox" => {
            need(vm.url.is_some(), "url", "proxmox");
            need(vm.node.is_some(), "node", "proxmox");
            need(vm.vmid.is_some(), "vmid", "proxmox");
            need(vm.token_env.is_some(), "token_env", "proxmox");
        }
        other => out.push((
            at,
            format!("source '{name}': unknown hypervisor '{other}' (qemu, libvirt or proxmox)"),
        )),
    }
    for disk in &vm.disks {
        if !disk.is_absolute() {
            out.push((
                at,
                format!(
                    "source '{name}': disk '{}' must be an absolute path",
                    disk.display()
                ),
            ));
        }
    }
    let mut span = |s: &Spanned<String>, what: &str| {
        if let Err(e) = parse_span(s.get_ref()) {
            out.push((s.span().start, format!("source '{name}': {what}: {e}")));
        }
    };
    span(&vm.shutdown_timeout, "vm.shutdown_timeout");
    if let Some(h) = &vm.health {
        span(&h.timeout, "vm.health.timeout");
        if h.console.is_some() != h.marker.is_some() {
            out.push((
                h.timeout.span().start.max(at),
                format!("source '{name}': vm.health.console and vm.health.marker go together"),
            ));
        }
        if h.console.is_none() && h.tcp.is_none() && h.command.is_none() {
            out.push((
                at,
                format!(
                    "source '{name}': vm.health names no check (console and marker, tcp, or \
                     command)"
                ),
            ));
        }
        if h.command.as_ref().is_some_and(|c| c.is_empty()) {
            out.push((at, format!("source '{name}': vm.health.command is empty")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    fn problems(table: &str) -> Vec<String> {
        let vm: super::Vm = toml::from_str(table).unwrap();
        super::problems("web", &vm)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    #[test]
    fn each_hypervisor_says_what_it_lacks() {
        assert_eq!(
            problems("hypervisor = \"qemu\"\nqmp = \"/run/web.qmp\"\nstart = [\"qemu\"]\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            problems("hypervisor = \"qemu\""),
            [
                "source 'web': hypervisor qemu needs vm.qmp (the QMP socket)",
                "source 'web': hypervisor qemu needs vm.start (the command line that starts the VM)"
            ]
        );
        assert_eq!(
            problems("hypervisor = \"xen\""),
            ["source 'web': unknown hypervisor 'xen' (qemu, libvirt or proxmox)"]
        );
        let p = problems("hypervisor = \"proxmox\"\nurl = \"https://pve:8006\"\nnode = \"pve1\"");
        assert_eq!(p.len(), 2, "{p:?}");
        let p = problems(
            "hypervisor = \"libvirt\"\ndomain = \"web\"\nshutdown_timeout = \"soon\"\n\
             disks = [\"web.qcow2\"]\n[health]\nconsole = \"/var/log/web.log\"\n",
        );
        assert!(
            p.iter().any(|m| m.contains("must be an absolute path")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("vm.shutdown_timeout")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("go together")), "{p:?}");
    }
}
