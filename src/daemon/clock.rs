//! The daemon's clock: real, or fake for tests and simulations (injected everywhere the
//! daemon, the API and drills ask for "now").

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

/// Where the daemon's "now" comes from: the real clock, or a fake one that starts at a given
/// instant and runs `speed` times faster (tests, simulations).
///
/// A fake clock stands still at its start until it is first read, and every copy shares that
/// moment: however long start-up takes (keys, catalog, a loaded machine), the daemon plans
/// from exactly the instant it was given.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: ClockKind,
}

#[derive(Debug, Clone)]
enum ClockKind {
    Real,
    Fake {
        anchor: Arc<std::sync::OnceLock<Instant>>,
        start: DateTime<Utc>,
        speed: f64,
    },
    /// A fake clock that read `start` at the real moment `at`: processes started at
    /// different moments share one timeline (a centre and its agents in a test).
    Shared {
        at: DateTime<Utc>,
        start: DateTime<Utc>,
        speed: f64,
    },
}

impl Clock {
    pub fn real() -> Clock {
        Clock {
            kind: ClockKind::Real,
        }
    }

    pub fn fake(start: DateTime<Utc>, speed: f64) -> Clock {
        Clock {
            kind: ClockKind::Fake {
                anchor: Arc::new(std::sync::OnceLock::new()),
                start,
                speed: speed.max(f64::MIN_POSITIVE),
            },
        }
    }

    /// A fake clock that read `start` at the real moment `at`, running `speed` times faster.
    pub fn shared(start: DateTime<Utc>, speed: f64, at: DateTime<Utc>) -> Clock {
        Clock {
            kind: ClockKind::Shared {
                at,
                start,
                speed: speed.max(f64::MIN_POSITIVE),
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.kind {
            ClockKind::Real => Utc::now(),
            ClockKind::Shared { at, start, speed } => {
                let elapsed = (Utc::now() - *at).num_microseconds().unwrap_or(0) as f64 * speed;
                *start + chrono::Duration::microseconds(elapsed as i64)
            }
            ClockKind::Fake {
                anchor,
                start,
                speed,
            } => {
                let elapsed = anchor.get_or_init(Instant::now).elapsed().as_secs_f64() * speed;
                *start + chrono::Duration::microseconds((elapsed * 1e6) as i64)
            }
        }
    }

    fn speed(&self) -> f64 {
        match &self.kind {
            ClockKind::Real => 1.0,
            ClockKind::Fake { speed, .. } | ClockKind::Shared { speed, .. } => *speed,
        }
    }

    /// How much of this clock's time passes in `d` of real time.
    pub fn clock_time(&self, d: std::time::Duration) -> chrono::Duration {
        chrono::Duration::milliseconds((d.as_secs_f64() * 1000.0 * self.speed()) as i64)
    }

    /// How long `d` of this clock's time lasts in real time.
    pub fn real_time(&self, d: chrono::Duration) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            (d.num_milliseconds().max(0) as f64 / 1000.0) / self.speed(),
        )
    }
}
