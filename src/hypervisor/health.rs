//! Whether a VM came back after a cold backup: a marker on its serial console, a TCP port that
//! accepts connections, or a command that succeeds, within a time limit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Check {
    /// The console log and the text that shows the VM is up.
    pub console: Option<(PathBuf, String)>,
    pub tcp: Option<String>,
    pub command: Option<Vec<String>>,
    pub timeout: Duration,
}

impl Check {
    pub fn from_config(h: &crate::config::vm::Health) -> Check {
        Check {
            console: h.console.clone().zip(h.marker.clone()),
            tcp: h.tcp.clone(),
            command: h.command.clone(),
            timeout: h.timeout(),
        }
    }

    /// Before the start: the console log of the previous boot is kept as `FILE.previous`, so
    /// that only this boot's output can pass the check.
    pub fn prepare(&self) -> Result<(), String> {
        if let Some((path, _)) = &self.console {
            let mut previous = path.clone().into_os_string();
            previous.push(".previous");
            match std::fs::rename(path, &previous) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot set {} aside: {e}", path.display())),
            }
        }
        Ok(())
    }

    /// Waits until every configured check passes; the error says which did not, and what the
    /// console showed.
    pub fn wait(&self) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let failing = self.failing();
            if failing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut why = format!(
                    "not healthy after {} s: {}",
                    self.timeout.as_secs(),
                    failing.join("; ")
                );
                if let Some((path, _)) = &self.console {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    if !tail.is_empty() {
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        why.push_str(&format!("; the console's last lines: {}", tail.join(" | ")));
                    }
                }
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn failing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((path, marker)) = &self.console {
            let text = std::fs::read(path).unwrap_or_default();
            if !String::from_utf8_lossy(&text).contains(marker.as_str()) {
                out.push(format!("no '{marker}' on the console ({})", path.display()));
            }
        }
        if let Some(address) = &self.tcp {
            if let Err(e) = connect(address) {
                out.push(format!("{address} refuses connections ({e})"));
            }
        }
        if let Some(command) = &self.command {
            if let Some((program, args)) = command.split_first() {
                match std::process::Command::new(program)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                {
                    Ok(o) if o.status.success() => {}
                    Ok(o) => out.push(format!(
                        "{program} failed ({}): {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    )),
                    Err(e) => out.push(format!("cannot run {program}: {e}")),
                }
            }
        }
        out
    }
}

fn connect(address: &str) -> std::io::Result<()> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::other("no address");
    for a in address.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_of_the_previous_boot_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console.log");
        std::fs::write(&console, "old boot\nlogin:\n").unwrap();
        let check = Check {
            console: Some((console.clone(), "login:".into())),
            tcp: None,
            command: None,
            timeout: Duration::from_millis(300),
        };
        check.prepare().unwrap();
        assert!(dir.path().join("console.log.previous").exists());
        let err = check.wait().unwrap_err();
        assert!(err.contains("no 'login:' on the console"), "{err}");
        std::fs::write(&console, "booting\nlogin:\n").unwrap();
        check.wait().unwrap();
    }

    #[test]
    fn tcp_and_command_checks() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let check = |tcp: &str, command: &[&str]| Check {
            console: None,
            tcp: Some(tcp.into()),
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            timeout: Duration::from_millis(300),
        };
        check(&open, &["true"]).wait().unwrap();
        let err = check(&closed, &["true"]).wait().unwrap_err();
        assert!(err.contains("refuses connections"), "{err}");
        let err = check(&open, &["false"]).wait().unwrap_err();
        assert!(err.contains("false failed"), "{err}");
    }
}
