//! What each tenant's repository on each target holds, as last measured (after a backup or
//! a prune): for `/metrics`, the API and the dashboard.

use super::{Catalog, Result};
use chrono::{DateTime, Utc};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub tenant: String,
    pub target: String,
    pub bytes: u64,
    /// When it was measured.
    pub measured: String,
}

impl Catalog {
    pub fn record_usage(
        &mut self,
        tenant: &str,
        target: &str,
        bytes: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO usage (tenant, target, bytes, measured) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant, target) DO UPDATE SET bytes = excluded.bytes,
             measured = excluded.measured",
            params![
                tenant,
                target,
                i64::try_from(bytes).unwrap_or(i64::MAX),
                crate::evidence::record::time(now)
            ],
        );
        self.sql(r).map(|_| ())
    }

    /// Every tenant's usage (or one tenant's), by tenant and target.
    pub fn usage(&self, tenant: Option<&str>) -> Result<Vec<Usage>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT tenant, target, bytes, measured FROM usage
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, target",
        ))?;
        let rows = stmt.query_map([tenant], |r| {
            Ok(Usage {
                tenant: r.get(0)?,
                target: r.get(1)?,
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
                measured: r.get(3)?,
            })
        });
        let rows = self.sql(rows)?;
        self.sql(rows.collect())
    }
}
