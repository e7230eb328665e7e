//! A VM run by QEMU, reached through its QMP socket: `query-status`, `query-block`,
//! `system_powerdown` and `quit`; started again by a configured command line.

use super::{Disk, Error, Hypervisor, Result, State};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one QMP exchange may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How long a started QEMU may take to answer on its QMP socket.
const START_WITHIN: Duration = Duration::from_secs(60);

/// QEMU processes this process started that run in the foreground (no `-daemonize`): reaped
/// once they end, so that none lingers as a zombie in a long-running daemon.
static STARTED: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

fn reap() {
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    started.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

pub struct Qemu {
    qmp: PathBuf,
    start: Vec<String>,
}

/// One QMP session (capabilities negotiated).
struct Session {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Session {
    fn execute(&mut self, command: &str) -> Result<Value> {
        self.try_execute(command)?.ok_or_else(|| {
            Error(format!(
                "QMP {command}: QEMU closed the socket without answering"
            ))
        })
    }

    /// `execute`, but `None` when QEMU closes the socket instead of answering (it is going
    /// away).
    fn try_execute(&mut self, command: &str) -> Result<Option<Value>> {
        let line = json!({ "execute": command }).to_string();
        if writeln!(self.writer, "{line}").is_err() {
            return Ok(None);
        }
        loop {
            let Some(reply) = self.read()? else {
                return Ok(None);
            };
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(r) = reply.get("return") {
                return Ok(Some(r.clone()));
            }
            if let Some(e) = reply.get("error") {
                return Err(Error(format!(
                    "QMP {command}: {}",
                    e.get("desc").and_then(Value::as_str).unwrap_or("error")
                )));
            }
        }
    }

    /// The next message, or `None` once QEMU closed the socket.
    fn read(&mut self) -> Result<Option<Value>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| Error(format!("QMP: not JSON ({e}): {}", line.trim()))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(Error("QMP: QEMU did not answer within 10 s".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
            Err(e) => Err(Error(format!("QMP: {e}"))),
        }
    }
}

impl Qemu {
    pub fn new(qmp: PathBuf, start: Vec<String>) -> Qemu {
        Qemu { qmp, start }
    }

    /// A session, or `None` when no QEMU listens on the socket (the VM is off).
    fn connect(&self) -> Result<Option<Session>> {
        let stream = match UnixStream::connect(&self.qmp) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(Error(format!(
                    "cannot connect to QMP socket {}: {e}",
                    self.qmp.display()
                )))
            }
        };
        let io = |e: std::io::Error| Error(format!("QMP socket {}: {e}", self.qmp.display()));
        stream.set_read_timeout(Some(ANSWER_WITHIN)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut session = Session {
            reader: BufReader::new(stream),
            writer,
        };
        match session.read()? {
            Some(greeting) if greeting.get("QMP").is_some() => {}
            // A QEMU that is going away closes at once; so does a socket whose monitor is busy.
            None => return Ok(None),
            Some(other) => {
                return Err(Error(format!(
                    "{} is not a QMP socket (it said {other})",
                    self.qmp.display()
                )))
            }
        }
        // A QEMU that is exiting may greet and then close before it negotiates.
        match session.try_execute("qmp_capabilities")? {
            Some(_) => Ok(Some(session)),
            None => Ok(None),
        }
    }
}

impl Hypervisor for Qemu {
    fn describe(&self) -> String {
        format!("qemu VM at {}", self.qmp.display())
    }

    fn state(&self) -> Result<State> {
        let Some(mut session) = self.connect()? else {
            return Ok(State::Off);
        };
        let status = session.execute("query-status")?;
        Ok(match status.get("status").and_then(Value::as_str) {
            Some("running") => State::Running,
            Some(other) => State::Other(other.to_string()),
            None => State::Other(format!("unknown ({status})")),
        })
    }

    fn disks(&self) -> Result<Vec<Disk>> {
        let mut session = self.connect()?.ok_or_else(|| {
            Error(format!(
                "no QEMU answers on {}: a VM that is off cannot list its disks; list them in \
                 vm.disks",
                self.qmp.display()
            ))
        })?;
        let blocks = session.execute("query-block")?;
        disks_of(&blocks)
    }

    fn shutdown(&self) -> Result<()> {
        let mut session = self
            .connect()?
            .ok_or_else(|| Error("the VM is not running".into()))?;
        session.execute("system_powerdown").map(|_| ())
    }

    fn power_off(&self) -> Result<()> {
        let Some(mut session) = self.connect()? else {
            return Ok(());
        };
        match session.execute("quit") {
            Ok(_) => Ok(()),
            // QEMU may close the socket before it answers.
            Err(_) if self.connect()?.is_none() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn start(&self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let (program, args) = self
            .start
            .split_first()
            .ok_or_else(|| Error("vm.start is empty".into()))?;
        // Its messages go to a file, not a pipe: a daemonized QEMU keeps the pipe open.
        let log = tempfile::tempfile().map_err(|e| Error(format!("temporary file: {e}")))?;
        let err = log
            .try_clone()
            .map_err(|e| Error(format!("temporary file: {e}")))?;
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            // Its own process group: a Ctrl-C meant for Lifeboat does not reach the VM.
            .process_group(0)
            .spawn()
            .map_err(|e| Error(format!("cannot run {program} (vm.start): {e}")))?;
        let said = |mut log: std::fs::File| {
            use std::io::{Read, Seek};
            let mut text = String::new();
            let _ = log.seek(std::io::SeekFrom::Start(0));
            let _ = log.read_to_string(&mut text);
            text.trim().to_string()
        };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    return Err(Error(format!("vm.start failed ({status}): {}", said(log))));
                }
            }
            if self.state()? == State::Running {
                reap();
                STARTED
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error(format!(
                    "QEMU started by vm.start does not answer on {} after {} s: {}",
                    self.qmp.display(),
                    START_WITHIN.as_secs(),
                    said(log)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The disks in a `query-block` answer: every device with an image, CD-ROMs and other
/// removable media left out.
fn disks_of(blocks: &Value) -> Result<Vec<Disk>> {
    let mut disks = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        let Some(inserted) = block.get("inserted") else {
            continue;
        };
        if block.get("removable").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let device = block
            .get("device")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .or_else(|| block.get("qdev").and_then(Value::as_str))
            .unwrap_or("disk")
            .to_string();
        let file = inserted
            .get("image")
            .and_then(|i| i.get("filename"))
            .or_else(|| inserted.get("file"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error(format!("QEMU names no image file for {device}")))?;
        let format = inserted
            .get("drv")
            .and_then(Value::as_str)
            .unwrap_or("raw")
            .to_string();
        if inserted
            .get("backing_file_depth")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0
        {
            return Err(Error(format!(
                "disk {device} ({file}) is an overlay on a backing file; a copy of it alone \
                 would not restore. Merge it (qemu-img commit) or list the images in vm.disks"
            )));
        }
        let path = PathBuf::from(file);
        if !path.is_absolute() {
            return Err(Error(format!(
                "QEMU names disk {device} by a relative path '{file}'; start QEMU with absolute \
                 paths, or list the images in vm.disks"
            )));
        }
        disks.push(Disk {
            device,
            path,
            format,
        });
    }
    if disks.is_empty() {
        return Err(Error("QEMU lists no disk images for this VM".into()));
    }
    Ok(disks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_from_query_block() {
        let answer = json!([
            {"device": "virtio0", "removable": false,
             "inserted": {"drv": "qcow2", "backing_file_depth": 0,
                          "image": {"filename": "/vm/web.qcow2", "format": "qcow2"}}},
            {"device": "ide1-cd0", "removable": true,
             "inserted": {"drv": "raw", "image": {"filename": "/iso/debian.iso"}}},
            {"device": "floppy0", "removable": true},
            {"device": "", "qdev": "/machine/peripheral/data", "removable": false,
             "inserted": {"drv": "raw", "file": "/vm/data.img"}}
        ]);
        let disks = disks_of(&answer).unwrap();
        assert_eq!(
            disks,
            [
                Disk {
                    device: "virtio0".into(),
                    path: "/vm/web.qcow2".into(),
                    format: "qcow2".into()
                },
                Disk {
                    device: "/machine/peripheral/data".into(),
                    path: "/vm/data.img".into(),
                    format: "raw".into()
                }
            ]
        );
        let overlay = json!([{"device": "virtio0", "inserted": {"drv": "qcow2",
            "backing_file_depth": 1, "image": {"filename": "/vm/top.qcow2"}}}]);
        assert!(disks_of(&overlay).unwrap_err().0.contains("backing file"));
        let relative = json!([{"device": "virtio0", "inserted": {"drv": "qcow2",
            "image": {"filename": "disk.qcow2"}}}]);
        assert!(disks_of(&relative).unwrap_err().0.contains("relative"));
        assert!(disks_of(&json!([])).is_err());
    }
}
