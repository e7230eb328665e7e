//! Which controls of the common frameworks a report's evidence supports, by stated rules
//! (version 2; written out in docs/FORMAT.md, "Reports"). Each rule is built from four facts
//! about the period:
//!
//! - **B**, backups as planned: at least one slot was judged, and no more than
//!   `TOLERANCE_PERCENT` of the judged slots (rounded down) failed or were missed;
//! - **R**, the RPO held: every source stayed within the RPO all the time it was measured;
//! - **D**, restores tested: at least `due_in_period` drills passed (the yearly quota's share
//!   of the period, rounded down, and at least one);
//! - **T**, within the RTO: at least one passed drill restored within the RTO, and none
//!   that passed took longer.
//!
//! A control is *supported* when its rule holds, *partial* when some of its evidence is there
//! (a backup or a drill that succeeded), and *not supported* otherwise.

use super::{Control, Drills, Summary};

/// Failed and missed slots a period may have and still count as "backups as planned".
pub const TOLERANCE_PERCENT: u64 = 1;

/// The four facts, from a report's figures.
struct Facts {
    backups: bool,
    rpo: bool,
    drills: bool,
    rto: bool,
    /// Some evidence at all: a backup or a drill that succeeded.
    some_backup: bool,
    some_drill: bool,
}

fn facts(s: &Summary, d: &Drills) -> Facts {
    let missed = s.backups_missed.unwrap_or(0);
    let judged = s.backups_succeeded + s.backups_failed + missed;
    let tolerated = judged * TOLERANCE_PERCENT / 100;
    let rto_failures = d
        .list
        .iter()
        .filter(|x| x.passed && x.rto_met != Some(true))
        .count();
    Facts {
        backups: judged > 0 && s.backups_failed + missed <= tolerated,
        rpo: s.rpo_met,
        drills: d.passed >= d.due_in_period.unwrap_or(1).max(1),
        rto: s.drills_within_rto > 0 && rto_failures == 0,
        some_backup: s.backups_succeeded > 0,
        some_drill: d.passed > 0,
    }
}

/// Fact B: the backups ran as planned, within the tolerance.
pub fn backups_as_planned(s: &Summary, d: &Drills) -> bool {
    facts(s, d).backups
}

/// Fact D: the period's due drills passed.
pub fn drills_done(s: &Summary, d: &Drills) -> bool {
    facts(s, d).drills
}

/// The controls, as report version `version` judged them.
pub fn controls(version: u32, summary: &Summary, drills: &Drills) -> Vec<Control> {
    if version < 2 {
        return controls_v1(summary, drills);
    }
    let f = facts(summary, drills);
    let missed = summary.backups_missed.unwrap_or(0);
    let judged = summary.backups_succeeded + summary.backups_failed + missed;
    let backups_text = format!(
        "{} of {} judged backup slots succeeded ({} failed, {} missed; {} tolerated); the \
         RPO held {}% of the time",
        summary.backups_succeeded,
        judged,
        summary.backups_failed,
        missed,
        judged * TOLERANCE_PERCENT / 100,
        summary.rpo_held_percent
    );
    let drills_text = format!(
        "{} restore drill(s) passed of {} done, {} due in the period; {} within the RTO",
        drills.passed,
        drills.done,
        drills.due_in_period.unwrap_or(1),
        summary.drills_within_rto
    );
    let status = |holds: bool, some: bool| {
        if holds {
            "supported"
        } else if some {
            "partial"
        } else {
            "not supported"
        }
        .to_string()
    };
    let both = format!("{backups_text}; {drills_text}");
    let control =
        |id: &str, title: &str, rule: &str, holds: bool, some: bool, basis: &str| Control {
            id: id.into(),
            title: title.into(),
            status: status(holds, some),
            basis: basis.to_string(),
            rule: Some(rule.into()),
        };
    let strict_backups = f.backups && summary.backups_failed == 0 && missed == 0;
    vec![
        control(
            "ISO/IEC 27001:2022 A.8.13",
            "Information backup: backup copies maintained and regularly tested",
            "B and R and D",
            f.backups && f.rpo && f.drills,
            f.some_backup || f.some_drill,
            &both,
        ),
        control(
            "ISO 22301:2019 8.5",
            "Exercise programme: business continuity arrangements exercised and tested",
            "D and T",
            f.drills && f.rto,
            drills.done > 0,
            &drills_text,
        ),
        control(
            "SOC 2 A1.3",
            "Recovery plan procedures supporting system recovery are tested",
            "D and T",
            f.drills && f.rto,
            drills.done > 0,
            &drills_text,
        ),
        control(
            "DORA Art. 12",
            "Backup policies and procedures, restoration and recovery procedures",
            "B and R and D and T",
            f.backups && f.rpo && f.drills && f.rto,
            f.some_backup || f.some_drill,
            &both,
        ),
        control(
            "NIS2 Art. 21(2)(c)",
            "Business continuity, such as backup management and disaster recovery",
            "B and R and D",
            f.backups && f.rpo && f.drills,
            f.some_backup,
            &both,
        ),
        control(
            "BSI IT-Grundschutz CON.3",
            "Datensicherungskonzept (backup concept): backups as planned, restores tested",
            "B with no failed or missed slot at all, and R and D",
            strict_backups && f.rpo && f.drills,
            f.some_backup,
            &both,
        ),
    ]
}

/// Version 1's controls (kept so that its bundles still verify).
fn controls_v1(summary: &Summary, drills: &Drills) -> Vec<Control> {
    let backups = summary.backups_succeeded > 0;
    let drilled = drills.passed > 0;
    let backups_text = format!(
        "{} of {} scheduled backups succeeded ({} failed); the RPO held {}% of the time",
        summary.backups_succeeded,
        summary.backups_scheduled,
        summary.backups_failed,
        summary.rpo_held_percent
    );
    let drills_text = format!(
        "{} restore drill(s) done, {} passed, {} within the RTO (quota for the period: {})",
        drills.done, drills.passed, summary.drills_within_rto, drills.expected_in_period
    );
    let status = |full: bool, some: bool| {
        if full {
            "supported"
        } else if some {
            "partial"
        } else {
            "not supported"
        }
        .to_string()
    };
    let both = format!("{backups_text}; {drills_text}");
    let tested = drilled && summary.drills_within_rto > 0;
    vec![
        Control {
            id: "ISO/IEC 27001:2022 A.8.13".into(),
            title: "Information backup: backup copies maintained and regularly tested".into(),
            status: status(backups && summary.rpo_met && drilled, backups || drilled),
            basis: both.clone(),
            rule: None,
        },
        Control {
            id: "ISO 22301:2019 8.5".into(),
            title: "Exercise programme: business continuity arrangements exercised and tested"
                .into(),
            status: status(tested, drills.done > 0),
            basis: drills_text.clone(),
            rule: None,
        },
        Control {
            id: "SOC 2 A1.3".into(),
            title: "Recovery plan procedures supporting system recovery are tested".into(),
            status: status(tested, drills.done > 0),
            basis: drills_text.clone(),
            rule: None,
        },
        Control {
            id: "DORA Art. 12".into(),
            title: "Backup policies and procedures, restoration and recovery procedures".into(),
            status: status(backups && summary.rpo_met && tested, backups || drilled),
            basis: both.clone(),
            rule: None,
        },
        Control {
            id: "NIS2 Art. 21(2)(c)".into(),
            title: "Business continuity, such as backup management and disaster recovery".into(),
            status: status(backups && summary.rpo_met && drilled, backups),
            basis: both,
            rule: None,
        },
        Control {
            id: "BSI IT-Grundschutz CON.3".into(),
            title: "Datensicherungskonzept (backup concept): backups as planned, restores tested"
                .into(),
            status: status(
                backups && summary.backups_failed == 0 && summary.rpo_met && drilled,
                backups,
            ),
            basis: backups_text,
            rule: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(succeeded: u64, failed: u64, missed: u64, rpo_met: bool) -> Summary {
        Summary {
            backups_scheduled: succeeded + failed + missed,
            backups_succeeded: succeeded,
            backups_failed: failed,
            backups_missed: Some(missed),
            backups_pending: Some(0),
            longest_gap_ms: None,
            rpo_met,
            rpo_held_percent: if rpo_met { 100.0 } else { 90.0 },
            drills_done: 0,
            drills_passed: 0,
            drills_within_rto: 0,
            incidents: 0,
        }
    }

    fn drills(passed: u64, due: u64, within_rto: bool) -> Drills {
        let row = |i: u64| super::super::DrillRow {
            evidence: i,
            agent: None,
            time: String::new(),
            drill: "d".into(),
            source: "s".into(),
            passed: true,
            rto_ms: Some(1),
            rto_met: Some(within_rto),
            data_age_ms: None,
            checks: 1,
            checks_passed: 1,
            severity: None,
        };
        Drills {
            quota_per_year: 12,
            expected_in_period: due as f64,
            due_in_period: Some(due),
            done: passed,
            passed,
            failed: 0,
            list: (0..passed).map(row).collect(),
        }
    }

    fn status(s: &Summary, d: &Drills, id: &str) -> String {
        let mut s = s.clone();
        s.drills_done = d.done;
        s.drills_passed = d.passed;
        s.drills_within_rto = d.list.iter().filter(|x| x.rto_met == Some(true)).count() as u64;
        controls(2, &s, d)
            .into_iter()
            .find(|c| c.id == id)
            .unwrap()
            .status
    }

    #[test]
    fn rules_with_their_tolerance() {
        const A813: &str = "ISO/IEC 27001:2022 A.8.13";
        const BSI: &str = "BSI IT-Grundschutz CON.3";
        const ISO22301: &str = "ISO 22301:2019 8.5";
        // (summary, drills, control, status)
        let cases = [
            // All slots succeeded, RPO held, the due drill passed: supported.
            (
                summary(100, 0, 0, true),
                drills(1, 1, true),
                A813,
                "supported",
            ),
            // 1 of 100 failed is within 1%: still supported; but not for BSI.
            (
                summary(99, 1, 0, true),
                drills(1, 1, true),
                A813,
                "supported",
            ),
            (summary(99, 1, 0, true), drills(1, 1, true), BSI, "partial"),
            // 2 of 100 missed is beyond it.
            (summary(98, 0, 2, true), drills(1, 1, true), A813, "partial"),
            // Fewer drills passed than due.
            (
                summary(100, 0, 0, true),
                drills(1, 3, true),
                A813,
                "partial",
            ),
            // The RPO missed.
            (
                summary(100, 0, 0, false),
                drills(1, 1, true),
                A813,
                "partial",
            ),
            // Nothing judged yet (the first minutes of a source), nothing drilled.
            (
                summary(0, 0, 0, false),
                drills(0, 1, true),
                A813,
                "not supported",
            ),
            // Exercises: the drill passed but beyond the RTO.
            (
                summary(100, 0, 0, true),
                drills(1, 1, false),
                ISO22301,
                "partial",
            ),
            (
                summary(100, 0, 0, true),
                drills(2, 1, true),
                ISO22301,
                "supported",
            ),
        ];
        for (i, (s, d, id, want)) in cases.iter().enumerate() {
            assert_eq!(status(s, d, id), *want, "case {i}: {id}");
        }
    }
}
