//! Evidence records in the catalog: each tenant's chain, in sequence order. The catalog hands
//! out the next sequence number and the previous record's hash inside one write transaction,
//! so two writers can never fork a chain.

use super::{Catalog, Result};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// A stored record: its canonical bytes, their SHA-256, the signature, and the name of its
/// object in the repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    pub tenant: String,
    pub sequence: u64,
    pub sha256: String,
    pub record: Vec<u8>,
    pub signature: String,
    pub object: String,
}

/// What `append_evidence`'s builder returns for the sequence and previous hash it was given.
pub struct Built {
    pub record: Vec<u8>,
    pub sha256: String,
    pub signature: String,
    pub object: String,
}

/// Builds the record for a sequence number and the previous record's hash.
pub type Builder<'a> = dyn FnMut(u64, Option<&str>) -> std::result::Result<Built, String> + 'a;

pub(super) fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvidence> {
    Ok(StoredEvidence {
        tenant: r.get(0)?,
        sequence: r.get(1)?,
        sha256: r.get(2)?,
        record: r.get(3)?,
        signature: r.get(4)?,
        object: r.get(5)?,
    })
}

pub(super) const COLUMNS: &str = "tenant, sequence, sha256, record, signature, object";

impl Catalog {
    /// Appends the tenant's next record. `build` gets the sequence number and the previous
    /// record's SHA-256 and returns the signed record; it runs inside the write transaction.
    pub fn append_evidence(
        &mut self,
        tenant: &str,
        build: &mut Builder<'_>,
    ) -> Result<StoredEvidence> {
        let path = self.path.display().to_string();
        let wrap = |source| super::Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(wrap)?;
        let head: Option<(u64, String)> = tx
            .query_row(
                "SELECT sequence, sha256 FROM evidence WHERE tenant = ?1
                 ORDER BY sequence DESC LIMIT 1",
                params![tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(wrap)?;
        let sequence = head.as_ref().map_or(1, |(s, _)| s + 1);
        let built = build(sequence, head.as_ref().map(|(_, h)| h.as_str())).map_err(|reason| {
            super::Error::Other {
                path: path.clone(),
                reason: format!("evidence record {sequence} of tenant {tenant}: {reason}"),
            }
        })?;
        tx.execute(
            "INSERT INTO evidence (tenant, sequence, sha256, record, signature, object)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                tenant,
                sequence,
                built.sha256,
                built.record,
                built.signature,
                built.object
            ],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(StoredEvidence {
            tenant: tenant.into(),
            sequence,
            sha256: built.sha256,
            record: built.record,
            signature: built.signature,
            object: built.object,
        })
    }

    /// Records, by tenant and then sequence: of one tenant, or of all.
    pub fn evidence(&self, tenant: Option<&str>) -> Result<Vec<StoredEvidence>> {
        let mut stmt = self.sql(self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM evidence WHERE ?1 IS NULL OR tenant = ?1
             ORDER BY tenant, sequence"
        )))?;
        let rows = stmt.query_map(params![tenant], stored);
        let mut out = Vec::new();
        for row in self.sql(rows)? {
            out.push(self.sql(row)?);
        }
        Ok(out)
    }

    /// Puts back a record read from a repository (rebuilding the catalog). A record already
    /// there is left alone; one that differs from what is there is refused.
    pub fn restore_evidence(&mut self, e: &StoredEvidence) -> Result<bool> {
        let existing: Option<String> = self.sql(
            self.conn
                .query_row(
                    "SELECT sha256 FROM evidence WHERE tenant = ?1 AND sequence = ?2",
                    params![e.tenant, e.sequence],
                    |r| r.get(0),
                )
                .optional(),
        )?;
        match existing {
            Some(sha) if sha == e.sha256 => Ok(false),
            Some(sha) => Err(super::Error::Other {
                path: self.path.display().to_string(),
                reason: format!(
                    "record {} of tenant {} in the repository hashes to {}, the catalog's to {sha}",
                    e.sequence, e.tenant, e.sha256
                ),
            }),
            None => {
                let r = self.conn.execute(
                    "INSERT INTO evidence (tenant, sequence, sha256, record, signature, object)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        e.tenant,
                        e.sequence,
                        e.sha256,
                        e.record,
                        e.signature,
                        e.object
                    ],
                );
                self.sql(r).map(|_| true)
            }
        }
    }
}
