//! What each tenant's repository on each target holds, as last measured (after a backup or
//! a prune): for `/metrics`, the API and the dashboard.

use super::db::Begin;
use super::{Catalog, Result};
use crate::args;
use chrono::{DateTime, Utc};

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
        let r = self.db.execute(
            "INSERT INTO usage (tenant, target, bytes, measured) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant, target) DO UPDATE SET bytes = excluded.bytes,
             measured = excluded.measured",
            args![
                tenant,
                target,
                i64::try_from(bytes).unwrap_or(i64::MAX),
                crate::evidence::record::time(now)
            ],
        );
        self.sql(r).map(|_| ())
    }

    /// Forgets what the catalog caches of a repository that is gone (purged): its packs,
    /// chunks, snapshots, file metadata and lock dates. Its runs stay: they are history.
    pub fn forget_repository(&mut self, repo: &str) -> Result<()> {
        let db = &*self.db;
        let forgotten = (|| {
            let tx = db.begin(Begin::Deferred)?;
            for table in ["chunks", "packs", "snapshots", "file_cache", "locks"] {
                tx.execute(&format!("DELETE FROM {table} WHERE repo = ?1"), args![repo])?;
            }
            tx.commit()
        })();
        self.sql(forgotten)
    }

    /// Forgets a tenant's usage on a target (its repository there is gone).
    pub fn forget_usage(&mut self, tenant: &str, target: &str) -> Result<()> {
        let r = self.db.execute(
            "DELETE FROM usage WHERE tenant = ?1 AND target = ?2",
            args![tenant, target],
        );
        self.sql(r).map(|_| ())
    }

    /// Every tenant's usage (or one tenant's), by tenant and target.
    pub fn usage(&self, tenant: Option<&str>) -> Result<Vec<Usage>> {
        let rows = self.db.query_map(
            "SELECT tenant, target, bytes, measured FROM usage
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, target",
            args![tenant],
            |r| {
                Ok(Usage {
                    tenant: r.get(0)?,
                    target: r.get(1)?,
                    bytes: r.get::<i64>(2)?.max(0) as u64,
                    measured: r.get(3)?,
                })
            },
        );
        self.sql(rows)
    }
}
