//! `lifeboat agent run`: the agent at work. For now it checks in with the centre at a steady
//! pace, so the centre knows the site is alive (see `[service] site_silence`); running the
//! site's jobs comes next. A centre that cannot be reached is tried again, sooner at first;
//! a revoked agent stops, since nothing it asks will be taken again.

use super::check_in::check_in;
use super::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Checks in every `every` until `shutdown` completes (Ok) or the centre has revoked the
/// agent (Err). `say` gets a line for each change worth a log line.
pub async fn run(
    data_dir: &Path,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    say: impl Fn(&str),
) -> Result<(), Error> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures: u32 = 0;
    loop {
        let dir: PathBuf = data_dir.to_path_buf();
        let answer = tokio::task::spawn_blocking(move || check_in(&dir, chrono::Utc::now()))
            .await
            .map_err(|e| Error::Other(format!("the check-in stopped: {e}")))?;
        match answer {
            Ok(c) => {
                if failures > 0 {
                    say(&format!(
                        "the centre answers again after {failures} failed check-in(s)"
                    ));
                }
                if c.clock_skew_ms.abs() > 60_000 {
                    say(&format!(
                        "this machine's clock is {:.0} s from the centre's: set it right (NTP)",
                        c.clock_skew_ms as f64 / 1000.0
                    ));
                }
                failures = 0;
            }
            Err(Error::Centre {
                status: 403,
                message,
            }) => {
                return Err(Error::Refused(format!(
                    "the centre refuses this agent: {message}"
                )))
            }
            Err(e) => {
                failures += 1;
                say(&format!("check-in {failures} failed: {e}"));
            }
        }
        // After a failure: 1 s, 2 s, 4 s … up to the usual pace.
        let wait = if failures == 0 {
            every
        } else {
            Duration::from_secs(1 << failures.min(16)).min(every)
        };
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
