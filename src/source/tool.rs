//! Running a dump tool (pg_dump, mariadb-dump) and streaming its output.
//!
//! The tool's standard output is handed to the consumer as it comes; its standard error is
//! kept (the last 16 KiB) for the error message. A tool that exits non-zero, is killed, or
//! whose output the consumer rejects fails the whole run with the tool's own words.

use std::io::Read;
use std::process::{Child, Command, Stdio};

/// The end of what a tool wrote to its standard error, at most this many bytes.
const STDERR_TAIL: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot run {tool}: {source} (is it installed and on PATH?)")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Failed {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("reading the output of {tool}: {source}")]
    Io {
        tool: String,
        #[source]
        source: std::io::Error,
    },
}

/// A tool started with its standard error collected on a thread.
struct Running {
    tool: String,
    child: Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn start(mut cmd: Command, stdin: Stdio, stdout: Stdio) -> Result<Running, ToolError> {
        let tool = tool_name(&cmd);
        cmd.stdin(stdin).stdout(stdout).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| ToolError::Spawn {
            tool: tool.clone(),
            source,
        })?;
        let stderr = collect_stderr(&mut child);
        Ok(Running {
            tool,
            child,
            stderr,
        })
    }

    fn io(&self, source: std::io::Error) -> ToolError {
        ToolError::Io {
            tool: self.tool.clone(),
            source,
        }
    }

    /// Waits for the tool; fails if it did not succeed. Returns its standard error.
    fn finish(mut self) -> Result<String, ToolError> {
        let status = self.child.wait().map_err(|e| self.io(e))?;
        let stderr = self.stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(ToolError::Failed {
                tool: self.tool,
                status: describe_status(&status),
                stderr: stderr.trim().to_string(),
            });
        }
        Ok(stderr)
    }
}

/// Runs `cmd`, hands its standard output to `consume`, then checks how it ended. If `consume`
/// fails, the tool is killed and that error is returned.
pub fn stream<E>(
    cmd: Command,
    consume: &mut dyn FnMut(&mut dyn Read) -> Result<(), E>,
) -> Result<Result<(), E>, ToolError> {
    let mut running = Running::start(cmd, Stdio::null(), Stdio::piped())?;
    let mut stdout = running
        .child
        .stdout
        .take()
        .ok_or_else(|| running.io(std::io::Error::other("no standard output")))?;
    let consumed = consume(&mut stdout);
    drop(stdout);
    if consumed.is_err() {
        // The consumer's error is the one to report; the tool's end no longer matters.
        let _ = running.child.kill();
        let _ = running.child.wait();
        return Ok(consumed);
    }
    running.finish()?;
    Ok(consumed)
}

/// Runs `cmd` to its end and returns its standard output; fails with its standard error.
pub fn output(mut cmd: Command) -> Result<Vec<u8>, ToolError> {
    let tool = tool_name(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            tool: tool.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            tool,
            status: describe_status(&out.status),
            stderr: tail(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Runs `cmd` with `feed` writing its standard input; fails with its standard error.
pub fn feed(
    cmd: Command,
    feed: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), ToolError> {
    feed_collect(cmd, feed).map(|_| ())
}

/// Like `feed`, and returns what the tool wrote to its standard error when it succeeded
/// (warnings a caller may want to look at).
pub fn feed_collect(
    cmd: Command,
    feed: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<String, ToolError> {
    let mut running = Running::start(cmd, Stdio::piped(), Stdio::null())?;
    let fed = match running.child.stdin.take() {
        Some(mut stdin) => feed(&mut stdin),
        None => Err(std::io::Error::other("no standard input")),
    };
    let io = |e| ToolError::Io {
        tool: running.tool.clone(),
        source: e,
    };
    let fed = fed.map_err(io);
    // A tool that failed explains a broken pipe better than the pipe does.
    let stderr = running.finish()?;
    fed?;
    Ok(stderr)
}

fn tool_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut e) = stderr {
            let mut buf = [0u8; 8192];
            while let Ok(n) = e.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
                if all.len() > 4 * STDERR_TAIL {
                    all.drain(..all.len() - STDERR_TAIL);
                }
            }
        }
        tail(&all)
    })
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Runs `cmd` with `write` putting a file of a snapshot on its standard input. If reading the
/// snapshot fails, that error is returned (outer), not the broken pipe the tool then sees;
/// otherwise the tool's own result (inner), with its standard error when it succeeded.
pub fn feed_snapshot(
    cmd: Command,
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> crate::repo::Result<u64>,
) -> crate::repo::Result<Result<String, ToolError>> {
    let mut failure = None;
    let fed = feed_collect(cmd, &mut |stdin| {
        write(stdin).map(|_| ()).map_err(|e| {
            failure = Some(e);
            std::io::Error::other("reading the snapshot failed")
        })
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(fed),
    }
}

/// The first of `names` found on PATH (`mariadb-dump`, then `mysqldump`), or the first name
/// if none is, so that the error names the preferred tool.
pub fn first_on_path(names: &[&'static str]) -> &'static str {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .find(|name| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .or(names.first())
        .copied()
        .unwrap_or_default()
}
