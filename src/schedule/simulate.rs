//! What a tier does over time: snapshots kept day by day, and a storage projection.
//!
//! Pure: the tier's runs from a start date, retention applied at the end of each day, and a
//! simple model of storage: the first backup stores the full data set; every day after adds
//! the changed share of it as new data, which is freed when no kept snapshot covers that day.

use super::retention::{plan, Candidate};
use super::tier::Tier;
use chrono::{DateTime, Duration, TimeZone, Utc};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Day {
    pub day: u32,
    pub date: String,
    pub runs: u32,
    pub kept: u32,
    /// Days between the oldest and the newest kept snapshot.
    pub span_days: f64,
    pub stored_bytes: u64,
}

/// Simulates `days` days of `tier` from `start`, in `tz`, for a data set of `size` bytes of
/// which `change_rate` (0.02 = 2 %) changes each day.
pub fn simulate<Tz: TimeZone>(
    tier: &Tier,
    tz: &Tz,
    start: DateTime<Utc>,
    days: u32,
    size: u64,
    change_rate: f64,
) -> Vec<Day> {
    let end = start + Duration::days(i64::from(days));
    let runs = tier.runs_until(tz, start, Some(end), usize::MAX);
    let mut live: Vec<Candidate> = Vec::new();
    let mut out = Vec::with_capacity(days as usize);
    let mut next = runs.iter().peekable();
    for day in 1..=days {
        let day_end = start + Duration::days(i64::from(day));
        let mut today = 0;
        while let Some(t) = next.next_if(|t| **t <= day_end) {
            live.push(Candidate {
                id: t.to_rfc3339(),
                time: *t,
                pinned: None,
            });
            today += 1;
        }
        let decisions = plan(&live, &tier.retention, tz, day_end);
        let keep: std::collections::HashSet<&str> = decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_str())
            .collect();
        live.retain(|c| keep.contains(c.id.as_str()));
        let span_days = match (
            live.iter().map(|c| c.time).min(),
            live.iter().map(|c| c.time).max(),
        ) {
            (Some(first), Some(last)) => (last - first).num_minutes() as f64 / 1440.0,
            _ => 0.0,
        };
        let stored = if live.is_empty() {
            0
        } else {
            size + (size as f64 * change_rate * span_days.ceil()) as u64
        };
        out.push(Day {
            day,
            date: (day_end - Duration::days(1))
                .with_timezone(tz)
                .date_naive()
                .to_string(),
            runs: today,
            kept: live.len() as u32,
            span_days,
            stored_bytes: stored,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_90_48_tier_levels_off_at_90_days() {
        let tier = Tier::named("90/48").unwrap();
        let days = simulate(&tier, &Utc, start(), 120, 10 << 30, 0.02);
        assert_eq!(days[0].runs, 48);
        assert_eq!(days[9].kept, 10 * 48);
        assert_eq!(days[119].kept, 90 * 48);
        assert!(days[89..].iter().all(|d| d.kept == 90 * 48));
        // Storage: the full set plus 2 % a day for the 90 days kept.
        let expected = (10u64 << 30) + ((10u64 << 30) as f64 * 0.02 * 90.0) as u64;
        assert_eq!(days[119].stored_bytes, expected);
        assert!(days[30].stored_bytes < days[60].stored_bytes);
    }

    #[test]
    fn the_90_4_tier_runs_on_weekdays_only() {
        let tier = Tier::named("90/4").unwrap();
        // 5 January 2026 is a Monday: days 6 and 7 of the simulation are the weekend.
        let days = simulate(&tier, &Utc, start(), 14, 1 << 30, 0.01);
        let runs: Vec<u32> = days.iter().map(|d| d.runs).collect();
        assert_eq!(runs, [4, 4, 4, 4, 4, 0, 0, 4, 4, 4, 4, 4, 0, 0]);
        assert_eq!(days[13].kept, 40);
    }
}
