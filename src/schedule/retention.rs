//! Retention: which snapshots of one source to keep and which to forget, each with its reasons.
//!
//! Pure: it takes the snapshots, a policy, the time zone that days and weeks are counted in, and
//! the current time, and returns a decision per snapshot. Nothing here reads a clock or a store.
//!
//! The rules, applied to the snapshots of one source, newest first:
//! - the newest snapshot is always kept (a source never loses its last backup to retention);
//! - a pinned snapshot (a running drill, a legal hold) is always kept;
//! - `within`: every snapshot younger than that is kept;
//! - `last`: the newest N are kept;
//! - `hourly`/`daily`/`weekly`/`monthly`/`yearly`: the newest snapshot of each of the last N
//!   hours/days/ISO weeks/months/years that have a snapshot is kept.
//!
//! A snapshot no rule keeps is forgotten.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use std::collections::HashSet;

/// How long and how densely to keep snapshots. All-zero keeps only the newest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub within: Option<Duration>,
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

/// A snapshot as retention sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub time: DateTime<Utc>,
    /// Why it must be kept whatever the policy says (a running drill, a legal hold).
    pub pinned: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub id: String,
    pub time: DateTime<Utc>,
    pub keep: bool,
    /// Why it is kept (every rule that keeps it), or why it is forgotten.
    pub reasons: Vec<String>,
}

/// Decides for each snapshot of one source; the result is ordered newest first.
pub fn plan<Tz: TimeZone>(
    snapshots: &[Candidate],
    policy: &Policy,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut order: Vec<&Candidate> = snapshots.iter().collect();
    order.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let mut decisions: Vec<Decision> = order
        .iter()
        .map(|c| Decision {
            id: c.id.clone(),
            time: c.time,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();

    for (i, c) in order.iter().enumerate() {
        let d = &mut decisions[i];
        if i == 0 {
            d.reasons.push("newest snapshot of its source".into());
        }
        if let Some(why) = &c.pinned {
            d.reasons.push(format!("pinned: {why}"));
        }
        if let Some(within) = policy.within {
            if c.time > now - within {
                d.reasons.push(format!("within {}", span(within)));
            }
        }
        if (i as u32) < policy.last {
            d.reasons.push(format!("last {}", policy.last));
        }
    }

    type Key = fn(&DateTime<chrono::FixedOffset>) -> (i32, u32, u32, u32);
    let buckets: [(&str, u32, Key); 5] = [
        ("hourly", policy.hourly, |t| {
            (t.year(), t.ordinal(), t.hour(), 0)
        }),
        ("daily", policy.daily, |t| (t.year(), t.ordinal(), 0, 0)),
        ("weekly", policy.weekly, |t| {
            let w = t.iso_week();
            (w.year(), w.week(), 0, 0)
        }),
        ("monthly", policy.monthly, |t| (t.year(), t.month(), 0, 0)),
        ("yearly", policy.yearly, |t| (t.year(), 0, 0, 0)),
    ];
    for (name, count, key) in buckets {
        if count == 0 {
            continue;
        }
        let mut seen = HashSet::new();
        for (i, c) in order.iter().enumerate() {
            let local = c.time.with_timezone(tz).fixed_offset();
            let k = key(&local);
            if seen.contains(&k) {
                continue;
            }
            if seen.len() as u32 >= count {
                break;
            }
            seen.insert(k);
            decisions[i]
                .reasons
                .push(format!("{name} {} of {count}", seen.len()));
        }
    }

    for d in &mut decisions {
        d.keep = !d.reasons.is_empty();
        if !d.keep {
            d.reasons.push(forget_reason(policy));
        }
    }
    decisions
}

/// Why a snapshot no rule keeps is forgotten.
fn forget_reason(policy: &Policy) -> String {
    let mut rules = Vec::new();
    if let Some(w) = policy.within {
        rules.push(format!("older than {}", span(w)));
    }
    for (name, n) in [
        ("last", policy.last),
        ("hourly", policy.hourly),
        ("daily", policy.daily),
        ("weekly", policy.weekly),
        ("monthly", policy.monthly),
        ("yearly", policy.yearly),
    ] {
        if n > 0 {
            rules.push(format!("not among {name} {n}"));
        }
    }
    if rules.is_empty() {
        "the policy keeps only the newest".into()
    } else {
        rules.join(", ")
    }
}

/// A duration as a person writes it: `90d`, `12h`, `30m`.
pub fn span(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Parses `90d`, `36h`, `2w`, `1y` (humantime units).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let std = humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration such as 90d, 36h or 2w: {e}"))?;
    Duration::from_std(std).map_err(|_| format!("'{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snaps(times: &[&str]) -> Vec<Candidate> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| Candidate {
                id: format!("s{i}"),
                time: at(t),
                pinned: None,
            })
            .collect()
    }

    fn kept(d: &[Decision]) -> Vec<&str> {
        d.iter().filter(|d| d.keep).map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn newest_and_pinned_are_always_kept() {
        let mut s = snaps(&[
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "2026-03-01T00:00:00Z",
        ]);
        s[0].pinned = Some("legal hold 2026-17".into());
        let d = plan(&s, &Policy::default(), &Utc, at("2026-11-23T00:00:00Z"));
        assert_eq!(kept(&d), vec!["s2", "s0"]);
        assert_eq!(d[0].reasons, vec!["newest snapshot of its source"]);
        assert_eq!(d[2].reasons, vec!["pinned: legal hold 2026-17"]);
        assert!(!d[1].keep);
        assert_eq!(d[1].reasons, vec!["the policy keeps only the newest"]);
    }

    #[test]
    fn within_keeps_what_is_younger_and_says_why_the_rest_goes() {
        let s = snaps(&[
            "2026-08-24T11:59:00Z",
            "2026-08-24T12:01:00Z",
            "2026-11-22T00:00:00Z",
        ]);
        let p = Policy {
            within: Some(Duration::days(90)),
            ..Policy::default()
        };
        let d = plan(&s, &p, &Utc, at("2026-11-22T12:00:00Z"));
        assert_eq!(kept(&d), vec!["s2", "s1"]);
        assert_eq!(d[1].reasons, vec!["within 90d"]);
        assert_eq!(d[2].reasons, vec!["older than 90d"]);
    }

    #[test]
    fn daily_weekly_monthly_take_the_newest_of_each_period() {
        // Two a day for ten days (one at 08:00, one at 20:00), 2026-03-01 .. 2026-03-10.
        let times: Vec<String> = (1..=10)
            .flat_map(|d| {
                [
                    format!("2026-03-{d:02}T08:00:00Z"),
                    format!("2026-03-{d:02}T20:00:00Z"),
                ]
            })
            .collect();
        let refs: Vec<&str> = times.iter().map(String::as_str).collect();
        let s = snaps(&refs);
        let p = Policy {
            daily: 3,
            weekly: 2,
            monthly: 1,
            ..Policy::default()
        };
        let d = plan(&s, &p, &Utc, at("2026-03-11T00:00:00Z"));
        let kept_times: Vec<String> = d
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.time.format("%m-%d %H").to_string())
            .collect();
        // Daily: evenings of the 10th, 9th, 8th. Weekly: the 10th (week 11) and the 8th, the
        // last of ISO week 10 (2 to 8 March). Monthly: the 10th.
        assert_eq!(kept_times, vec!["03-10 20", "03-09 20", "03-08 20"]);
        let newest = &d[0].reasons;
        assert!(newest.contains(&"daily 1 of 3".to_string()), "{newest:?}");
        assert!(newest.contains(&"weekly 1 of 2".to_string()));
        assert!(newest.contains(&"monthly 1 of 1".to_string()));
        assert!(
            d[4].reasons.contains(&"weekly 2 of 2".to_string()),
            "{:?}",
            d[4]
        );
        assert!(!d[1].keep, "{:?}", d[1]);
        assert_eq!(
            d[1].reasons,
            vec!["not among daily 3, not among weekly 2, not among monthly 1"]
        );
    }

    #[test]
    fn days_are_counted_in_the_configured_time_zone() {
        // 23:30 UTC on 28 March is 00:30 on 29 March in Berlin (CET, +1).
        let s = snaps(&["2026-03-28T22:30:00Z", "2026-03-28T23:30:00Z"]);
        let p = Policy {
            daily: 2,
            ..Policy::default()
        };
        let berlin = chrono::FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            kept(&plan(&s, &p, &berlin, at("2026-03-30T00:00:00Z"))).len(),
            2
        );
        assert_eq!(
            kept(&plan(&s, &p, &Utc, at("2026-03-30T00:00:00Z"))).len(),
            1
        );
    }

    #[test]
    fn a_90_48_tier_settles_at_exactly_90_times_48_snapshots() {
        // Every 30 minutes for 120 days, retention applied after each run.
        let policy = Policy {
            within: Some(Duration::days(90)),
            ..Policy::default()
        };
        let start = at("2026-01-01T00:00:00Z");
        let mut live: Vec<Candidate> = Vec::new();
        let mut sizes = Vec::new();
        for n in 0..(120 * 48) {
            let now = start + Duration::minutes(30 * n);
            live.push(Candidate {
                id: format!("{n}"),
                time: now,
                pinned: None,
            });
            let d = plan(&live, &policy, &Utc, now);
            let keep: HashSet<&str> = d.iter().filter(|d| d.keep).map(|d| d.id.as_str()).collect();
            live.retain(|c| keep.contains(c.id.as_str()));
            sizes.push(live.len());
        }
        assert_eq!(*sizes.last().unwrap(), 90 * 48);
        // Steady from day 90 on: never more, never fewer.
        assert!(sizes[90 * 48..].iter().all(|&n| n == 90 * 48));
    }

    #[test]
    fn spans() {
        assert_eq!(parse_span("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_span("36h").unwrap(), Duration::hours(36));
        assert_eq!(parse_span("2w").unwrap(), Duration::weeks(2));
        assert!(parse_span("soon").is_err());
        assert_eq!(span(Duration::days(14)), "14d");
        assert_eq!(span(Duration::minutes(90)), "90m");
    }
}
