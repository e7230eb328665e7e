//! `lifeboat agent run` in the background for tests: its log kept, its process group (the
//! agent, and in a namespace its bridges' ends) killed when dropped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Agent {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts `cmd` (an `agent run` command line) as the leader of a process group.
    pub fn start(cmd: &mut Command) -> Agent {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("start the agent");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Agent { child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Backups the agent's daemon finished to target `target`.
    pub fn backups(&self, target: &str) -> usize {
        let done = format!(" done: {target}:");
        self.log().lines().filter(|l| l.contains(&done)).count()
    }

    pub fn kill(&mut self) {
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for `done` to hold, checking every 200 ms; panics with `what` and `log()` after
/// `within`.
pub fn wait_for(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} never happened:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
