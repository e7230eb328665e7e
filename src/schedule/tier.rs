//! Tiers: a cron schedule plus retention, as shipped in `schedules/*.toml` or written as the
//! shorthand `DAYS/PER_DAY` (`90/48`: every 30 minutes, kept 90 days).
//!
//! Schedules run in the service's time zone and behave sensibly across daylight-saving
//! changes (see `Tier::runs`).

use super::retention::{parse_span, Policy};
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use std::str::FromStr;

/// The presets shipped in `schedules/`, built into the binary.
pub const PRESETS: [(&str, &str); 4] = [
    ("90-48.toml", include_str!("../../schedules/90-48.toml")),
    ("90-4.toml", include_str!("../../schedules/90-4.toml")),
    ("dr-14-1.toml", include_str!("../../schedules/dr-14-1.toml")),
    (
        "cold-vm-quarterly.toml",
        include_str!("../../schedules/cold-vm-quarterly.toml"),
    ),
];

/// What a tier's runs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Backup,
    /// Copy the newest snapshot to the source's second target.
    Copy,
    /// Delete the data no snapshot needs from a target (the daemon's own schedule, not a
    /// tier a source can name).
    #[serde(skip_deserializing)]
    Prune,
    /// Run a restore drill (the daemon's schedule for a drill spec, not a tier a source can
    /// name).
    #[serde(skip_deserializing)]
    Drill,
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub description: String,
    pub action: Action,
    /// The cron expression as written (6 fields: sec min hour day-of-month month day-of-week).
    pub cron: String,
    schedule: cron::Schedule,
    pub retention: Policy,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    action: Action,
    cron: String,
    retention: RetentionFile,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    keep_within: Option<String>,
    #[serde(default)]
    keep_last: u32,
    #[serde(default)]
    keep_hourly: u32,
    #[serde(default)]
    keep_daily: u32,
    #[serde(default)]
    keep_weekly: u32,
    #[serde(default)]
    keep_monthly: u32,
    #[serde(default)]
    keep_yearly: u32,
}

impl Tier {
    /// Parses a tier file; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Tier, String> {
        let file: TierFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let r = &file.retention;
        let retention = Policy {
            within: r
                .keep_within
                .as_deref()
                .map(parse_span)
                .transpose()
                .map_err(|e| format!("{origin}: retention.keep_within: {e}"))?,
            last: r.keep_last,
            hourly: r.keep_hourly,
            daily: r.keep_daily,
            weekly: r.keep_weekly,
            monthly: r.keep_monthly,
            yearly: r.keep_yearly,
        };
        Self::new(
            file.name,
            file.description,
            file.action,
            &file.cron,
            retention,
        )
        .map_err(|e| format!("{origin}: {e}"))
    }

    fn new(
        name: String,
        description: String,
        action: Action,
        cron: &str,
        retention: Policy,
    ) -> Result<Tier, String> {
        let schedule = cron::Schedule::from_str(cron).map_err(|e| {
            format!(
                "cron '{cron}' is not valid ({e}); write six fields: second minute hour \
                 day-of-month month day-of-week, e.g. '0 */30 * * * *'"
            )
        })?;
        // A schedule that never fires (30 February) is a mistake, not a tier.
        if schedule.after(&Utc::now()).next().is_none() {
            return Err(format!("cron '{cron}' never fires"));
        }
        Ok(Tier {
            name,
            description,
            action,
            cron: cron.to_string(),
            schedule,
            retention,
        })
    }

    /// The schedule of the daemon's prune runs: `cron`, or none for `never`.
    pub fn prune(cron: &str) -> Result<Option<Tier>, String> {
        if cron.trim() == "never" {
            return Ok(None);
        }
        Tier::new(
            "prune".into(),
            "delete the data no snapshot needs".into(),
            Action::Prune,
            cron,
            Policy::default(),
        )
        .map(Some)
    }

    /// The schedule of a drill spec.
    pub fn drill(name: &str, cron: &str) -> Result<Tier, String> {
        Tier::new(
            format!("drill {name}"),
            "a restore drill".into(),
            Action::Drill,
            cron,
            Policy::default(),
        )
    }

    /// A backup tier known only by its name and schedule (as a report states it): its runs,
    /// without retention.
    pub fn schedule_only(name: &str, cron: &str) -> Result<Tier, String> {
        Tier::new(
            name.into(),
            String::new(),
            Action::Backup,
            cron,
            Policy::default(),
        )
    }

    /// A shipped preset by name (`90/48`, `14/1`, …), else the shorthand `DAYS/PER_DAY`: runs
    /// spread evenly over the day, each kept DAYS days.
    pub fn named(name: &str) -> Result<Tier, String> {
        for (file, text) in PRESETS {
            let tier = Tier::parse(file, text)?;
            if tier.name == name || file.trim_end_matches(".toml") == name {
                return Ok(tier);
            }
        }
        let (days, per_day) = name
            .split_once('/')
            .and_then(|(d, p)| Some((d.parse::<u32>().ok()?, p.parse::<u32>().ok()?)))
            .filter(|(d, p)| *d > 0 && *p > 0)
            .ok_or_else(|| {
                format!(
                    "'{name}' is neither a shipped tier ({}) nor DAYS/PER_DAY such as 30/24",
                    PRESETS
                        .iter()
                        .filter_map(|(f, t)| Tier::parse(f, t).ok().map(|t| t.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let minutes = 24 * 60 / per_day;
        let cron = if 24 * 60 % per_day != 0 {
            None
        } else if minutes < 60 && 60 % minutes == 0 {
            Some(format!("0 */{minutes} * * * *"))
        } else if minutes == 24 * 60 {
            Some("0 0 0 * * *".to_string())
        } else if minutes % 60 == 0 && 24 % (minutes / 60) == 0 {
            Some(format!("0 0 */{} * * *", minutes / 60))
        } else {
            None
        }
        .ok_or_else(|| {
            format!(
                "{per_day} runs a day cannot be spread evenly over the hours of a day; use a \
                 divisor of 24 or of 1440 minutes (1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 96, …)"
            )
        })?;
        Tier::new(
            name.to_string(),
            format!("{per_day} a day, each kept {days} days"),
            Action::Backup,
            &cron,
            Policy {
                within: Some(Duration::days(i64::from(days))),
                ..Policy::default()
            },
        )
    }

    /// Whether the schedule fires every hour (or every N hours): then it follows real time
    /// across daylight-saving changes. Otherwise it names hours of the day and follows the
    /// wall clock.
    fn by_interval(&self) -> bool {
        let hours = self.cron.split_whitespace().nth(2).unwrap_or("");
        hours == "*" || hours.starts_with("*/")
    }

    /// The runs after `after`, in time zone `tz`, at most `limit` of them.
    ///
    /// Across daylight-saving changes:
    /// - an interval schedule (every 30 minutes, every 2 hours) follows real time: the hour
    ///   the clocks skip has no runs, the hour they repeat has its runs twice;
    /// - a wall-clock schedule (02:30 every day) runs once a day: a time the clocks skip runs
    ///   at the first minute after the gap, a time they repeat runs the first time only.
    pub fn runs<Tz: TimeZone>(
        &self,
        tz: &Tz,
        after: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.runs_until(tz, after, None, limit)
    }

    /// The longest time between two consecutive runs among the next `runs` runs after `from`
    /// (in UTC; weekends and holidays in the rule show here). `None` with fewer than two runs.
    pub fn longest_gap(&self, from: DateTime<Utc>, runs: usize) -> Option<Duration> {
        self.runs(&Utc, from, runs)
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
    }

    /// The runs after `after` and up to `until` (when given), at most `limit` of them.
    pub fn runs_until<Tz: TimeZone>(
        &self,
        tz: &Tz,
        after: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        if limit == 0 {
            return Vec::new();
        }
        let stop = until.map(|u| u.with_timezone(tz).naive_local() + Duration::hours(3));
        let interval = self.by_interval();
        // Walk the schedule on the wall clock (naive local time), then place each wall time.
        let start = after.with_timezone(tz).naive_local() - Duration::hours(3);
        // Around a change, wall order and real order differ (02:30 CEST comes before 02:00
        // CET): gather, then sort, and stop once the wall clock is well past the last run
        // needed.
        let mut found = std::collections::BTreeSet::new();
        for wall in self.schedule.after(&Utc.from_utc_datetime(&start)) {
            let wall: NaiveDateTime = wall.naive_utc();
            if stop.is_some_and(|stop| wall > stop) {
                break;
            }
            if found.len() >= limit {
                let needed: &DateTime<Utc> = found.iter().nth(limit - 1).unwrap_or(&after);
                if wall > needed.with_timezone(tz).naive_local() + Duration::hours(3) {
                    break;
                }
            }
            let instants: Vec<DateTime<Utc>> = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
                LocalResult::Ambiguous(first, second) if interval => {
                    vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
                }
                LocalResult::Ambiguous(first, _) => vec![first.with_timezone(&Utc)],
                LocalResult::None if interval => Vec::new(),
                LocalResult::None => first_after_gap(tz, wall).into_iter().collect(),
            };
            found.extend(instants.into_iter().filter(|t| *t > after));
        }
        found
            .into_iter()
            .filter(|t| until.is_none_or(|u| *t <= u))
            .take(limit)
            .collect()
    }
}

/// The first instant after a wall time the clocks skipped.
fn first_after_gap<Tz: TimeZone>(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    (1..=240).find_map(|m| {
        tz.from_local_datetime(&(wall + Duration::minutes(m)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(runs: &[DateTime<Utc>]) -> Vec<String> {
        runs.iter()
            .map(|t| {
                t.with_timezone(&Berlin)
                    .format("%m-%d %H:%M %Z")
                    .to_string()
            })
            .collect()
    }

    /// Runs on one local day in Berlin.
    fn day(tier: &Tier, date: &str) -> Vec<DateTime<Utc>> {
        let start = Berlin
            .from_local_datetime(
                &NaiveDateTime::parse_from_str(&format!("{date} 00:00:00"), "%Y-%m-%d %H:%M:%S")
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc);
        tier.runs(&Berlin, start - Duration::seconds(1), 200)
            .into_iter()
            .filter(|t| t.with_timezone(&Berlin).format("%Y-%m-%d").to_string() == date)
            .collect()
    }

    #[test]
    fn presets_parse_and_shorthand_finds_them() {
        for (file, text) in PRESETS {
            Tier::parse(file, text).unwrap();
        }
        assert_eq!(Tier::named("90/48").unwrap().cron, "0 */30 * * * *");
        assert_eq!(
            Tier::named("90/4").unwrap().cron,
            "0 0 7,11,15,19 * * Mon-Fri"
        );
        assert_eq!(Tier::named("14/1").unwrap().action, Action::Copy);
        assert_eq!(
            Tier::named("cold-vm-quarterly").unwrap().retention.within,
            Some(Duration::days(365))
        );
        let t = Tier::named("30/24").unwrap();
        assert_eq!(t.cron, "0 0 */1 * * *");
        assert_eq!(t.retention.within, Some(Duration::days(30)));
        assert_eq!(Tier::named("7/96").unwrap().cron, "0 */15 * * * *");
        assert_eq!(Tier::named("7/1").unwrap().cron, "0 0 0 * * *");
        assert_eq!(
            Tier::named("7/1").unwrap().runs(&Utc, Utc::now(), 3).len(),
            3
        );
        assert!(Tier::named("90/7").unwrap_err().contains("spread evenly"));
        assert!(Tier::named("often").unwrap_err().contains("DAYS/PER_DAY"));
    }

    #[test]
    fn bad_tier_files_say_what_is_wrong() {
        let e =
            Tier::parse("x.toml", "name = 'x'\ncron = '0 0 25 * * *'\n[retention]\n").unwrap_err();
        assert!(e.contains("x.toml") && e.contains("not valid"), "{e}");
        let e = Tier::parse(
            "x.toml",
            "name = 'x'\ncron = '0 0 0 30 Feb *'\n[retention]\n",
        )
        .unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        let e = Tier::parse(
            "x.toml",
            "name = 'x'\ncron = '0 0 1 * * *'\nfrequency = 2\n[retention]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("unknown field") && e.contains("frequency"),
            "{e}"
        );
        let e = Tier::parse(
            "x.toml",
            "name = 'x'\ncron = '0 0 1 * * *'\n[retention]\nkeep_within = 'ages'\n",
        )
        .unwrap_err();
        assert!(e.contains("keep_within"), "{e}");
    }

    /// Europe/Berlin 2026: clocks go 02:00 → 03:00 on 29 March, 03:00 → 02:00 on 25 October.
    #[test]
    fn dst_table_for_berlin() {
        let every_30 = Tier::named("90/48").unwrap();
        let daily_0230 = Tier::named("14/1").unwrap();
        let weekdays = Tier::named("90/4").unwrap();
        // (tier, local date, runs that day, first runs around the change)
        assert_eq!(day(&every_30, "2026-03-28").len(), 48);
        assert_eq!(day(&every_30, "2026-03-29").len(), 46); // a 23-hour day
        assert_eq!(day(&every_30, "2026-10-25").len(), 50); // a 25-hour day
        assert_eq!(
            local(&day(&every_30, "2026-03-29")[2..6]),
            [
                "03-29 01:00 CET",
                "03-29 01:30 CET",
                "03-29 03:00 CEST",
                "03-29 03:30 CEST"
            ]
        );
        assert_eq!(
            local(&day(&every_30, "2026-10-25")[4..10]),
            [
                "10-25 02:00 CEST",
                "10-25 02:30 CEST",
                "10-25 02:00 CET",
                "10-25 02:30 CET",
                "10-25 03:00 CET",
                "10-25 03:30 CET"
            ]
        );
        // Real time between consecutive runs never exceeds the interval.
        let runs = every_30.runs(&Berlin, at("2026-03-28T00:00:00Z"), 48 * 3);
        assert!(runs
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::minutes(30)));

        // The daily 02:30 copy: once on each day, moved past the gap, not doubled.
        assert_eq!(local(&day(&daily_0230, "2026-03-29")), ["03-29 03:00 CEST"]);
        assert_eq!(local(&day(&daily_0230, "2026-10-25")), ["10-25 02:30 CEST"]);
        assert_eq!(local(&day(&daily_0230, "2026-10-26")), ["10-26 02:30 CET"]);

        // Weekdays only: a week around the spring change has 20 runs, none on the weekend.
        let week = weekdays.runs(&Berlin, at("2026-03-27T23:00:00Z"), 1000);
        let week: Vec<_> = week
            .into_iter()
            .take_while(|t| *t < at("2026-04-03T22:00:00Z"))
            .collect();
        assert_eq!(week.len(), 20);
        assert!(local(&week)
            .iter()
            .all(|t| !t.starts_with("03-28") && !t.starts_with("03-29")));
        assert_eq!(local(&week[..2]), ["03-30 07:00 CEST", "03-30 11:00 CEST"]);
    }

    #[test]
    fn longest_gaps() {
        let from = at("2026-11-23T00:00:00Z");
        assert_eq!(
            Tier::named("90/48").unwrap().longest_gap(from, 400),
            Some(Duration::minutes(30))
        );
        // Friday 19:00 to Monday 07:00.
        assert_eq!(
            Tier::named("90/4").unwrap().longest_gap(from, 400),
            Some(Duration::hours(60))
        );
        assert_eq!(
            Tier::named("14/1").unwrap().longest_gap(from, 400),
            Some(Duration::days(1))
        );
    }

    #[test]
    fn quarterly_runs() {
        let cold = Tier::named("cold-vm-quarterly").unwrap();
        let runs = cold.runs(&Berlin, at("2026-11-23T00:00:00Z"), 4);
        assert_eq!(
            local(&runs),
            [
                "01-01 03:00 CET",
                "04-01 03:00 CEST",
                "07-01 03:00 CEST",
                "10-01 03:00 CEST"
            ]
        );
    }
}
