//! A cold backup of a VM: note its state, shut it down cleanly within a time limit, confirm it
//! is off, back up its disks, start it again and check that it came back, keeping the times of
//! each step for the evidence.
//!
//! A VM that does not shut down in time is left running and nothing is backed up, unless
//! `force_off` says to power it off hard. A VM that was off stays off.

use super::{health, Disk, Hypervisor, State};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the VM's state is asked while waiting for it.
const POLL: Duration = Duration::from_millis(250);
/// How long a VM may take to be off after a hard power-off.
const POWER_OFF_WITHIN: Duration = Duration::from_secs(30);

pub struct Plan<'a> {
    pub vm: &'a dyn Hypervisor,
    /// Disk images named in the configuration (instead of the hypervisor's list).
    pub disks: Vec<PathBuf>,
    pub shutdown_timeout: Duration,
    pub force_off: bool,
    pub health: Option<health::Check>,
    pub now: &'a dyn Fn() -> DateTime<Utc>,
    /// Progress, one line a step.
    pub log: &'a dyn Fn(&str),
}

/// Why no backup was made; the VM is as the message says.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// What happened.
pub struct Report<T> {
    /// Each step with its time: `shutdown requested`, `off`, `disks read`, `start requested`,
    /// `back`.
    pub timeline: Vec<(String, DateTime<Utc>)>,
    pub was_running: bool,
    pub disks: Vec<Disk>,
    pub backup: Result<T, String>,
    /// For a VM that was running: whether it runs again and passed its health check.
    pub came_back: Result<(), String>,
    /// From the shutdown request until the VM was back (or until now, if it is not).
    pub downtime: Option<chrono::Duration>,
    /// Whether it had to be powered off hard.
    pub forced: bool,
}

pub fn run<T>(
    plan: &Plan<'_>,
    backup: impl FnOnce(&[Disk]) -> Result<T, String>,
) -> Result<Report<T>, Refused> {
    let vm = plan.vm;
    let now = plan.now;
    let refused = |e: super::Error| Refused(format!("{}: {e}", vm.describe()));
    let mut timeline = Vec::new();
    let state = vm.state().map_err(refused)?;
    (plan.log)(&format!("{} is {state}", vm.describe()));
    let was_running = match state {
        State::Running => true,
        State::Off => false,
        State::Other(s) => {
            return Err(Refused(format!(
                "{} is {s}, neither running nor off; a cold backup needs one or the other, \
                 and the VM was not touched",
                vm.describe()
            )))
        }
    };
    let disks = if plan.disks.is_empty() {
        vm.disks().map_err(refused)?
    } else {
        plan.disks
            .iter()
            .enumerate()
            .map(|(i, p)| Disk::configured(i, p.clone()))
            .collect()
    };
    for d in &disks {
        if let Err(e) = std::fs::metadata(&d.path) {
            return Err(Refused(format!(
                "{}: disk {} ({}) cannot be read here: {e}; the VM was not touched",
                vm.describe(),
                d.device,
                d.path.display()
            )));
        }
    }
    let mut forced = false;
    let down_since = now();
    if was_running {
        (plan.log)(&format!(
            "asking {} to shut down (up to {} s)",
            vm.describe(),
            plan.shutdown_timeout.as_secs()
        ));
        vm.shutdown().map_err(refused)?;
        timeline.push(("shutdown requested".to_string(), down_since));
        if !wait_for(vm, State::Off, plan.shutdown_timeout).map_err(refused)? {
            if !plan.force_off {
                return Err(Refused(format!(
                    "{} did not shut down within {} s; it was left running and nothing was \
                     backed up. Look at why the guest ignores the ACPI power button, allow more \
                     time (vm.shutdown_timeout), or set vm.force_off = true to power it off hard",
                    vm.describe(),
                    plan.shutdown_timeout.as_secs()
                )));
            }
            (plan.log)(&format!(
                "{} did not shut down in time: powering it off hard (vm.force_off)",
                vm.describe()
            ));
            vm.power_off().map_err(refused)?;
            timeline.push(("powered off hard".to_string(), now()));
            forced = true;
            if !wait_for(vm, State::Off, POWER_OFF_WITHIN).map_err(refused)? {
                return Err(Refused(format!(
                    "{} is still not off after a hard power-off; nothing was backed up",
                    vm.describe()
                )));
            }
        }
        timeline.push(("off".to_string(), now()));
        (plan.log)(&format!("{} is off", vm.describe()));
    }

    // Confirmed off: read the disks.
    let result = backup(&disks);
    timeline.push((
        if result.is_ok() {
            "disks read"
        } else {
            "backup failed"
        }
        .to_string(),
        now(),
    ));

    let mut came_back = Ok(());
    let mut downtime = None;
    if was_running {
        came_back = start_again(plan, &mut timeline);
        if came_back.is_ok() {
            timeline.push(("back".to_string(), now()));
            (plan.log)(&format!("{} is back", vm.describe()));
        }
        downtime = Some(now() - down_since);
    }
    Ok(Report {
        timeline,
        was_running,
        disks,
        backup: result,
        came_back,
        downtime,
        forced,
    })
}

fn start_again(plan: &Plan<'_>, timeline: &mut Vec<(String, DateTime<Utc>)>) -> Result<(), String> {
    let vm = plan.vm;
    if let Some(check) = &plan.health {
        check.prepare()?;
    }
    (plan.log)(&format!("starting {}", vm.describe()));
    timeline.push(("start requested".to_string(), (plan.now)()));
    vm.start()
        .map_err(|e| format!("{} did not start: {e}", vm.describe()))?;
    let running = wait_for(vm, State::Running, Duration::from_secs(60))
        .map_err(|e| format!("{}: {e}", vm.describe()))?;
    if !running {
        return Err(format!("{} does not run after its start", vm.describe()));
    }
    timeline.push(("running".to_string(), (plan.now)()));
    if let Some(check) = &plan.health {
        check
            .wait()
            .map_err(|e| format!("{} runs but is {e}", vm.describe()))?;
    }
    Ok(())
}

/// Waits until the VM is in `wanted`; false when `within` passed first.
fn wait_for(vm: &dyn Hypervisor, wanted: State, within: Duration) -> super::Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        if vm.state()? == wanted {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}
