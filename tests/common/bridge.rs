//! Bridges into network namespaces. A process in a namespace of its own (`unshare --net`)
//! has a loopback and nothing else: nothing can connect to it, and it can reach nothing.
//! A bridge lets it reach one server of this machine: `socat` inside the namespace listens on
//! the server's port of the namespace's own 127.0.0.1 and passes each connection through a
//! Unix socket (a file, which namespaces share) to this process, which connects to the
//! server on the machine's 127.0.0.1. Connections go one way only: from the namespace out.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// One server reachable from namespaces: its port, and the Unix socket that leads to it.
pub struct Bridge {
    pub port: u16,
    pub socket: PathBuf,
}

impl Bridge {
    /// Opens the Unix socket `socket` and carries every connection on it to
    /// 127.0.0.1:`port` (a connection is dropped when the server is not there).
    pub fn open(socket: &Path, port: u16) -> Bridge {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the bridge's socket");
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                std::thread::spawn(move || {
                    let Ok(outbound) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    let (Ok(mut a_in), Ok(mut b_out)) = (inbound.try_clone(), outbound.try_clone())
                    else {
                        return;
                    };
                    let (mut a_out, mut b_in) = (inbound, outbound);
                    std::thread::spawn(move || {
                        copy(&mut a_in, &mut b_out);
                        let _ = b_out.shutdown(std::net::Shutdown::Write);
                    });
                    copy(&mut b_in, &mut a_out);
                    let _ = a_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Bridge {
            port,
            socket: socket.to_path_buf(),
        }
    }
}

fn copy(from: &mut impl Read, to: &mut impl Write) {
    let _ = std::io::copy(from, to);
}

/// Whether this machine lets the tests make network namespaces (root, `unshare`, `socat`,
/// `ip`); why not, if not.
pub fn namespaces() -> Result<(), String> {
    let ok = std::process::Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("unshare: {e}"))?;
    if !ok.success() {
        return Err("unshare --net failed (the tests need root for network namespaces)".into());
    }
    std::process::Command::new("socat")
        .arg("-V")
        .output()
        .map_err(|e| format!("socat: {e} (tests/run.sh installs it)"))?;
    Ok(())
}

/// Runs `cmd` (made by `in_namespace`) to its end; its output, after its bridges' ends are
/// stopped.
pub fn run_in_namespace(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start in a namespace");
    let group = child.id() as libc::pid_t;
    let out = child.wait_with_output().expect("wait");
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    out
}

/// `command` to run in a network namespace of its own, with `bridges` open inside it.
/// Killing the process group it leads stops the bridges' ends in it too.
pub fn in_namespace(bridges: &[&Bridge], program: &Path, args: &[String]) -> std::process::Command {
    let mut script = String::from("ip link set lo up || exit 97\n");
    for b in bridges {
        script.push_str(&format!(
            "socat TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:'{sock}' \
             </dev/null >/dev/null 2>&1 &\n",
            port = b.port,
            sock = b.socket.display()
        ));
    }
    // Each listener is there before the program starts (bounded: 10 s).
    for b in bridges {
        script.push_str(&format!(
            "i=0; until socat -u OPEN:/dev/null TCP:127.0.0.1:{port} 2>/dev/null; do \
             i=$((i+1)); [ $i -gt 200 ] && exit 98; sleep 0.05; done\n",
            port = b.port
        ));
    }
    script.push_str("exec \"$@\"\n");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c", &script, "sh"])
        .arg(program)
        .args(args);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}
