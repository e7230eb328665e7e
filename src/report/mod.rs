//! Reports: one contract's evidence over a period, summarised against its objectives.
//!
//! `compute` is pure: the contract's terms, the period, the time the report was made and the
//! tenant's evidence records go in; the report comes out. Every figure is recomputed from the
//! records alone, so an auditor with the bundle (`bundle`) can redo it offline and compare
//! (`lifeboat report verify`).
//!
//! Which records a report rests on: those recorded in the period, and for each source the last
//! successful backup before it (where the data age at the period's start comes from). The
//! report names the whole stretch of the tenant's chain from the first of them to the last,
//! and the bundle holds all of it, so that nothing in between can be left out unseen.

pub mod bundle;
pub mod period;
pub mod render;

use crate::evidence::{Outcome, Record, RecordKind};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use period::Period;

pub const FORMAT: &str = "lifeboat-report";
pub const VERSION: u32 = 1;

/// What the contract promises and what it covers: the report's input besides the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    pub tenant: String,
    pub tenant_name: String,
    pub contract: String,
    /// The service's time zone: days begin at its midnight.
    pub time_zone: String,
    pub rpo_ms: u64,
    pub rto_ms: u64,
    pub test_restores_per_year: u32,
    pub notice_ms: u64,
    pub sources: Vec<SourceTerms>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTerms {
    pub name: String,
    pub tier: String,
    /// The tier's schedule (6-field cron, in the time zone above).
    pub cron: String,
}

impl Terms {
    /// The terms of `contract` in a loaded configuration.
    pub fn of(loaded: &crate::config::Loaded, contract: &str) -> Result<Terms, String> {
        let config = &loaded.config;
        let c = config.contracts.get(contract).ok_or_else(|| {
            format!(
                "no contract '{contract}' in the configuration (it has: {})",
                config
                    .contracts
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.num_milliseconds().max(0) as u64);
        let tenant = c.tenant.get_ref().clone();
        let sources = config
            .sources
            .iter()
            .filter(|(_, s)| s.contract.get_ref() == contract)
            .filter_map(|(name, _)| {
                let tier = loaded.tiers.get(name)?;
                Some(SourceTerms {
                    name: name.clone(),
                    tier: tier.name.clone(),
                    cron: tier.cron.clone(),
                })
            })
            .collect();
        Ok(Terms {
            tenant_name: config
                .tenants
                .get(&tenant)
                .map_or_else(|| tenant.clone(), |t| t.name.clone()),
            tenant,
            contract: contract.to_string(),
            time_zone: config.service.time_zone().name().to_string(),
            rpo_ms: ms(c.rpo()),
            rto_ms: ms(c.rto()),
            test_restores_per_year: c.test_restores_per_year,
            notice_ms: ms(Some(c.notice())),
            sources,
        })
    }
}

/// A report from the catalog's evidence, and the tenant's stored records (for a bundle).
pub fn from_catalog(
    loaded: &crate::config::Loaded,
    catalog: &crate::catalog::Catalog,
    contract: &str,
    period: &str,
    generated: DateTime<Utc>,
) -> Result<(Report, Vec<crate::catalog::evidence::StoredEvidence>), String> {
    let terms = Terms::of(loaded, contract)?;
    let period = Period::parse(period)?;
    let stored = catalog
        .evidence(Some(&terms.tenant))
        .map_err(|e| e.to_string())?;
    let mut entries = Vec::with_capacity(stored.len());
    for e in &stored {
        let record = Record::parse(&e.record).map_err(|why| {
            format!(
                "record {} of {} in the catalog: {why}",
                e.sequence, e.tenant
            )
        })?;
        entries.push(Entry {
            sequence: e.sequence,
            sha256: e.sha256.clone(),
            record,
        });
    }
    let report = compute(&terms, &period, generated, &entries)?;
    Ok((report, stored))
}

/// A record with its place in the chain.
#[derive(Debug, Clone)]
pub struct Entry {
    pub sequence: u64,
    pub sha256: String,
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub format: String,
    pub version: u32,
    pub terms: Terms,
    pub period: PeriodOut,
    /// When the report was made; a period not over yet is measured up to here.
    pub generated: String,
    pub measured_until: String,
    pub evidence: Span,
    pub summary: Summary,
    /// One row per source and day.
    pub days: Vec<Day>,
    pub rpo: Vec<Rpo>,
    pub drills: Drills,
    pub incidents: Vec<IncidentRow>,
    pub controls: Vec<Control>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodOut {
    pub label: String,
    pub from: String,
    pub to: String,
}

/// The stretch of the tenant's chain the report rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub records: u64,
    pub first: Option<u64>,
    pub last: Option<u64>,
    /// SHA-256 of the last record.
    pub head: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub backups_scheduled: u64,
    pub backups_succeeded: u64,
    pub backups_failed: u64,
    /// The longest gap between successful backups, over all sources.
    pub longest_gap_ms: Option<u64>,
    /// Whether every source kept within the RPO all period.
    pub rpo_met: bool,
    /// The least share of time any source was within the RPO, in percent.
    pub rpo_held_percent: f64,
    pub drills_done: u64,
    pub drills_passed: u64,
    /// Drills whose measured RTO was within the objective.
    pub drills_within_rto: u64,
    pub incidents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Day {
    pub date: String,
    pub source: String,
    pub scheduled: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// The oldest the newest backup got during the day (none before the first backup).
    pub worst_data_age_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rpo {
    pub source: String,
    pub longest_gap_ms: Option<u64>,
    pub longest_gap_from: Option<String>,
    pub longest_gap_to: Option<String>,
    /// Time measured: from the period's start (or the first backup, if later) to its end.
    pub measured_ms: u64,
    /// Of that, the time during which the newest backup was no older than the RPO.
    pub held_ms: u64,
    pub held_percent: f64,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drills {
    pub quota_per_year: u32,
    /// The quota's share of the period (a quarter of 4 a year is 1).
    pub expected_in_period: f64,
    pub done: u64,
    pub passed: u64,
    pub failed: u64,
    pub list: Vec<DrillRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRow {
    pub evidence: u64,
    pub time: String,
    pub drill: String,
    pub source: String,
    pub passed: bool,
    pub rto_ms: Option<u64>,
    pub rto_met: Option<bool>,
    /// The age of the restored data when the drill started.
    pub data_age_ms: Option<u64>,
    pub checks: u64,
    pub checks_passed: u64,
    pub severity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRow {
    pub evidence: u64,
    pub time: String,
    /// `backup` or `drill`.
    pub kind: String,
    pub source: String,
    pub severity: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub id: String,
    pub title: String,
    /// `supported`, `partial` or `not supported`.
    pub status: String,
    /// What in this report supports it, or what is missing.
    pub basis: String,
}

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("time '{text}' in a record: {e}"))
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

/// Computes the report. `records` are the tenant's records in sequence order: all of them, or
/// at least the stretch the report rests on.
pub fn compute(
    terms: &Terms,
    period: &Period,
    generated: DateTime<Utc>,
    records: &[Entry],
) -> Result<Report, String> {
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
        timed.push((e, instant(&e.record.recorded)?));
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
    let mut anchors = Vec::new();
    for s in &terms.sources {
        if let Some((e, _)) = timed
            .iter()
            .filter(|(e, t)| {
                *t < from && of_source(e, &s.name) && e.record.outcome == Outcome::Success
            })
            .max_by_key(|(e, _)| e.sequence)
        {
            anchors.push(*e);
        }
    }
    let all_in_period = timed
        .iter()
        .filter(|(_, t)| *t >= from && *t < until)
        .map(|(e, _)| e.sequence);
    let sequences: Vec<u64> = all_in_period
        .chain(anchors.iter().map(|e| e.sequence))
        .collect();
    let span = match (sequences.iter().min(), sequences.iter().max()) {
        (Some(&first), Some(&last)) => {
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
            Span {
                records: present,
                first: Some(first),
                last: Some(last),
                head,
            }
        }
        _ => Span {
            records: 0,
            first: None,
            last: None,
            head: None,
        },
    };

    // Per source: days, and the RPO over time.
    let rpo_objective = Duration::milliseconds(terms.rpo_ms as i64);
    let mut days = Vec::new();
    let mut rpo = Vec::new();
    for (s, tier) in terms.sources.iter().zip(&tiers) {
        let mut successes: Vec<DateTime<Utc>> = Vec::new();
        for e in anchors.iter().copied().filter(|e| of_source(e, &s.name)) {
            if let Some(snap) = &e.record.snapshot {
                successes.push(instant(&snap.time)?);
            }
        }
        for (e, _) in in_period.iter().copied() {
            if of_source(e, &s.name) && e.record.outcome == Outcome::Success {
                if let Some(snap) = &e.record.snapshot {
                    successes.push(instant(&snap.time)?);
                }
            }
        }
        successes.sort();
        for (date, start, end) in period.days(&tz) {
            if start >= until {
                break;
            }
            let end = end.min(until);
            let slots = tier
                .runs_until(&tz, start - Duration::seconds(1), Some(end), usize::MAX)
                .into_iter()
                .filter(|t| *t >= start && *t < end)
                .count() as u64;
            let runs = |outcome: Outcome| {
                in_period
                    .iter()
                    .filter(|(e, t)| {
                        of_source(e, &s.name)
                            && e.record.outcome == outcome
                            && *t >= start
                            && *t < end
                    })
                    .count() as u64
            };
            days.push(Day {
                date: date.to_string(),
                source: s.name.clone(),
                scheduled: slots,
                succeeded: runs(Outcome::Success),
                failed: runs(Outcome::Failure),
                worst_data_age_ms: worst_age(&successes, start, end).map(ms),
            });
        }
        let gap = crate::schedule::rpo::longest_gap(&successes, from, until);
        let window_start = successes.first().map_or(until, |first| (*first).max(from));
        let measured = ms(until - window_start);
        let mut late = Duration::zero();
        for (i, s0) in successes.iter().enumerate() {
            let next = successes.get(i + 1).copied().unwrap_or(until).min(until);
            let over_from = (*s0 + rpo_objective).max(window_start);
            if next > over_from {
                late += next - over_from;
            }
        }
        let held = measured.saturating_sub(ms(late));
        rpo.push(Rpo {
            source: s.name.clone(),
            longest_gap_ms: gap.map(|g| ms(g.length())),
            longest_gap_from: gap.map(|g| crate::evidence::record::time(g.from)),
            longest_gap_to: gap.map(|g| crate::evidence::record::time(g.to)),
            measured_ms: measured,
            held_ms: held,
            held_percent: percent(held, measured),
            met: gap.is_some() && held == measured,
        });
    }

    // Drills and incidents.
    let mut drill_rows = Vec::new();
    let mut incidents = Vec::new();
    for (e, t) in in_period.iter().copied() {
        let r = &e.record;
        if r.kind == RecordKind::Drill {
            let rto = r.measured.get("rto_ms").copied();
            drill_rows.push(DrillRow {
                evidence: e.sequence,
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
                time: crate::evidence::record::time(*t),
                kind: match r.kind {
                    RecordKind::Backup => "backup".into(),
                    RecordKind::Drill => "drill".into(),
                },
                source: r.source.clone().unwrap_or_default(),
                severity: i.severity.clone(),
                summary: i.summary.clone(),
            });
        }
    }
    let drills = Drills {
        quota_per_year: terms.test_restores_per_year,
        expected_in_period: (terms.test_restores_per_year as f64 * period.share_of_year() * 100.0)
            .round()
            / 100.0,
        done: drill_rows.len() as u64,
        passed: drill_rows.iter().filter(|d| d.passed).count() as u64,
        failed: drill_rows.iter().filter(|d| !d.passed).count() as u64,
        list: drill_rows,
    };
    let summary = Summary {
        backups_scheduled: days.iter().map(|d| d.scheduled).sum(),
        backups_succeeded: days.iter().map(|d| d.succeeded).sum(),
        backups_failed: days.iter().map(|d| d.failed).sum(),
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
    let controls = controls(&summary, &drills);
    Ok(Report {
        format: FORMAT.into(),
        version: VERSION,
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
    })
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

/// The controls of the common frameworks that this evidence supports, and how far.
fn controls(summary: &Summary, drills: &Drills) -> Vec<Control> {
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
        },
        Control {
            id: "ISO 22301:2019 8.5".into(),
            title: "Exercise programme: business continuity arrangements exercised and tested"
                .into(),
            status: status(tested, drills.done > 0),
            basis: drills_text.clone(),
        },
        Control {
            id: "SOC 2 A1.3".into(),
            title: "Recovery plan procedures supporting system recovery are tested".into(),
            status: status(tested, drills.done > 0),
            basis: drills_text.clone(),
        },
        Control {
            id: "DORA Art. 12".into(),
            title: "Backup policies and procedures, restoration and recovery procedures".into(),
            status: status(backups && summary.rpo_met && tested, backups || drilled),
            basis: both.clone(),
        },
        Control {
            id: "NIS2 Art. 21(2)(c)".into(),
            title: "Business continuity, such as backup management and disaster recovery".into(),
            status: status(backups && summary.rpo_met && drilled, backups),
            basis: both,
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
        },
    ]
}
