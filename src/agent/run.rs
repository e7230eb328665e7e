//! `lifeboat agent run`: the agent at work.
//!
//! Every round it checks in (saying how many records its outbox holds), fetches the site's
//! assignment when the centre has a newer one, and pushes its outbox. Beside that, the daemon
//! runs the site's sources on their tiers from the last assignment, with the agent's own
//! catalog and key, whether or not the centre answers. A new assignment restarts the daemon
//! (running jobs finish first). A centre that cannot be reached is tried again, sooner at
//! first; a revoked agent stops, since nothing it asks will be taken again.

use super::assignment::{self, Assignment};
use super::client::Centre;
use super::enroll::{self, Enrolled, KEY_FILE};
use super::Error;
use crate::daemon::{self, Clock};
use crate::repo::crypto::SecretKey;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the agent runs.
pub struct Options {
    /// How often it checks in and pushes.
    pub every: Duration,
    /// The daemon's clock (and the time requests are signed at).
    pub clock: Clock,
}

/// A daemon at work on one assignment.
struct Working {
    stop: tokio::sync::watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<u64, daemon::Error>>,
}

impl Working {
    async fn stop(self, say: &impl Fn(&str)) {
        let _ = self.stop.send(true);
        match self.done.await {
            Ok(Ok(n)) => say(&format!("the site's daemon stopped ({n} job(s) finished)")),
            Ok(Err(e)) => say(&format!("the site's daemon stopped: {e}")),
            Err(e) => say(&format!("the site's daemon stopped: {e}")),
        }
    }
}

/// What one round learnt.
struct Round {
    /// A new assignment, kept.
    assignment: Option<Assignment>,
    pushed: u64,
}

/// Runs until `shutdown` completes (Ok) or the centre has revoked the agent (Err). `say`
/// gets a line for each change worth a log line.
pub async fn run(
    data_dir: &Path,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
    say: impl Fn(&str),
) -> Result<(), Error> {
    let enrolled = enroll::enrolled(data_dir)?.ok_or_else(|| {
        Error::Refused(format!(
            "{} holds no enrolled agent: run 'lifeboat agent enroll' first",
            data_dir.display()
        ))
    })?;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut working: Option<Working> = None;
    // The version of the assignment kept (worked on, or found wanting).
    let mut kept: Option<String> = None;
    if let Some(last) = assignment::current(data_dir)? {
        kept = Some(last.version.clone());
        say(&format!(
            "working from the last assignment ({})",
            short(&last.version)
        ));
        working = start(data_dir, &enrolled, &options.clock, last, &say).await;
    }
    let waiting = tokio::spawn(wait_for_jobs(
        data_dir.to_path_buf(),
        enrolled.clone(),
        options.clock.clone(),
        options.every,
    ));
    let mut failures: u32 = 0;
    loop {
        let have = kept.clone();
        let dir: PathBuf = data_dir.to_path_buf();
        let (who, clock) = (enrolled.clone(), options.clock.clone());
        let answer = tokio::task::spawn_blocking(move || round(&dir, &who, &clock, have))
            .await
            .map_err(|e| Error::Other(format!("the round stopped: {e}")))?;
        match answer {
            Ok(r) => {
                if failures > 0 {
                    say(&format!(
                        "the centre answers again after {failures} failed round(s)"
                    ));
                }
                failures = 0;
                if r.pushed > 0 {
                    say(&format!("pushed {} record(s) to the centre", r.pushed));
                }
                if let Some(new) = r.assignment {
                    say(&format!("new assignment {}", short(&new.version)));
                    kept = Some(new.version.clone());
                    if let Some(w) = working.take() {
                        w.stop(&say).await;
                    }
                    working = start(data_dir, &enrolled, &options.clock, new, &say).await;
                }
            }
            Err(Error::Centre {
                status: 403,
                message,
            }) => {
                waiting.abort();
                if let Some(w) = working.take() {
                    w.stop(&say).await;
                }
                return Err(Error::Refused(format!(
                    "the centre refuses this agent: {message}"
                )));
            }
            Err(e) => {
                failures += 1;
                say(&format!("round {failures} failed: {e}"));
            }
        }
        // After a failure: 1 s, 2 s, 4 s … up to the usual pace.
        let wait = if failures == 0 {
            options.every
        } else {
            Duration::from_secs(1 << failures.min(16)).min(options.every)
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    waiting.abort();
    if let Some(w) = working.take() {
        w.stop(&say).await;
    }
    Ok(())
}

/// Waits for the jobs the centre queues for the site, for as long as the agent runs; after
/// a failure, tries again sooner at first, then at the pace of the rounds.
async fn wait_for_jobs(data_dir: PathBuf, enrolled: Enrolled, clock: Clock, every: Duration) {
    let mut failures: u32 = 0;
    loop {
        let (dir, who, clock2) = (data_dir.clone(), enrolled.clone(), clock.clone());
        let took = tokio::task::spawn_blocking(move || {
            let key = SecretKey::load(&dir.join(KEY_FILE))?;
            let centre = Centre::new(&who.server)?;
            super::jobs::take(&dir, &centre, &key, &clock2, super::jobs::WAIT)
        })
        .await;
        match took {
            Ok(Ok(n)) => {
                failures = 0;
                if n > 0 {
                    eprintln!(
                        "{} took {n} job(s) the centre queued for the site",
                        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                    );
                }
            }
            _ => {
                failures += 1;
                let wait = Duration::from_secs(1 << failures.min(16)).min(every);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Check in, fetch a newer assignment, push the outbox.
fn round(
    data_dir: &Path,
    enrolled: &Enrolled,
    clock: &Clock,
    have: Option<String>,
) -> Result<Round, Error> {
    let key = SecretKey::load(&data_dir.join(KEY_FILE))?;
    let centre = Centre::new(&enrolled.server)?;
    let backlog = crate::catalog::Catalog::open(data_dir)?.outbox_backlog(&enrolled.tenant)?;
    let said = super::check_in::report(&centre, &key, backlog, clock.now())?;
    let mut fresh = None;
    if said.assignment.is_some() && said.assignment != have {
        let got: Assignment =
            centre.call::<(), _>("GET", assignment::PATH, None, Some((&key, clock.now())))?;
        assignment::keep(data_dir, &got, &enrolled.site)?;
        fresh = Some(got);
    }
    let now = || clock.now();
    let pushed = super::outbox::push(data_dir, &centre, &key, &enrolled.tenant, &now)?;
    let mut catalog = crate::catalog::Catalog::open(data_dir)?;
    super::jobs::report(&mut catalog, &centre, &key, clock)?;
    Ok(Round {
        assignment: fresh,
        pushed,
    })
}

/// Starts the site's daemon on `assignment`; says why not when it cannot (the agent goes on
/// checking in, and a corrected assignment starts it).
async fn start(
    data_dir: &Path,
    enrolled: &Enrolled,
    clock: &Clock,
    assignment: Assignment,
    say: &impl Fn(&str),
) -> Option<Working> {
    let dir = data_dir.to_path_buf();
    let version = assignment.version.clone();
    let made = tokio::task::spawn_blocking(move || {
        let key = dir.join(KEY_FILE);
        let (loaded, drills) = assignment::install(&dir, &key, &assignment)?;
        let lock = daemon::lock(&dir).map_err(|e| Error::Other(e.to_string()))?;
        Ok::<_, Error>((loaded, drills, lock))
    })
    .await;
    let (loaded, mut drills, lock) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(e)) => {
            say(&format!(
                "cannot work on assignment {}: {e}",
                short(&version)
            ));
            return None;
        }
        Err(e) => {
            say(&format!(
                "cannot work on assignment {}: {e}",
                short(&version)
            ));
            return None;
        }
    };
    if !drills.is_empty() && loaded.config.service.drill_key.is_none() {
        say(&format!(
            "the site has {} drill(s), but the agent holds no {}: they are not run until a \
             recipient's secret key is put there",
            drills.len(),
            data_dir.join(assignment::DRILL_KEY_FILE).display()
        ));
        drills.clear();
    }
    let stop_timeout = loaded.config.service.stop_timeout();
    say(&format!(
        "working on assignment {}: {} source(s) of site {}",
        short(&version),
        loaded.config.sources.len(),
        enrolled.site
    ));
    let work = daemon::Work {
        loaded,
        drills,
        data_dir: data_dir.to_path_buf(),
        clock: clock.clone(),
        site: Some(enrolled.site.clone()),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let stopped = async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let done = tokio::spawn(daemon::serve(lock, work, stopped, stop_timeout));
    Some(Working { stop, done })
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}
