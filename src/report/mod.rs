//! Reports: one contract's evidence over a period, summarised against its objectives.
//!
//! `compute` is pure: the contract's terms, the period, the time the report was made and the
//! tenant's evidence records go in; the report comes out. Every figure is recomputed from the
//! records alone, so an auditor with the bundle (`bundle`) can redo it offline and compare
//! (`lifeboat report verify`). How slots are counted and when a control counts as supported
//! are the rules in `compute` and `controls`, written out in docs/FORMAT.md ("Reports").
//!
//! Which records a report rests on: those recorded in the period, and for each source the last
//! successful backup before it (where the data age at the period's start comes from). The
//! report names the whole stretch of the tenant's chain from the first of them to the last,
//! and the bundle holds all of it, so that nothing in between can be left out unseen.

pub mod bundle;
mod compute;
pub mod controls;
pub mod period;
pub mod render;
mod sites;

use crate::evidence::Record;
use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use compute::{compute, compute_version};
pub use period::Period;

pub const FORMAT: &str = "lifeboat-report";
/// 2: slots counted from when each source was first scheduled, missed slots, control rules.
/// Bundles of version 1 still verify (`compute_version`).
pub const VERSION: u32 = 2;

/// The longest period a report covers.
pub const MAX_DAYS: i64 = 731;

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
    /// The first slot counted: when the service first scheduled the source (version 2; none:
    /// never scheduled, so no slot counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Terms {
    /// The terms of `contract` in a loaded configuration; each source's first counted slot
    /// comes from `since` (see `from_catalog`).
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
                    since: None,
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

/// Why no report was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// The request cannot be answered as asked (a period too long, before the contract's
    /// evidence, not begun): the message says what to ask instead.
    Refused(String),
    /// Something failed on the way (the catalog, a record).
    Failed(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Refused(m) | ReportError::Failed(m) => f.write_str(m),
        }
    }
}

/// Whether a report for `period` may be made at `now`: at most `MAX_DAYS` long, begun, and
/// starting no earlier than January 1 of the year of the contract's first evidence (of this
/// year, with no evidence yet): a report reaches as far back as there can be anything to say.
pub fn admissible(
    period: &Period,
    tz: &chrono_tz::Tz,
    first_evidence: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let days = (period.end - period.first).num_days();
    if days > MAX_DAYS {
        return Err(format!(
            "period {} is {days} days long; a report covers at most {MAX_DAYS} days (two \
             years): ask for a year, a quarter or a month",
            period.label
        ));
    }
    let (from, _) = period.bounds(tz);
    if from > now {
        return Err(format!(
            "period {} has not begun yet (it starts {})",
            period.label,
            from.with_timezone(tz).format("%Y-%m-%d")
        ));
    }
    let year = first_evidence.unwrap_or(now).with_timezone(tz).year();
    let earliest = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(period.first);
    if period.first < earliest {
        let why = match first_evidence {
            Some(first) => format!(
                "the contract's evidence begins {}",
                first.with_timezone(tz).format("%Y-%m-%d")
            ),
            None => "the contract has no evidence yet".to_string(),
        };
        return Err(format!(
            "period {} starts before there is anything to report: {why}; a report may start \
             on {earliest} at the earliest",
            period.label
        ));
    }
    Ok(())
}

/// A report from the catalog's evidence, and the tenant's stored records (for a bundle). Each
/// source's slots are counted from the first slot the service scheduled for it (the job
/// queue knows), or else from its first evidence record.
pub fn from_catalog(
    loaded: &crate::config::Loaded,
    catalog: &crate::catalog::Catalog,
    contract: &str,
    period: &str,
    generated: DateTime<Utc>,
) -> Result<(Report, Stored), ReportError> {
    let failed = ReportError::Failed;
    let mut terms = Terms::of(loaded, contract).map_err(ReportError::Refused)?;
    let period = Period::parse(period).map_err(ReportError::Refused)?;
    let mut stored = Stored {
        centre: catalog
            .evidence(Some(&terms.tenant))
            .map_err(|e| failed(e.to_string()))?,
        sites: Vec::new(),
    };
    let agents = catalog.agents().map_err(|e| failed(e.to_string()))?;
    for (agent, e) in catalog
        .site_evidence(Some(&terms.tenant))
        .map_err(|e| failed(e.to_string()))?
    {
        match stored.sites.iter_mut().find(|(a, _)| a.id == agent) {
            Some((_, records)) => records.push(e),
            None => {
                let row = agents
                    .iter()
                    .find(|a| a.id == agent)
                    .cloned()
                    .ok_or_else(|| {
                        failed(format!("records of agent {agent}, which is not enrolled"))
                    })?;
                stored.sites.push((row, vec![e]));
            }
        }
    }
    let chains = std::iter::once((None, &stored.centre)).chain(
        stored
            .sites
            .iter()
            .map(|(a, records)| (Some(a.id.clone()), records)),
    );
    let mut entries = Vec::new();
    for (agent, records) in chains {
        for e in records {
            let record = Record::parse(&e.record).map_err(|why| {
                failed(format!(
                    "record {} of {} in the catalog: {why}",
                    e.sequence, e.tenant
                ))
            })?;
            entries.push(Entry {
                sequence: e.sequence,
                sha256: e.sha256.clone(),
                record,
                agent: agent.clone(),
            });
        }
    }
    let first_evidence = entries
        .iter()
        .filter(|e| e.record.contract.as_deref() == Some(contract))
        .filter_map(|e| compute::instant(&e.record.recorded).ok())
        .min();
    let tz = loaded.config.service.time_zone();
    admissible(&period, &tz, first_evidence, generated).map_err(ReportError::Refused)?;
    for s in &mut terms.sources {
        let scheduled = catalog
            .first_slot(&s.name)
            .map_err(|e| failed(e.to_string()))?;
        let recorded = entries
            .iter()
            .filter(|e| e.record.source.as_deref() == Some(s.name.as_str()))
            .filter_map(|e| compute::belongs_to(&e.record).ok())
            .min();
        // A site's source: its agent plans its slots, from when it first enrolled.
        let site = loaded.config.sources.get(&s.name).and_then(|c| c.site());
        let enrolled = agents
            .iter()
            .filter(|a| site == Some(a.site.as_str()))
            .filter_map(|a| compute::instant(&a.enrolled).ok())
            .min();
        s.since = [scheduled, recorded, enrolled]
            .into_iter()
            .flatten()
            .min()
            .map(crate::evidence::record::time);
    }
    let report = compute(&terms, &period, generated, &entries).map_err(failed)?;
    Ok((report, stored))
}

/// A record with its place in its chain.
#[derive(Debug, Clone)]
pub struct Entry {
    pub sequence: u64,
    pub sha256: String,
    pub record: Record,
    /// The site agent whose chain it is in; `None`: the service's chain.
    pub agent: Option<String>,
}

/// The stored records a report may rest on: the service's chain of the tenant, and each of
/// its site agents' chains with the agent's enrollment.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub centre: Vec<crate::catalog::evidence::StoredEvidence>,
    pub sites: Vec<(
        crate::catalog::sites::AgentRow,
        Vec<crate::catalog::evidence::StoredEvidence>,
    )>,
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
    /// What the tenant's repository on each target held over the period (version 2): what
    /// MSPs bill by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<UsageRow>,
    /// The stretches of the chains of the tenant's site agents the report rests on (one per
    /// agent that wrote records for it); absent when all evidence is the service's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteSpan>,
}

/// The stretch of one site agent's chain a report rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpan {
    /// The agent's fingerprint: its chain is signed with that key.
    pub agent: String,
    #[serde(flatten)]
    pub span: Span,
}

/// A tenant's repository on one target over the period, from its backups' evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRow {
    pub target: String,
    /// At the period's last backup, and the most at any backup in it.
    pub last_bytes: u64,
    pub max_bytes: u64,
    /// When the last figure was measured.
    pub last_measured: String,
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
    /// Slots of the sources' tiers that fell due in the period (version 2: since each source
    /// was first scheduled).
    pub backups_scheduled: u64,
    /// Version 2: slots with a successful backup; version 1: successful backups.
    pub backups_succeeded: u64,
    /// Version 2: slots whose backups all failed; version 1: failed backups.
    pub backups_failed: u64,
    /// Slots that passed with neither a success nor a failure (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups_missed: Option<u64>,
    /// The slot still open when the report was made, with no backup yet (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups_pending: Option<u64>,
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
    /// Slots that passed with no backup at all (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
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
    /// Drills the period calls for, in whole drills: the share rounded down, and at least one
    /// (version 2). A control that needs tested restores needs this many passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_period: Option<u64>,
    pub done: u64,
    pub passed: u64,
    pub failed: u64,
    pub list: Vec<DrillRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRow {
    pub evidence: u64,
    /// The site agent whose chain `evidence` is in; absent: the service's chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// The site agent whose chain `evidence` is in; absent: the service's chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// The rule its status follows (version 2; see docs/FORMAT.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
