//! A private libvirt daemon for tests: `libvirtd` in session mode, run in a user namespace
//! (root outside is uid 1000 inside, so libvirt takes it for an ordinary user) with its own
//! XDG folders, reached by `virsh -c qemu:///session?socket=…`. Domains are destroyed and the
//! daemon stopped when it is dropped, even when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Libvirtd {
    dir: PathBuf,
    daemon: Child,
}

impl Libvirtd {
    pub fn start(dir: &Path) -> Libvirtd {
        for sub in ["home", "run", "config", "cache", "data"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let program = ["/usr/sbin/libvirtd", "/usr/bin/libvirtd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("libvirtd");
        let daemon = Command::new("unshare")
            .args(["--user", "--map-user=1000", "--map-group=1000"])
            .args([program, "--timeout", "900"])
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("libvirtd.log")).unwrap())
            .spawn()
            .expect("run libvirtd (is libvirt-daemon-driver-qemu installed? run tests/run.sh)");
        let d = Libvirtd {
            dir: dir.to_path_buf(),
            daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "libvirtd did not start: {}",
                std::fs::read_to_string(dir.join("libvirtd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("run/libvirt/libvirt-sock")
    }

    pub fn uri(&self) -> String {
        format!("qemu:///session?socket={}", self.socket().display())
    }

    /// `virsh -c URI ARGS…`; its output (it must succeed).
    pub fn virsh(&self, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .args(["-q", "-c", &self.uri()])
            .args(args)
            .output()
            .expect("run virsh");
        assert!(
            out.status.success(),
            "virsh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        let uri = self.uri();
        let virsh = |args: &[&str]| {
            Command::new("virsh")
                .args(["-q", "-c", &uri])
                .args(args)
                .output()
                .ok()
        };
        if let Some(out) = virsh(&["list", "--name"]) {
            for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = virsh(&["destroy", name]);
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
