//! The customer's say over test restores: a contract allows so many per calendar year (in the
//! service's time zone), scheduled and requested drills alike; a planned drill can be
//! cancelled until the notice period before it. Pure functions of the drills and a time.

use crate::catalog::drills::DrillRow;
use chrono::{DateTime, Datelike, Duration, Utc};

/// A contract's terms for test restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub per_year: u32,
    /// How long before a planned drill it can still be cancelled (none: until it starts).
    pub notice: Duration,
}

impl Terms {
    /// The terms of `contract` (none when it is not configured: no test restores).
    pub fn of(config: &crate::config::Config, contract: &str) -> Terms {
        let c = config.contracts.get(contract);
        Terms {
            per_year: c.map_or(0, |c| c.test_restores_per_year),
            notice: c.map_or_else(Duration::zero, |c| c.notice()),
        }
    }
}

/// How far ahead a drill may be planned: a year and a day, so that "the same day next year"
/// is always possible.
pub const HORIZON: Duration = Duration::days(366);

/// Whether a drill counts against the quota: scheduled and requested ones that were not
/// cancelled. Drills staff run by hand do not.
pub fn counts(d: &DrillRow) -> bool {
    d.state != "cancelled" && (d.reason == "scheduled" || d.reason == "requested")
}

/// The drills of `contract` that count against the quota of the year `at` falls in.
pub fn used_in_year<'a>(
    drills: &'a [DrillRow],
    contract: &str,
    at: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Vec<&'a DrillRow> {
    let year = at.with_timezone(&tz).year();
    drills
        .iter()
        .filter(|d| d.contract == contract && counts(d))
        .filter(|d| d.planned_for.with_timezone(&tz).year() == year)
        .collect()
}

/// Whether one more drill may be planned for `at`: `Ok(left after it)`, or why not.
pub fn may_plan(
    terms: Terms,
    drills: &[DrillRow],
    contract: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<u32, String> {
    if at < now {
        return Err(format!(
            "{} is in the past; plan a drill for a time to come",
            at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        ));
    }
    if at > now + HORIZON {
        return Err(format!(
            "{} is more than {} days ahead; drills can be planned up to {} (a date that far \
             out is usually a typo)",
            at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
            HORIZON.num_days(),
            (now + HORIZON)
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M %Z")
        ));
    }
    let used = used_in_year(drills, contract, at, tz).len() as u32;
    let year = at.with_timezone(&tz).year();
    if used >= terms.per_year {
        return Err(format!(
            "contract {contract} allows {} test restore(s) in {year}, and {used} are already \
             planned or done",
            terms.per_year
        ));
    }
    Ok(terms.per_year - used - 1)
}

/// Whether `drill` may be cancelled at `now`, or why not (saying until when it could have
/// been).
pub fn may_cancel(
    terms: Terms,
    drill: &DrillRow,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<(), String> {
    if drill.state != "planned" {
        return Err(format!(
            "drill {} is {}, not planned: only planned drills can be cancelled",
            drill.id, drill.state
        ));
    }
    let until = drill.planned_for - terms.notice;
    if now > until {
        return Err(format!(
            "drill {} planned for {} could be cancelled until {} ({} notice); it is too late now",
            drill.id,
            drill
                .planned_for
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M %Z"),
            until.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
            crate::schedule::retention::span(terms.notice)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn drill(id: i64, reason: &str, state: &str, at: &str) -> DrillRow {
        DrillRow {
            id,
            spec: "erp".into(),
            tenant: "acme".into(),
            contract: "erp".into(),
            source: "erp-db".into(),
            reason: reason.into(),
            planned_for: t(at),
            state: state.into(),
            requested_by: None,
            snapshot: None,
            pick: None,
            started: None,
            finished: None,
            outcome: None,
            evidence: None,
            cancelled: None,
        }
    }

    const TERMS: Terms = Terms {
        per_year: 3,
        notice: Duration::days(7),
    };
    const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn the_quota_counts_scheduled_and_requested_drills_of_the_year() {
        let drills = vec![
            drill(1, "scheduled", "done", "2026-02-01T06:00:00Z"),
            drill(2, "requested", "done", "2026-05-01T06:00:00Z"),
            drill(3, "requested", "cancelled", "2026-06-01T06:00:00Z"),
            drill(4, "manual", "done", "2026-07-01T06:00:00Z"),
            // 2025-12-31 23:30 UTC is 2026-01-01 00:30 in Berlin: it counts for 2026.
            drill(5, "scheduled", "done", "2025-12-31T23:30:00Z"),
            drill(6, "scheduled", "done", "2025-06-01T06:00:00Z"),
        ];
        let now = t("2026-11-23T10:00:00Z");
        // 1, 2 and 5 count for 2026: the quota of 3 is used up.
        let refused =
            may_plan(TERMS, &drills, "erp", t("2026-12-01T06:00:00Z"), now, TZ).unwrap_err();
        assert!(
            refused.contains("allows 3 test restore(s) in 2026, and 3 are already planned or done"),
            "{refused}"
        );
        // 2027 is a new year.
        assert_eq!(
            may_plan(TERMS, &drills, "erp", t("2027-01-10T06:00:00Z"), now, TZ),
            Ok(2)
        );
        // Without drill 5, one is left for 2026.
        let fewer: Vec<_> = drills.iter().filter(|d| d.id != 5).cloned().collect();
        assert_eq!(
            may_plan(TERMS, &fewer, "erp", t("2026-12-01T06:00:00Z"), now, TZ),
            Ok(0)
        );
        // Another contract's drills do not count; the past cannot be planned.
        assert_eq!(
            may_plan(TERMS, &drills, "files", t("2026-12-01T06:00:00Z"), now, TZ),
            Ok(2)
        );
        assert!(
            may_plan(TERMS, &fewer, "erp", t("2026-11-01T06:00:00Z"), now, TZ)
                .unwrap_err()
                .contains("in the past")
        );
        // Up to a year and a day ahead, not further.
        assert_eq!(
            may_plan(TERMS, &drills, "erp", t("2027-11-24T10:00:00Z"), now, TZ),
            Ok(2)
        );
        let far = may_plan(TERMS, &drills, "erp", t("2027-11-24T10:00:01Z"), now, TZ).unwrap_err();
        assert!(
            far.contains(
                "more than 366 days ahead; drills can be planned up to 2027-11-24 11:00 CET"
            ),
            "{far}"
        );
        assert!(
            may_plan(TERMS, &drills, "erp", t("9999-12-31T00:00:00Z"), now, TZ)
                .unwrap_err()
                .contains("days ahead")
        );
    }

    #[test]
    fn a_planned_drill_can_be_cancelled_until_the_notice_period() {
        let d = drill(7, "requested", "planned", "2026-12-10T08:00:00Z");
        // Seven days before: 2026-12-03 08:00 UTC, 09:00 in Berlin.
        assert_eq!(may_cancel(TERMS, &d, t("2026-12-03T08:00:00Z"), TZ), Ok(()));
        let late = may_cancel(TERMS, &d, t("2026-12-03T08:00:01Z"), TZ).unwrap_err();
        assert!(
            late.contains("could be cancelled until 2026-12-03 09:00 CET (7d notice)"),
            "{late}"
        );
        let done = drill(8, "requested", "done", "2026-10-10T08:00:00Z");
        assert!(may_cancel(TERMS, &done, t("2026-09-01T00:00:00Z"), TZ)
            .unwrap_err()
            .contains("is done, not planned"));
        // No notice: until the moment it starts.
        let none = Terms {
            notice: Duration::zero(),
            ..TERMS
        };
        assert_eq!(may_cancel(none, &d, t("2026-12-10T08:00:00Z"), TZ), Ok(()));
    }
}
