//! Which scheduled runs are due: pure, given what was planned before and the time now.
//!
//! A daemon that was down while runs fell due makes one catch-up run per source, not one for
//! every missed slot (a `90/48` source down for a day gets one backup, not 48).

use super::tier::Tier;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

/// A run to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub source: String,
    /// The slot this run is for: the newest slot that fell due.
    pub scheduled: DateTime<Utc>,
    /// Older slots that fell due while nothing ran, and are folded into this run.
    pub missed: u32,
}

/// For each source, the newest slot in (`last`, `now`], if any. A source never planned before
/// (no `last`) starts with its first slot after `now`: it gets nothing now.
pub fn due<Tz: TimeZone>(
    tiers: &BTreeMap<String, Tier>,
    last: &BTreeMap<String, DateTime<Utc>>,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Vec<Due> {
    let mut out = Vec::new();
    for (source, tier) in tiers {
        let Some(since) = last.get(source) else {
            continue;
        };
        let slots = tier.runs_until(tz, *since, Some(now), usize::MAX);
        if let Some(newest) = slots.last() {
            out.push(Due {
                source: source.clone(),
                scheduled: *newest,
                missed: (slots.len() - 1) as u32,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use chrono_tz::Europe::Berlin;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tiers() -> BTreeMap<String, Tier> {
        [
            ("erp".to_string(), Tier::named("90/48").unwrap()),
            ("share".to_string(), Tier::named("90/4").unwrap()),
        ]
        .into()
    }

    #[test]
    fn one_run_per_slot_and_one_catch_up_after_downtime() {
        let t = tiers();
        let mut last: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        // Never planned: nothing now.
        assert!(due(&t, &last, &Berlin, at("2026-11-23T09:00:00Z")).is_empty());
        last.insert("erp".into(), at("2026-11-23T09:00:00Z"));
        last.insert("share".into(), at("2026-11-23T09:00:00Z"));
        // 09:10 UTC: nothing yet; 09:30: the erp slot.
        assert!(due(&t, &last, &Berlin, at("2026-11-23T09:10:00Z")).is_empty());
        let d = due(&t, &last, &Berlin, at("2026-11-23T09:30:00Z"));
        assert_eq!(
            d,
            [Due {
                source: "erp".into(),
                scheduled: at("2026-11-23T09:30:00Z"),
                missed: 0
            }]
        );
        // Down from 09:30 to the next day 10:05 UTC: one catch-up each, for the newest slot.
        last.insert("erp".into(), at("2026-11-23T09:30:00Z"));
        let d = due(&t, &last, &Berlin, at("2026-11-24T10:05:00Z"));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].scheduled, at("2026-11-24T10:00:00Z"));
        assert_eq!(d[0].missed, 48);
        // share: 11:00, 15:00, 19:00 CET on the 23rd and 07:00, 11:00 on the 24th fell due.
        assert_eq!(d[1].scheduled, at("2026-11-24T10:00:00Z"));
        assert_eq!(d[1].missed, 4);
    }

    #[test]
    fn a_simulated_week_runs_each_slot_exactly_once() {
        // The daemon wakes every 7 minutes for a week, across the autumn DST change.
        let t = tiers();
        let start = at("2026-10-21T00:00:00Z");
        let mut last: BTreeMap<String, DateTime<Utc>> =
            t.keys().map(|k| (k.clone(), start)).collect();
        let mut ran: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
        let mut now = start;
        while now < start + Duration::days(7) {
            now += Duration::minutes(7);
            for d in due(&t, &last, &Berlin, now) {
                assert_eq!(d.missed, 0, "{d:?}");
                last.insert(d.source.clone(), d.scheduled);
                ran.entry(d.source).or_default().push(d.scheduled);
            }
        }
        let expect = |tier: &Tier| tier.runs_until(&Berlin, start, Some(now), usize::MAX);
        assert_eq!(ran["erp"], expect(&t["erp"]));
        // 7 × 24 real hours hold 7 × 48 half-hours, the repeated local hour included.
        assert_eq!(ran["erp"].len(), 7 * 48);
        assert_eq!(ran["share"], expect(&t["share"]));
        assert_eq!(ran["share"].len(), 5 * 4);
    }
}
