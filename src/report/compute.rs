//! Every figure of a report, from the contract's terms and the tenant's records alone.
//!
//! How backups are counted (version 2):
//! - A source's slots are its tier's runs from `since` (when the service first scheduled
//!   it) or the period's start, whichever is later, up to the period's end or the moment
//!   the report was made. Slots before the source existed are not counted.
//! - A backup record belongs to the time of its `slot` (scheduled backups), or else to the
//!   time it was recorded (backups asked for at once, and records of older versions).
//! - A slot's window runs from it to the next slot. A slot with a successful backup in its
//!   window *succeeded*; with failed ones only, it *failed*; with none, it was *missed* once
//!   its window has closed, and is *pending* while it is still open.
//!
//! Version 1 (kept so that its bundles still verify) counted the slots of the whole period
//! and the records of each day.

use super::controls::controls;
use super::{
    Day, DrillRow, Drills, Entry, IncidentRow, Period, PeriodOut, Report, Rpo, Span, Summary,
    Terms, FORMAT, VERSION,
};
use crate::evidence::{Outcome, Record, RecordKind};
use chrono::{DateTime, Duration, Utc};

pub(super) fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("time '{text}' in a record: {e}"))
}

/// The time a record counts at: its slot, for a scheduled backup; else when it was recorded.
pub(super) fn belongs_to(r: &Record) -> Result<DateTime<Utc>, String> {
    match (&r.kind, &r.slot) {
        (RecordKind::Backup, Some(slot)) => instant(slot),
        _ => instant(&r.recorded),
    }
}

fn ms(d: Duration) -> u64 {
    d.num_milliseconds().max(0) as u64
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10000.0 / whole as f64).round() / 100.0
}

/// Computes the report (this version). `records` are the tenant's records in sequence order:
/// all of them, or at least the stretch the report rests on.
pub fn compute(
    terms: &Terms,
    period: &Period,
    generated: DateTime<Utc>,
    records: &[Entry],
) -> Result<Report, String> {
    compute_version(VERSION, terms, period, generated, records)
}

/// What became of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Succeeded,
    Failed,
    Missed,
    Pending,
}

/// Computes the report as version `version` (1 or 2) computed it.
pub fn compute_version(
    version: u32,
    terms: &Terms,
    period: &Period,
    generated: DateTime<Utc>,
    records: &[Entry],
) -> Result<Report, String> {
    if !(1..=VERSION).contains(&version) {
        return Err(format!(
            "report version {version} is not one this Lifeboat makes"
        ));
    }
    let v2 = version >= 2;
    let tz: chrono_tz::Tz = terms
        .time_zone
        .parse()
        .map_err(|_| format!("unknown time zone '{}'", terms.time_zone))?;
    let (from, to) = period.bounds(&tz);
    let until = to.min(generated).max(from);
    let mut tiers = Vec::new();
    for s in &terms.sources {
        tiers.push(
            crate::schedule::tier::Tier::schedule_only(&s.tier, &s.cron)
                .map_err(|e| format!("source {}: {e}", s.name))?,
        );
    }
    let mut timed = Vec::with_capacity(records.len());
    for e in records {
        if e.record.tenant != terms.tenant {
            return Err(format!(
                "record {} is of tenant '{}', not '{}'",
                e.sequence, e.record.tenant, terms.tenant
            ));
        }
        let at = if v2 {
            belongs_to(&e.record)?
        } else {
            instant(&e.record.recorded)?
        };
        timed.push((e, at));
    }
    let of_source = |e: &Entry, source: &str| {
        e.record.kind == RecordKind::Backup && e.record.source.as_deref() == Some(source)
    };
    let ours = |e: &Entry| e.record.contract.as_deref() == Some(terms.contract.as_str());
    let in_period: Vec<&(&Entry, DateTime<Utc>)> = timed
        .iter()
        .filter(|(e, t)| *t >= from && *t < until && ours(e))
        .collect();

    // The stretch of chain the report rests on.
    // Each chain: the service's, then each site agent's, in the order they first appear.
    let mut chains: Vec<Option<&str>> = vec![None];
    for e in records {
        if !chains.contains(&e.agent.as_deref()) {
            chains.push(e.agent.as_deref());
        }
    }
    let mut anchors = Vec::new();
    for s in &terms.sources {
        // The last successful backup before the period, in each chain; of those, the latest.
        let last_in = |chain: Option<&str>| {
            timed
                .iter()
                .filter(|(e, t)| {
                    e.agent.as_deref() == chain
                        && *t < from
                        && of_source(e, &s.name)
                        && e.record.outcome == Outcome::Success
                })
                .max_by_key(|(e, _)| e.sequence)
        };
        if let Some((e, _)) = chains
            .iter()
            .filter_map(|c| last_in(*c))
            .max_by_key(|(_, t)| *t)
        {
            anchors.push(*e);
        }
    }
    let mut spans = Vec::new();
    for chain in &chains {
        let in_chain = |e: &&Entry| e.agent.as_deref() == *chain;
        let sequences: Vec<u64> = timed
            .iter()
            .filter(|(e, t)| in_chain(e) && *t >= from && *t < until)
            .map(|(e, _)| e.sequence)
            .chain(anchors.iter().filter(|e| in_chain(e)).map(|e| e.sequence))
            .collect();
        let mine: Vec<&Entry> = records.iter().filter(in_chain).collect();
        spans.push((*chain, span(&mine, &sequences)?));
    }
    let span = spans[0].1.clone();
    let sites: Vec<super::SiteSpan> = spans
        .into_iter()
        .filter_map(|(chain, span)| {
            chain
                .filter(|_| span.records > 0)
                .map(|agent| super::SiteSpan {
                    agent: agent.to_string(),
                    span,
                })
        })
        .collect();

    // Per source: its slots, days, and the RPO over time.
    let rpo_objective = Duration::milliseconds(terms.rpo_ms as i64);
    let mut days = Vec::new();
    let mut rpo = Vec::new();
    let mut pending = 0u64;
    let mut missed = 0u64;
    for (s, tier) in terms.sources.iter().zip(&tiers) {
        let mut successes: Vec<DateTime<Utc>> = Vec::new();
        for e in anchors.iter().copied().filter(|e| of_source(e, &s.name)) {
            if let Some(snap) = &e.record.snapshot {
                successes.push(instant(&snap.time)?);
            }
        }
        // This source's backups in the period, by the time they belong to.
        let mut runs: Vec<(DateTime<Utc>, Outcome)> = Vec::new();
        for (e, t) in in_period.iter().copied() {
            if of_source(e, &s.name) {
                runs.push((*t, e.record.outcome));
                if e.record.outcome == Outcome::Success {
                    if let Some(snap) = &e.record.snapshot {
                        successes.push(instant(&snap.time)?);
                    }
                }
            }
        }
        runs.sort_by_key(|r| r.0);
        successes.sort();
        // Which slots count, and what became of each.
        let count_from = if v2 {
            match &s.since {
                Some(since) => Some(instant(since)?.max(from)),
                None => None,
            }
        } else {
            Some(from)
        };
        let slots: Vec<(DateTime<Utc>, Slot)> = match count_from {
            Some(start) if start < until => {
                let times: Vec<DateTime<Utc>> = tier
                    .runs_until(
                        &tz,
                        start - Duration::milliseconds(1),
                        Some(until),
                        usize::MAX,
                    )
                    .into_iter()
                    .filter(|t| *t >= start && *t < until)
                    .collect();
                let after_last = times
                    .last()
                    .and_then(|last| tier.runs(&tz, *last, 1).first().copied());
                times
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        let end = times.get(i + 1).copied().or(after_last);
                        (t, judge(&runs, t, end, until))
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        pending += slots.iter().filter(|s| s.1 == Slot::Pending).count() as u64;
        missed += slots.iter().filter(|s| s.1 == Slot::Missed).count() as u64;
        for (date, start, end) in period.days(&tz) {
            if start >= until {
                break;
            }
            let end = end.min(until);
            let today = slots.iter().filter(|(t, _)| *t >= start && *t < end);
            let count = |what: Slot| today.clone().filter(|(_, s)| *s == what).count() as u64;
            let (succeeded, failed) = if v2 {
                (count(Slot::Succeeded), count(Slot::Failed))
            } else {
                let records = |outcome: Outcome| {
                    runs.iter()
                        .filter(|(t, o)| *o == outcome && *t >= start && *t < end)
                        .count() as u64
                };
                (records(Outcome::Success), records(Outcome::Failure))
            };
            days.push(Day {
                date: date.to_string(),
                source: s.name.clone(),
                scheduled: today.clone().count() as u64,
                succeeded,
                failed,
                missed: v2.then(|| count(Slot::Missed)),
                worst_data_age_ms: worst_age(&successes, start, end).map(ms),
            });
        }
        rpo.push(rpo_of(&s.name, &successes, from, until, rpo_objective));
    }

    let (drill_rows, incidents) = drills_and_incidents(terms, &in_period);
    let expected =
        (terms.test_restores_per_year as f64 * period.share_of_year() * 100.0).round() / 100.0;
    let drills = Drills {
        quota_per_year: terms.test_restores_per_year,
        expected_in_period: expected,
        due_in_period: v2.then(|| (expected.floor() as u64).max(1)),
        done: drill_rows.len() as u64,
        passed: drill_rows.iter().filter(|d| d.passed).count() as u64,
        failed: drill_rows.iter().filter(|d| !d.passed).count() as u64,
        list: drill_rows,
    };
    let summary = Summary {
        backups_scheduled: days.iter().map(|d| d.scheduled).sum(),
        backups_succeeded: days.iter().map(|d| d.succeeded).sum(),
        backups_failed: days.iter().map(|d| d.failed).sum(),
        backups_missed: v2.then_some(missed),
        backups_pending: v2.then_some(pending),
        longest_gap_ms: rpo.iter().filter_map(|r| r.longest_gap_ms).max(),
        rpo_met: !rpo.is_empty() && rpo.iter().all(|r| r.met),
        rpo_held_percent: rpo
            .iter()
            .map(|r| r.held_percent)
            .fold(None, |least: Option<f64>, p| {
                Some(least.map_or(p, |l| l.min(p)))
            })
            .unwrap_or(0.0),
        drills_done: drills.done,
        drills_passed: drills.passed,
        drills_within_rto: drills
            .list
            .iter()
            .filter(|d| d.passed && d.rto_met == Some(true))
            .count() as u64,
        incidents: incidents.len() as u64,
    };
    let controls = controls(version, &summary, &drills);
    let usage = if v2 {
        usage_of(&timed, from, until)
    } else {
        Vec::new()
    };
    Ok(Report {
        format: FORMAT.into(),
        version,
        terms: terms.clone(),
        period: PeriodOut {
            label: period.label.clone(),
            from: crate::evidence::record::time(from),
            to: crate::evidence::record::time(to),
        },
        generated: crate::evidence::record::time(generated),
        measured_until: crate::evidence::record::time(until),
        evidence: span,
        summary,
        days,
        rpo,
        drills,
        incidents,
        controls,
        usage,
        sites,
    })
}

/// Per target, what the tenant's repository held at the last backup of the period and at
/// most: from every backup record of the tenant in it (whatever its contract: the repository
/// is the tenant's).
fn usage_of(
    timed: &[(&Entry, DateTime<Utc>)],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<super::UsageRow> {
    let mut rows: std::collections::BTreeMap<String, super::UsageRow> = Default::default();
    for (e, t) in timed {
        if *t < from || *t >= until || e.record.kind != RecordKind::Backup {
            continue;
        }
        for (key, bytes) in &e.record.measured {
            let Some(target) = key.strip_prefix(crate::evidence::record::STORED_BYTES) else {
                continue;
            };
            let at = crate::evidence::record::time(*t);
            let row = rows.entry(target.to_string()).or_insert(super::UsageRow {
                target: target.to_string(),
                last_bytes: *bytes,
                max_bytes: *bytes,
                last_measured: at.clone(),
            });
            row.max_bytes = row.max_bytes.max(*bytes);
            if at >= row.last_measured {
                row.last_bytes = *bytes;
                row.last_measured = at;
            }
        }
    }
    rows.into_values().collect()
}

/// What became of the slot at `at` whose window ends at `end` (the next slot), given the
/// source's backups sorted by the time they belong to, as seen at `until`.
fn judge(
    runs: &[(DateTime<Utc>, Outcome)],
    at: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> Slot {
    let first = runs.partition_point(|r| r.0 < at);
    let last = match end {
        Some(end) => runs.partition_point(|r| r.0 < end),
        None => runs.len(),
    };
    let window = &runs[first..last.max(first)];
    if window.iter().any(|r| r.1 == Outcome::Success) {
        Slot::Succeeded
    } else if !window.is_empty() {
        Slot::Failed
    } else if end.is_some_and(|end| end <= until) {
        Slot::Missed
    } else {
        Slot::Pending
    }
}

/// The stretch of the chain from the least to the greatest of `sequences`, all of which must
/// be among `records`.
fn span(records: &[&Entry], sequences: &[u64]) -> Result<Span, String> {
    let (Some(&first), Some(&last)) = (sequences.iter().min(), sequences.iter().max()) else {
        return Ok(Span {
            records: 0,
            first: None,
            last: None,
            head: None,
        });
    };
    let head = records
        .iter()
        .find(|e| e.sequence == last)
        .map(|e| e.sha256.clone());
    let present = records
        .iter()
        .filter(|e| e.sequence >= first && e.sequence <= last)
        .count() as u64;
    if present != last - first + 1 {
        return Err(format!(
            "records {first} to {last} are needed, but only {present} of them are here"
        ));
    }
    Ok(Span {
        records: present,
        first: Some(first),
        last: Some(last),
        head,
    })
}

/// The RPO of one source over `[from, until)`, from the times of its successful backups
/// (the last one before the period included).
fn rpo_of(
    source: &str,
    successes: &[DateTime<Utc>],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    objective: Duration,
) -> Rpo {
    let gap = crate::schedule::rpo::longest_gap(successes, from, until);
    let window_start = successes.first().map_or(until, |first| (*first).max(from));
    let measured = ms(until - window_start);
    let mut late = Duration::zero();
    for (i, s0) in successes.iter().enumerate() {
        let next = successes.get(i + 1).copied().unwrap_or(until).min(until);
        let over_from = (*s0 + objective).max(window_start);
        if next > over_from {
            late += next - over_from;
        }
    }
    let held = measured.saturating_sub(ms(late));
    Rpo {
        source: source.to_string(),
        longest_gap_ms: gap.map(|g| ms(g.length())),
        longest_gap_from: gap.map(|g| crate::evidence::record::time(g.from)),
        longest_gap_to: gap.map(|g| crate::evidence::record::time(g.to)),
        measured_ms: measured,
        held_ms: held,
        held_percent: percent(held, measured),
        met: gap.is_some() && held == measured,
    }
}

fn drills_and_incidents(
    terms: &Terms,
    in_period: &[&(&Entry, DateTime<Utc>)],
) -> (Vec<DrillRow>, Vec<IncidentRow>) {
    let mut drill_rows = Vec::new();
    let mut incidents = Vec::new();
    for (e, t) in in_period.iter().copied() {
        let r = &e.record;
        if r.kind == RecordKind::Drill {
            let rto = r.measured.get("rto_ms").copied();
            drill_rows.push(DrillRow {
                evidence: e.sequence,
                agent: e.agent.clone(),
                time: crate::evidence::record::time(*t),
                drill: r.drill.clone().unwrap_or_default(),
                source: r.source.clone().unwrap_or_default(),
                passed: r.outcome == Outcome::Success,
                rto_ms: rto,
                rto_met: rto.map(|v| terms.rto_ms > 0 && v <= terms.rto_ms),
                data_age_ms: r.measured.get("rpo_ms").copied(),
                checks: r.checks.len() as u64,
                checks_passed: r.checks.iter().filter(|c| c.passed).count() as u64,
                severity: r.incident.as_ref().map(|i| i.severity.clone()),
            });
        }
        if let Some(i) = &r.incident {
            incidents.push(IncidentRow {
                evidence: e.sequence,
                agent: e.agent.clone(),
                time: crate::evidence::record::time(*t),
                kind: match r.kind {
                    RecordKind::Backup => "backup".into(),
                    RecordKind::Drill => "drill".into(),
                    RecordKind::Erasure => "erasure".into(),
                    RecordKind::Rekey => "rekey".into(),
                    RecordKind::Site => "site".into(),
                },
                source: r.source.clone().unwrap_or_default(),
                severity: i.severity.clone(),
                summary: i.summary.clone(),
            });
        }
    }
    (drill_rows, incidents)
}

/// The oldest the newest backup got within `[start, end]`: just before each backup in it, and
/// at its end. `None` when there was no backup up to then.
fn worst_age(
    successes: &[DateTime<Utc>],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<Duration> {
    let mut last = successes.iter().copied().filter(|t| *t <= start).max();
    let mut worst: Option<Duration> = None;
    for t in successes
        .iter()
        .copied()
        .filter(|t| *t > start && *t <= end)
    {
        if let Some(l) = last {
            worst = worst.max(Some(t - l));
        }
        last = Some(t);
    }
    last.map(|l| worst.unwrap_or_else(Duration::zero).max(end - l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        instant(s).unwrap()
    }

    #[test]
    fn a_slot_is_judged_by_the_backups_in_its_window() {
        let runs = vec![
            (t("2026-03-01T00:00:00Z"), Outcome::Failure),
            (t("2026-03-01T00:10:00Z"), Outcome::Success),
            (t("2026-03-01T06:00:00Z"), Outcome::Failure),
        ];
        let until = t("2026-03-02T00:00:00Z");
        let at = |s: &str, end: &str| judge(&runs, t(s), Some(t(end)), until);
        // A failure, then a retry that worked: succeeded.
        assert_eq!(
            at("2026-03-01T00:00:00Z", "2026-03-01T06:00:00Z"),
            Slot::Succeeded
        );
        assert_eq!(
            at("2026-03-01T06:00:00Z", "2026-03-01T12:00:00Z"),
            Slot::Failed
        );
        assert_eq!(
            at("2026-03-01T12:00:00Z", "2026-03-01T18:00:00Z"),
            Slot::Missed
        );
        // The window still open when the report is made: pending, not missed.
        assert_eq!(
            judge(
                &runs,
                t("2026-03-01T18:00:00Z"),
                Some(t("2026-03-02T00:00:01Z")),
                until
            ),
            Slot::Pending
        );
    }
}
