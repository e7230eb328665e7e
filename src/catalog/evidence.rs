//! Evidence records in the catalog: each tenant's chain, in sequence order. The catalog hands
//! out the next sequence number and the previous record's hash inside one write transaction,
//! so two writers can never fork a chain.

use super::db::{Begin, DbResult, Row};
use super::{Catalog, Result};
use crate::args;

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

pub(super) fn stored(r: &Row) -> DbResult<StoredEvidence> {
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
        let tx = self.sql(self.db.begin(Begin::Immediate))?;
        // One append at a time per chain, across every instance of the service.
        self.sql(tx.serialise(&format!("evidence/{tenant}")))?;
        let head = tx.query_opt(
            "SELECT sequence, sha256 FROM evidence WHERE tenant = ?1
             ORDER BY sequence DESC LIMIT 1",
            args![tenant],
        );
        let head: Option<(u64, String)> = match self.sql(head)? {
            Some(r) => Some(self.sql(r.get(0).and_then(|s| Ok((s, r.get(1)?))))?),
            None => None,
        };
        let sequence = head.as_ref().map_or(1, |(s, _)| s + 1);
        let built = build(sequence, head.as_ref().map(|(_, h)| h.as_str())).map_err(|reason| {
            self.other(format!(
                "evidence record {sequence} of tenant {tenant}: {reason}"
            ))
        })?;
        let r = tx.execute(
            "INSERT INTO evidence (tenant, sequence, sha256, record, signature, object)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                tenant,
                sequence,
                &built.sha256,
                built.record.as_slice(),
                &built.signature,
                &built.object
            ],
        );
        self.sql(r)?;
        self.sql(tx.commit())?;
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
        let rows = self.db.query_map(
            &format!(
                "SELECT {COLUMNS} FROM evidence WHERE ?1 IS NULL OR tenant = ?1
                 ORDER BY tenant, sequence"
            ),
            args![tenant],
            stored,
        );
        self.sql(rows)
    }

    /// Puts back a record read from a repository (rebuilding the catalog). A record already
    /// there is left alone; one that differs from what is there is refused.
    pub fn restore_evidence(&mut self, e: &StoredEvidence) -> Result<bool> {
        let existing = self.db.query_opt(
            "SELECT sha256 FROM evidence WHERE tenant = ?1 AND sequence = ?2",
            args![&e.tenant, e.sequence],
        );
        let existing: Option<String> = match self.sql(existing)? {
            Some(r) => Some(self.sql(r.get(0))?),
            None => None,
        };
        match existing {
            Some(sha) if sha == e.sha256 => Ok(false),
            Some(sha) => Err(self.other(format!(
                "record {} of tenant {} in the repository hashes to {}, the catalog's to {sha}",
                e.sequence, e.tenant, e.sha256
            ))),
            None => {
                let r = self.db.execute(
                    "INSERT INTO evidence (tenant, sequence, sha256, record, signature, object)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    args![
                        &e.tenant,
                        e.sequence,
                        &e.sha256,
                        e.record.as_slice(),
                        &e.signature,
                        &e.object
                    ],
                );
                self.sql(r).map(|_| true)
            }
        }
    }
}
