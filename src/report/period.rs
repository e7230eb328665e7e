//! Report periods: a month (`2026-11`), a quarter (`2026-Q3`), a year (`2026`), or dates from
//! and to (`2026-07-01..2026-09-30`, both days included). Days begin at midnight in the
//! service's time zone.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As the user wrote it, normalised (`2026-Q3`).
    pub label: String,
    /// The first day.
    pub first: NaiveDate,
    /// The day after the last.
    pub end: NaiveDate,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "period '{text}' is not a month (2026-11), a quarter (2026-Q3), a year (2026) \
                 or dates from..to (2026-07-01..2026-09-30)"
            )
        };
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad());
        let (first, end) = if let Some((from, to)) = text.split_once("..") {
            let (first, last) = (date(from)?, date(to)?);
            if last < first {
                return Err(format!("period '{text}' ends before it begins"));
            }
            (first, last.succ_opt().ok_or_else(bad)?)
        } else if let Some((year, quarter)) = text.split_once(['Q', 'q']) {
            let year: i32 = year
                .strip_suffix('-')
                .unwrap_or(year)
                .parse()
                .map_err(|_| bad())?;
            let q: u32 = quarter.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            let first = NaiveDate::from_ymd_opt(year, 3 * q - 2, 1).ok_or_else(bad)?;
            (first, add_months(first, 3).ok_or_else(bad)?)
        } else if text.len() == 4 {
            let year: i32 = text.parse().map_err(|_| bad())?;
            let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(bad)?;
            (first, add_months(first, 12).ok_or_else(bad)?)
        } else {
            let first = date(&format!("{text}-01"))?;
            (first, add_months(first, 1).ok_or_else(bad)?)
        };
        let label = if text.contains("..") {
            format!("{first}..{}", end.pred_opt().unwrap_or(end))
        } else {
            text.to_uppercase()
        };
        Ok(Period { label, first, end })
    }

    /// The period's start and end (exclusive) as instants in `tz`.
    pub fn bounds<Tz: TimeZone>(&self, tz: &Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (midnight(self.first, tz), midnight(self.end, tz))
    }

    /// Each day of the period with its start and end (exclusive).
    pub fn days<Tz: TimeZone>(&self, tz: &Tz) -> Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
        self.first
            .iter_days()
            .take_while(|d| *d < self.end)
            .map(|d| (d, midnight(d, tz), midnight(d.succ_opt().unwrap_or(d), tz)))
            .collect()
    }

    /// The days of the period, over the days of its year: the part of a yearly quota that falls
    /// into it.
    pub fn share_of_year(&self) -> f64 {
        let days = (self.end - self.first).num_days() as f64;
        let year = if NaiveDate::from_ymd_opt(self.first.year(), 2, 29).is_some() {
            366.0
        } else {
            365.0
        };
        days / year
    }
}

fn add_months(d: NaiveDate, months: u32) -> Option<NaiveDate> {
    d.checked_add_months(chrono::Months::new(months))
}

/// When `day` begins in `tz`: its midnight, or the first moment after a skipped midnight.
pub fn midnight<Tz: TimeZone>(day: NaiveDate, tz: &Tz) -> DateTime<Utc> {
    let mut wall = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&wall).earliest() {
            return t.with_timezone(&Utc);
        }
        wall += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let q = Period::parse("2026-q3").unwrap();
        assert_eq!(q.label, "2026-Q3");
        assert_eq!(q.first.to_string(), "2026-07-01");
        assert_eq!(q.end.to_string(), "2026-10-01");
        let (from, to) = q.bounds(&tz);
        assert_eq!(from.to_rfc3339(), "2026-06-30T22:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert_eq!(q.days(&tz).len(), 92);

        let m = Period::parse("2026-10").unwrap();
        assert_eq!(m.end.to_string(), "2026-11-01");
        // The day the clocks go back has 25 hours.
        let long = m
            .days(&tz)
            .into_iter()
            .find(|(d, _, _)| d.to_string() == "2026-10-25")
            .unwrap();
        assert_eq!((long.2 - long.1).num_hours(), 25);

        let y = Period::parse("2028").unwrap();
        assert_eq!((y.end - y.first).num_days(), 366);
        assert!((y.share_of_year() - 1.0).abs() < 1e-9);

        let r = Period::parse("2026-07-01..2026-07-10").unwrap();
        assert_eq!(r.label, "2026-07-01..2026-07-10");
        assert_eq!((r.end - r.first).num_days(), 10);

        for bad in [
            "2026-Q5",
            "2026-13",
            "26",
            "2026-07-10..2026-07-01",
            "soon",
            "",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
