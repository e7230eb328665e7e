//! The recovery point a contract achieved over a period: the longest time during which the
//! newest successful backup was older than at any other moment, i.e. the longest gap between
//! consecutive successful backups, counting the gap from the last one to the end of the
//! period. Pure: times in, a gap out.

use chrono::{DateTime, Duration, Utc};

/// The longest gap, with where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Gap {
    pub fn length(&self) -> Duration {
        self.to - self.from
    }
}

/// The longest gap between successful backups (`times`, any order) over `[from, to]`. The
/// last backup at or before `from` starts the first gap; without one, the period starts at the first
/// backup in it (before any backup there was nothing to lose). `None` when there is no backup
/// up to `to` at all.
pub fn longest_gap(times: &[DateTime<Utc>], from: DateTime<Utc>, to: DateTime<Utc>) -> Option<Gap> {
    let mut sorted: Vec<DateTime<Utc>> = times.iter().copied().filter(|t| *t <= to).collect();
    sorted.sort();
    let start = sorted.iter().rposition(|t| *t <= from).unwrap_or(0);
    let mut points: Vec<DateTime<Utc>> = sorted[start..].to_vec();
    if points.is_empty() {
        return None;
    }
    points.push(to);
    points
        .windows(2)
        .map(|w| Gap {
            from: w[0],
            to: w[1],
        })
        .max_by_key(|g| g.length())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn gaps() {
        let backups = [
            t("2026-11-01T00:00:00Z"),
            t("2026-11-01T00:30:00Z"),
            t("2026-11-01T02:30:00Z"), // two missed slots: a 2h gap
            t("2026-11-01T03:00:00Z"),
            t("2026-10-31T12:00:00Z"), // before the period: starts the first gap
        ];
        let (from, to) = (t("2026-11-01T00:00:00Z"), t("2026-11-01T03:10:00Z"));
        let gap = longest_gap(&backups, from, to).unwrap();
        assert_eq!(gap.length(), Duration::hours(2));
        assert_eq!(gap.from, t("2026-11-01T00:30:00Z"));
        // The period's start is exactly a backup: the 12h gap before it is not in the period.
        assert_eq!(
            longest_gap(&backups[..4], from, to).unwrap().length(),
            Duration::hours(2)
        );
        // Later in the day with no backup since 03:00: the open gap to the end counts.
        let late = longest_gap(&backups, from, t("2026-11-01T09:00:00Z")).unwrap();
        assert_eq!(
            (late.from, late.length()),
            (t("2026-11-01T03:00:00Z"), Duration::hours(6))
        );
        // A period starting mid-gap: the gap from the backup before the period counts whole.
        let mid = longest_gap(&backups, t("2026-11-01T01:00:00Z"), to).unwrap();
        assert_eq!(mid.length(), Duration::hours(2));
        let early = longest_gap(&backups, t("2026-10-31T18:00:00Z"), to).unwrap();
        assert_eq!(
            (early.from, early.length()),
            (t("2026-10-31T12:00:00Z"), Duration::hours(12))
        );
        // No backup yet, or only after the period.
        assert_eq!(longest_gap(&[], from, to), None);
        assert_eq!(longest_gap(&[t("2026-11-02T00:00:00Z")], from, to), None);
        // One backup, the period's end right on it.
        let one = [t("2026-11-01T01:00:00Z")];
        assert_eq!(
            longest_gap(&one, from, t("2026-11-01T01:00:00Z"))
                .unwrap()
                .length(),
            Duration::zero()
        );
    }
}
