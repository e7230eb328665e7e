//! The slow-down and lock-out of failed logins.
//!
//! A valid token is always let in: the throttle only ever answers requests whose credential
//! failed. Failures are counted twice, per client address and per token id (a guess at a
//! known token's secret, from wherever it comes), each within a window from its first
//! failure. Each failure delays the answer to the next one a little more; past `LOCK_AFTER`
//! failures in the window (or `[service.http] lock_after`), failing requests get 429 until
//! the window has passed. Nothing but the window's end resets a count: a valid login in
//! between does not help a guesser.
//!
//! IPv6 clients are counted per /64, the block one subscriber usually holds, so that a
//! guesser cannot get a fresh count from every address of it. The tables are bounded: past
//! `MAX_ENTRIES`, expired entries go, and then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in the window before lock-out, unless `[service.http] lock_after` says.
pub const LOCK_AFTER: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Each failure adds this much to the answer of the next failing one, up to `MAX_DELAY`.
pub const STEP: Duration = Duration::from_millis(50);
pub const MAX_DELAY: Duration = Duration::from_secs(1);
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// What to do with a request whose credential failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer 401 after this long.
    Delay(Duration),
    /// Answer 429; the lock ends after this long.
    Locked(Duration),
}

pub struct Throttle {
    inner: Mutex<Tables>,
    lock_after: u32,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new(LOCK_AFTER)
    }
}

#[derive(Default)]
struct Tables {
    addresses: HashMap<IpAddr, Failures>,
    tokens: HashMap<String, Failures>,
}

/// The key an address is counted under: itself (IPv4), or its /64 (IPv6).
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

fn count<K: std::hash::Hash + Eq + Clone>(
    table: &mut HashMap<K, Failures>,
    key: &K,
    now: Instant,
) -> Failures {
    if table.len() >= MAX_ENTRIES && !table.contains_key(key) {
        table.retain(|_, f| now.duration_since(f.since) <= WINDOW);
        if table.len() >= MAX_ENTRIES {
            if let Some(oldest) = table
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| k.clone())
            {
                table.remove(&oldest);
            }
        }
    }
    let entry = table.entry(key.clone()).or_insert(Failures {
        count: 0,
        since: now,
    });
    if now.duration_since(entry.since) > WINDOW {
        *entry = Failures {
            count: 0,
            since: now,
        };
    }
    entry.count += 1;
    *entry
}

fn verdict(f: Failures, now: Instant, lock_after: u32) -> Verdict {
    if f.count > lock_after {
        Verdict::Locked(WINDOW.saturating_sub(now.duration_since(f.since)))
    } else {
        Verdict::Delay((STEP * (f.count - 1)).min(MAX_DELAY))
    }
}

impl Throttle {
    /// A throttle that locks out after `lock_after` failures in the window.
    pub fn new(lock_after: u32) -> Throttle {
        Throttle {
            inner: Mutex::default(),
            lock_after: lock_after.max(1),
        }
    }

    /// Counts a failed credential from `ip`, naming token `token_id` if it named a known
    /// one, and says how to answer it: the stricter of the address's and the token's verdicts.
    pub fn failed(&self, ip: IpAddr, token_id: Option<&str>, now: Instant) -> Verdict {
        let mut tables = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let lock_after = self.lock_after;
        let by_address = verdict(
            count(&mut tables.addresses, &counted_as(ip), now),
            now,
            lock_after,
        );
        let by_token = token_id.map(|id| {
            verdict(
                count(&mut tables.tokens, &id.to_string(), now),
                now,
                lock_after,
            )
        });
        match (by_address, by_token) {
            (Verdict::Locked(a), Some(Verdict::Locked(b))) => Verdict::Locked(a.max(b)),
            (Verdict::Locked(a), _) | (_, Some(Verdict::Locked(a))) => Verdict::Locked(a),
            (Verdict::Delay(a), Some(Verdict::Delay(b))) => Verdict::Delay(a.max(b)),
            (Verdict::Delay(a), None) => Verdict::Delay(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_slow_down_then_lock_out_until_the_window_ends() {
        let t = Throttle::default();
        let start = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(t.failed(a, None, start), Verdict::Delay(Duration::ZERO));
        assert_eq!(t.failed(a, None, start), Verdict::Delay(STEP));
        for _ in 2..LOCK_AFTER {
            assert!(matches!(t.failed(a, None, start), Verdict::Delay(_)));
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            t.failed(a, None, later),
            Verdict::Locked(WINDOW - Duration::from_secs(60))
        );
        // Another address is not affected; the window's end lifts the lock.
        assert_eq!(
            t.failed(ip("192.0.2.2"), None, later),
            Verdict::Delay(Duration::ZERO)
        );
        let after = start + WINDOW + Duration::from_secs(1);
        assert_eq!(t.failed(a, None, after), Verdict::Delay(Duration::ZERO));
    }

    #[test]
    fn a_token_guessed_from_many_addresses_is_locked_for_guessers() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..LOCK_AFTER {
            let v = t.failed(ip(&format!("198.51.100.{i}")), Some("0123456789ab"), now);
            assert!(matches!(v, Verdict::Delay(_)), "{i}: {v:?}");
        }
        assert!(matches!(
            t.failed(ip("198.51.100.200"), Some("0123456789ab"), now),
            Verdict::Locked(_)
        ));
        // Guesses at another token from a fresh address are not.
        assert!(matches!(
            t.failed(ip("198.51.100.201"), Some("ba9876543210"), now),
            Verdict::Delay(_)
        ));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..LOCK_AFTER {
            t.failed(ip(&format!("2001:db8:1:2::{i:x}")), None, now);
        }
        assert!(matches!(
            t.failed(ip("2001:db8:1:2:ffff::1"), None, now),
            Verdict::Locked(_)
        ));
        assert!(matches!(
            t.failed(ip("2001:db8:1:3::1"), None, now),
            Verdict::Delay(_)
        ));
        assert_eq!(counted_as(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn the_tables_stay_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 50) {
            t.failed(IpAddr::V4(i.into()), None, now);
        }
        let tables = t.inner.lock().unwrap();
        assert!(tables.addresses.len() <= MAX_ENTRIES);
    }
}
