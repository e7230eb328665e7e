//! Who is writing: this process's identity as sessions, temporary files and upload records
//! carry it, and whether the process behind such an identity has ended.
//!
//! An identity is the machine's boot (`/proc/sys/kernel/random/boot_id`, new at every boot
//! of every machine), the PID namespace, and the PID. Only a writer of the same boot and
//! namespace can be looked up here; of any other (another host, a container of its own, a
//! boot before this one) nothing is known, and callers keep their time-based rules. A PID
//! that is in use again by a process started after the writer was seen alive counts as
//! ended: the writer's own process is gone.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Where a process runs: a boot of a machine and a PID namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The boot id, as 32 hex digits.
    pub boot: String,
    /// The PID namespace's inode number.
    pub namespace: String,
}

/// This process's place, or `None` where `/proc` tells nothing (not Linux).
pub fn here() -> Option<&'static Place> {
    static HERE: OnceLock<Option<Place>> = OnceLock::new();
    HERE.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot: String = boot
            .trim()
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let namespace: String = ns
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        (!boot.is_empty() && !namespace.is_empty()).then_some(Place { boot, namespace })
    })
    .as_ref()
}

impl Place {
    /// `BOOT.NAMESPACE`, as names and records carry it.
    pub fn tag(&self) -> String {
        format!("{}.{}", self.boot, self.namespace)
    }

    pub fn parse(tag: &str) -> Option<Place> {
        let (boot, namespace) = tag.split_once('.')?;
        let ok = |s: &str, f: fn(&char) -> bool| !s.is_empty() && s.chars().all(|c| f(&c));
        (ok(boot, char::is_ascii_hexdigit) && ok(namespace, char::is_ascii_digit)).then(|| Place {
            boot: boot.to_string(),
            namespace: namespace.to_string(),
        })
    }
}

/// Whether process `pid` of `place`, seen alive at `alive_at`, has ended for sure. `false`
/// when it may still run, or when `place` is not here (nothing can be known of it).
pub fn ended(place: &Place, pid: u32, alive_at: SystemTime) -> bool {
    if here() != Some(place) {
        return false;
    }
    match started(pid) {
        None => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        // The clock of /proc is second-grained: a margin keeps the writer itself alive.
        Some(start) => start > alive_at + Duration::from_secs(2),
    }
}

/// When process `pid` started, from `/proc/PID/stat` and the boot time.
fn started(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|t| *t > 0)?;
    let after_boot = Duration::from_millis(ticks * 1000 / per_second);
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(btime) + after_boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_ended_a_dead_one_or_a_reused_pid_is() {
        let here = here().expect("/proc").clone();
        assert_eq!(Place::parse(&here.tag()), Some(here.clone()));
        let me = std::process::id();
        assert!(!ended(&here, me, SystemTime::now()));
        // A process that ran and was reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(ended(&here, pid, SystemTime::now()));
        // This process's PID, said to be seen alive long before it started: reused.
        let long_ago = SystemTime::now() - Duration::from_secs(10 * 365 * 86400);
        assert!(ended(&here, me, long_ago));
        // Of another boot nothing is known.
        let elsewhere = Place {
            boot: "0".repeat(32),
            namespace: here.namespace.clone(),
        };
        assert!(!ended(&elsewhere, pid, SystemTime::now()));
        assert!(Place::parse("nope").is_none());
    }
}
