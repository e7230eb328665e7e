//! Drills in the catalog: each one from the moment it is planned (by the schedule or a
//! customer's request) or started by hand, to its outcome. The snapshot a drill restores is
//! recorded before the restore begins, so a random pick cannot be re-rolled after the fact.

use super::db::{Arg, DbResult, Row};
use super::{Catalog, Result};
use crate::args;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DrillRow {
    pub id: i64,
    pub spec: String,
    pub tenant: String,
    pub contract: String,
    pub source: String,
    /// `scheduled`, `requested` or `manual`.
    pub reason: String,
    pub planned_for: DateTime<Utc>,
    /// `planned`, `running`, `done` or `cancelled`.
    pub state: String,
    pub requested_by: Option<String>,
    pub snapshot: Option<String>,
    pub pick: Option<String>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    /// The sequence number of its evidence record in the tenant's chain.
    pub evidence: Option<u64>,
    pub cancelled: Option<DateTime<Utc>>,
}

/// What identifies a new drill.
pub struct NewDrill<'a> {
    pub spec: &'a str,
    pub tenant: &'a str,
    pub contract: &'a str,
    pub source: &'a str,
    pub reason: &'a str,
    pub planned_for: DateTime<Utc>,
    pub requested_by: Option<&'a str>,
}

fn time(text: Option<String>) -> DbResult<Option<DateTime<Utc>>> {
    text.map(super::jobs::time).transpose()
}

fn row(r: &Row) -> DbResult<DrillRow> {
    Ok(DrillRow {
        id: r.get(0)?,
        spec: r.get(1)?,
        tenant: r.get(2)?,
        contract: r.get(3)?,
        source: r.get(4)?,
        reason: r.get(5)?,
        planned_for: time(Some(r.get(6)?))?.unwrap_or_default(),
        state: r.get(7)?,
        requested_by: r.get(8)?,
        snapshot: r.get(9)?,
        pick: r.get(10)?,
        started: time(r.get(11)?)?,
        finished: time(r.get(12)?)?,
        outcome: r.get(13)?,
        evidence: r.get(14)?,
        cancelled: time(r.get(15)?)?,
    })
}

const COLUMNS: &str = "id, spec, tenant, contract, source, reason, planned_for, state, \
                       requested_by, snapshot, pick, started, finished, outcome, evidence, cancelled";

impl Catalog {
    /// Plans a drill; returns its id.
    pub fn plan_drill(&mut self, d: &NewDrill<'_>) -> Result<i64> {
        let r = self.db.query_value(
            "INSERT INTO drills (spec, tenant, contract, source, reason, planned_for, state,
                                 requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'planned', ?7) RETURNING id",
            args![
                d.spec,
                d.tenant,
                d.contract,
                d.source,
                d.reason,
                d.planned_for.to_rfc3339(),
                d.requested_by
            ],
        );
        self.sql(r)
    }

    /// Marks a drill running with the snapshot it restores and how it was picked.
    pub fn start_drill(
        &mut self,
        id: i64,
        snapshot: &str,
        pick: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let r = self.db.execute(
            "UPDATE drills SET state = 'running', snapshot = ?2, pick = ?3, started = ?4
             WHERE id = ?1",
            args![id, snapshot, pick, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    pub fn finish_drill(
        &mut self,
        id: i64,
        outcome: &str,
        evidence: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let r = self.db.execute(
            "UPDATE drills SET state = 'done', outcome = ?2, evidence = ?3, finished = ?4
             WHERE id = ?1",
            args![id, outcome, evidence, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    pub fn cancel_drill(&mut self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let r = self.db.execute(
            "UPDATE drills SET state = 'cancelled', cancelled = ?2 WHERE id = ?1 AND state = 'planned'",
            args![id, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    pub fn drill(&self, id: i64) -> Result<Option<DrillRow>> {
        let r = self.db.query_opt(
            &format!("SELECT {COLUMNS} FROM drills WHERE id = ?1"),
            args![id],
        );
        self.sql(r)?.map(|r| self.sql(row(&r))).transpose()
    }

    fn select(&self, filter: &str, args: &[Arg]) -> Result<Vec<DrillRow>> {
        let rows = self.db.query_map(
            &format!("SELECT {COLUMNS} FROM drills WHERE {filter} ORDER BY planned_for, id"),
            args,
            row,
        );
        self.sql(rows)
    }

    /// Drills, oldest planned first: of one contract, or of all.
    pub fn drills(&self, contract: Option<&str>) -> Result<Vec<DrillRow>> {
        self.select("?1 IS NULL OR contract = ?1", args![contract])
    }

    /// Planned drills whose time has come.
    pub fn due_drills(&self, now: DateTime<Utc>) -> Result<Vec<DrillRow>> {
        let mut planned = self.select("state = 'planned'", &[])?;
        planned.retain(|d| d.planned_for <= now);
        Ok(planned)
    }

    /// The planned drill of `spec` for `planned_for`, if there is one.
    pub fn planned_drill(
        &self,
        spec: &str,
        planned_for: DateTime<Utc>,
    ) -> Result<Option<DrillRow>> {
        let planned = self.select("state = 'planned' AND spec = ?1", args![spec])?;
        Ok(planned.into_iter().find(|d| d.planned_for == planned_for))
    }
}
