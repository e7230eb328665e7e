//! The test VM (tests/vm/build.sh) and guests run from it for cold-backup tests: a qcow2 system
//! disk with a boot marker, a sparse raw data disk, a QMP socket and a serial console log.
//! Every QEMU run is wrapped in `timeout` and killed when the guest is dropped, even when the
//! test fails.
#![allow(dead_code)]

use super::tool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The kernel, initramfs and QEMU that tests/vm/build.sh makes: where tests/run.sh put them,
/// or built here on first use.
pub fn test_vm() -> PathBuf {
    let dir = std::env::var_os("LIFEBOAT_TEST_VM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/vm"));
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/build.sh");
    tool(Command::new("bash").arg(build).arg(&dir));
    dir
}

/// An ext4 image of `content` in `format` (qcow2 or raw), `mib` MiB large.
pub fn disk_image(content: &Path, image: &Path, mib: u64, format: &str) {
    let raw = image.with_extension("build.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    tool(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(content)
            .arg(&raw),
    );
    if format == "raw" {
        std::fs::rename(&raw, image).unwrap();
    } else {
        tool(
            Command::new("qemu-img")
                .args(["convert", "-O", format])
                .arg(&raw)
                .arg(image),
        );
        std::fs::remove_file(&raw).unwrap();
    }
}

/// How the guest treats the ACPI power button.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Powers off when it is pressed.
    Stay,
    /// Never powers off.
    Ignore,
}

pub struct Guest {
    pub dir: PathBuf,
    pub system: PathBuf,
    pub data: PathBuf,
    pub qmp: PathBuf,
    pub console: PathBuf,
    pub pidfile: PathBuf,
    pub marker: String,
    /// The command line that starts it (what `vm.start` says).
    pub start: Vec<String>,
    /// The `timeout` process of the test's own launch, waited for when dropped.
    child: std::sync::Mutex<Option<std::process::Child>>,
}

impl Guest {
    /// A guest in `dir`: a 48 MiB qcow2 system disk whose /marker is `marker`, a 32 MiB raw
    /// data disk with 1 MiB of data at 8 MiB and zeros elsewhere.
    pub fn new(dir: &Path, mode: Mode, marker: &str) -> Guest {
        let vm = test_vm();
        std::fs::create_dir_all(dir).unwrap();
        let content = dir.join("content");
        std::fs::create_dir_all(&content).unwrap();
        std::fs::write(content.join("marker"), format!("{marker}\n")).unwrap();
        let system = dir.join("system.qcow2");
        disk_image(&content, &system, 48, "qcow2");
        let data = dir.join("data.raw");
        {
            use std::io::{Seek, Write};
            let mut f = std::fs::File::create(&data).unwrap();
            f.set_len(32 << 20).unwrap();
            f.seek(std::io::SeekFrom::Start(8 << 20)).unwrap();
            let block: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8 + 1).collect();
            f.write_all(&block).unwrap();
        }
        let mode = match mode {
            Mode::Stay => "stay",
            Mode::Ignore => "ignore",
        };
        let (qmp, console, pidfile) = (
            dir.join("qmp.sock"),
            dir.join("console.log"),
            dir.join("qemu.pid"),
        );
        let s = |p: &Path| p.display().to_string();
        let start = vec![
            "timeout".into(),
            "300".into(),
            s(&vm.join("qemu-system-x86_64")),
            "-accel".into(),
            "tcg".into(),
            "-M".into(),
            "q35".into(),
            "-m".into(),
            "256".into(),
            "-nic".into(),
            "none".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-kernel".into(),
            s(&vm.join("vmlinuz")),
            "-initrd".into(),
            s(&vm.join("initrd.gz")),
            "-append".into(),
            format!("console=ttyS0 quiet panic=-1 lifeboat.mode={mode}"),
            "-drive".into(),
            format!("file={},if=virtio,format=qcow2", s(&system)),
            "-drive".into(),
            format!("file={},if=virtio,format=raw", s(&data)),
            "-serial".into(),
            format!("file:{}", s(&console)),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", s(&qmp)),
            "-pidfile".into(),
            s(&pidfile),
        ];
        Guest {
            dir: dir.to_path_buf(),
            system,
            data,
            qmp,
            console,
            pidfile,
            marker: marker.to_string(),
            start,
            child: std::sync::Mutex::new(None),
        }
    }

    /// Starts it as `vm.start` would, and waits for its marker on the console.
    pub fn launch(&self) {
        let child = Command::new(&self.start[0])
            .args(&self.start[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("qemu.err")).unwrap())
            .spawn()
            .expect("start QEMU");
        *self.child.lock().unwrap() = Some(child);
        self.wait_for_marker(Duration::from_secs(120));
    }

    pub fn wait_for_marker(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.console_text().contains(&self.marker) {
            assert!(
                Instant::now() < deadline,
                "no '{}' on the console: {}\n{}",
                self.marker,
                self.console_text(),
                std::fs::read_to_string(self.dir.join("qemu.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Whether its QEMU process runs.
    pub fn running(&self) -> bool {
        // SAFETY: kill with signal 0 only checks that the process exists.
        self.pid()
            .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
    }

    /// A libvirt domain for it (the same kernel, disks, mode and console), with QEMU run under
    /// `timeout 300`.
    pub fn libvirt_domain(&self, name: &str) -> String {
        let vm = test_vm();
        let emulator = self.dir.join("qemu-limited");
        std::fs::write(
            &emulator,
            format!(
                "#!/bin/sh\nexec timeout 300 {} \"$@\"\n",
                vm.join("qemu-system-x86_64").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&emulator, std::fs::Permissions::from_mode(0o755)).unwrap();
        let append = &self.start[self.start.iter().position(|a| a == "-append").unwrap() + 1];
        format!(
            "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n\
             <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n\
             <kernel>{kernel}</kernel>\n    <initrd>{initrd}</initrd>\n\
             <cmdline>{append}</cmdline>\n  </os>\n  <features><acpi/></features>\n\
             <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n\
             <devices>\n    <emulator>{emulator}</emulator>\n\
             <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{system}'/><target dev='vda' bus='virtio'/></disk>\n\
             <disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{data}'/><target dev='vdb' bus='virtio'/></disk>\n\
             <serial type='file'><source path='{console}'/><target port='0'/></serial>\n\
             </devices>\n</domain>\n",
            kernel = vm.join("vmlinuz").display(),
            initrd = vm.join("initrd.gz").display(),
            emulator = emulator.display(),
            system = self.system.display(),
            data = self.data.display(),
            console = self.console.display(),
        )
    }

    /// The `[sources.NAME.vm]` table for it.
    pub fn vm_table(&self, source: &str, shutdown_timeout: &str) -> String {
        let start: Vec<String> = self.start.iter().map(|a| format!("{a:?}")).collect();
        format!(
            "[sources.{source}.vm]\nhypervisor = \"qemu\"\nqmp = \"{}\"\nstart = [{}]\n\
             shutdown_timeout = \"{shutdown_timeout}\"\n\n[sources.{source}.vm.health]\n\
             console = \"{}\"\nmarker = \"{}\"\ntimeout = \"2m\"\n",
            self.qmp.display(),
            start.join(", "),
            self.console.display(),
            self.marker
        )
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling a process id read from our own QEMU's pidfile.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
