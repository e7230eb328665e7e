//! A libvirt domain, through `virsh`: `domstate`, `domblklist`, `shutdown`, `destroy`, `start`.

use super::{Disk, Error, Hypervisor, Result, State};
use std::path::PathBuf;

pub struct Libvirt {
    domain: String,
    connect: Option<String>,
}

impl Libvirt {
    pub fn new(domain: String, connect: Option<String>) -> Libvirt {
        Libvirt { domain, connect }
    }

    /// Runs `virsh [-c URI] COMMAND DOMAIN ARGS`; its output, or its message as the error.
    fn virsh(&self, command: &str, args: &[&str]) -> Result<String> {
        let mut cmd = std::process::Command::new("virsh");
        if let Some(uri) = &self.connect {
            cmd.args(["-c", uri]);
        }
        cmd.arg("-q").arg(command).arg(&self.domain).args(args);
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                Error(format!(
                    "cannot run virsh (is libvirt-clients installed?): {e}"
                ))
            })?;
        if !out.status.success() {
            return Err(Error(format!(
                "virsh {command} {}: {}",
                self.domain,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Hypervisor for Libvirt {
    fn describe(&self) -> String {
        match &self.connect {
            Some(uri) => format!("libvirt domain {} ({uri})", self.domain),
            None => format!("libvirt domain {}", self.domain),
        }
    }

    fn state(&self) -> Result<State> {
        Ok(state_of(&self.virsh("domstate", &[])?))
    }

    fn disks(&self) -> Result<Vec<Disk>> {
        disks_of(&self.virsh("domblklist", &["--details"])?)
    }

    fn shutdown(&self) -> Result<()> {
        self.virsh("shutdown", &[]).map(|_| ())
    }

    fn power_off(&self) -> Result<()> {
        self.virsh("destroy", &[]).map(|_| ())
    }

    fn start(&self) -> Result<()> {
        self.virsh("start", &[]).map(|_| ())
    }
}

fn state_of(text: &str) -> State {
    match text.trim() {
        "running" => State::Running,
        "shut off" => State::Off,
        other => State::Other(other.to_string()),
    }
}

/// The disks in `virsh domblklist --details` output (type, device, target, source): disks of
/// type file or block, CD-ROMs and empty drives left out.
fn disks_of(text: &str) -> Result<Vec<Disk>> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind, device, target, source @ ..] = fields.as_slice() else {
            continue;
        };
        if *device != "disk" || source.is_empty() || source == ["-"] {
            continue;
        }
        if !matches!(*kind, "file" | "block") {
            return Err(Error(format!(
                "disk {target} is of type {kind}; only file and block disks can be read here"
            )));
        }
        // A path may hold spaces: the source is the rest of the line.
        let path = PathBuf::from(source.join(" "));
        let mut disk = Disk::configured(disks.len(), path);
        disk.device = target.to_string();
        disks.push(disk);
    }
    if disks.is_empty() {
        return Err(Error("virsh domblklist lists no disk images".into()));
    }
    Ok(disks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_virsh_output() {
        assert_eq!(state_of("running\n\n"), State::Running);
        assert_eq!(state_of("shut off\n"), State::Off);
        assert_eq!(
            state_of("in shutdown\n"),
            State::Other("in shutdown".into())
        );
        let list = " file   disk     vda      /var/lib/libvirt/images/web.qcow2\n \
                    block  disk     vdb      /dev/vg0/web-data\n \
                    file   cdrom    sda      -\n";
        let disks = disks_of(list).unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0].device, "vda");
        assert_eq!(disks[0].format, "qcow2");
        assert_eq!(disks[1].path, PathBuf::from("/dev/vg0/web-data"));
        assert!(disks_of(" network disk vda rbd/web\n").is_err());
        assert!(disks_of("").is_err());
    }
}
