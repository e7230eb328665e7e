//! Evidence on its way from a site to the centre.
//!
//! At the site: the agent's own chains are its outbox; `outbox_acks` says up to which
//! sequence the centre has acknowledged each tenant's chain, and only what lies beyond is sent
//! again. At the centre: `site_evidence` keeps each agent's chains as it signed them. A push is
//! taken in one write transaction: records already there with the same hash are acknowledged
//! again (a push repeated after a lost answer), the next ones must continue the chain, and a
//! gap or a different record under a known sequence is refused.

use super::db::{Begin, DbResult};
use super::evidence::StoredEvidence;
use super::{Catalog, Result};
use crate::args;

/// A record an agent pushed, with the previous record's hash its body names.
pub struct Pushed {
    pub stored: StoredEvidence,
    pub previous: Option<String>,
}

/// Why a push was not taken whole; records before the problem were taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The chain at the centre ends at `head`; the push went on from elsewhere.
    Gap { head: u64, got: u64 },
    /// A record under a sequence the centre has differs from it, or does not link to the
    /// record before it.
    Fork { sequence: u64 },
}

impl Refused {
    pub fn message(&self) -> String {
        match self {
            Refused::Gap { head, got } => format!(
                "the centre has this chain up to record {head}, so record {got} cannot come \
                 next; push from {}",
                head + 1
            ),
            Refused::Fork { sequence } => format!(
                "record {sequence} differs from the one the centre has, or does not link to \
                 the record before it: the chain forked"
            ),
        }
    }
}

/// Where a push left the centre's copy of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The last sequence the centre holds.
    pub head: u64,
    /// The records that were new.
    pub new: Vec<StoredEvidence>,
}

impl Catalog {
    /// Takes `records` (one tenant's, in sequence order) pushed by `agent`.
    pub fn receive_site_evidence(
        &mut self,
        agent: &str,
        tenant: &str,
        records: &[Pushed],
        now: &str,
    ) -> Result<(Taken, Option<Refused>)> {
        let db = &*self.db;
        let taken = (|| -> DbResult<_> {
            let tx = db.begin(Begin::Immediate)?;
            tx.serialise(&format!("site-evidence/{agent}/{tenant}"))?;
            let known = |sequence: u64| -> DbResult<Option<String>> {
                tx.query_opt(
                    "SELECT sha256 FROM site_evidence WHERE agent = ?1 AND tenant = ?2
                 AND sequence = ?3",
                    args![agent, tenant, sequence],
                )?
                .map(|r| r.get(0))
                .transpose()
            };
            let mut head: Option<(u64, String)> = tx
                .query_opt(
                    "SELECT sequence, sha256 FROM site_evidence WHERE agent = ?1 AND tenant = ?2
                 ORDER BY sequence DESC LIMIT 1",
                    args![agent, tenant],
                )?
                .map(|r| -> DbResult<_> { Ok((r.get(0)?, r.get(1)?)) })
                .transpose()?;
            let mut new = Vec::new();
            let mut refused = None;
            for p in records {
                let e = &p.stored;
                let at = head.as_ref().map_or(0, |(s, _)| *s);
                if e.sequence <= at {
                    if known(e.sequence)?.as_deref() != Some(e.sha256.as_str()) {
                        refused = Some(Refused::Fork {
                            sequence: e.sequence,
                        });
                        break;
                    }
                    continue;
                }
                if e.sequence != at + 1 {
                    refused = Some(Refused::Gap {
                        head: at,
                        got: e.sequence,
                    });
                    break;
                }
                if p.previous.as_deref() != head.as_ref().map(|(_, h)| h.as_str()) {
                    refused = Some(Refused::Fork {
                        sequence: e.sequence,
                    });
                    break;
                }
                tx.execute(
                    "INSERT INTO site_evidence
                 (agent, tenant, sequence, sha256, record, signature, object, received)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    args![
                        agent,
                        tenant,
                        e.sequence,
                        &e.sha256,
                        e.record.as_slice(),
                        &e.signature,
                        &e.object,
                        now
                    ],
                )?;
                head = Some((e.sequence, e.sha256.clone()));
                new.push(e.clone());
            }
            tx.commit()?;
            Ok((
                Taken {
                    head: head.map_or(0, |(s, _)| s),
                    new,
                },
                refused,
            ))
        })();
        self.sql(taken)
    }

    /// Records agents pushed for `tenant` (or every tenant): by agent, then sequence.
    pub fn site_evidence(&self, tenant: Option<&str>) -> Result<Vec<(String, StoredEvidence)>> {
        let rows = self.db.query_map(
            "SELECT agent, tenant, sequence, sha256, record, signature, object
             FROM site_evidence WHERE ?1 IS NULL OR tenant = ?1
             ORDER BY tenant, agent, sequence",
            args![tenant],
            |r| {
                Ok((
                    r.get(0)?,
                    StoredEvidence {
                        tenant: r.get(1)?,
                        sequence: r.get(2)?,
                        sha256: r.get(3)?,
                        record: r.get(4)?,
                        signature: r.get(5)?,
                        object: r.get(6)?,
                    },
                ))
            },
        );
        self.sql(rows)
    }

    /// The records of `tenant`'s chain the centre has not acknowledged (the outbox), oldest
    /// first, at most `limit`.
    pub fn outbox(&self, tenant: &str, limit: usize) -> Result<Vec<StoredEvidence>> {
        let acked = self.acknowledged(tenant)?;
        // Only what waits: the chain before it may be months of records.
        let rows = self.db.query_map(
            &format!(
                "SELECT {} FROM evidence WHERE tenant = ?1 AND sequence > ?2
                 ORDER BY sequence LIMIT ?3",
                super::evidence::COLUMNS
            ),
            args![tenant, acked, limit],
            super::evidence::stored,
        );
        self.sql(rows)
    }

    /// How many records of `tenant`'s chain wait for the centre.
    pub fn outbox_backlog(&self, tenant: &str) -> Result<u64> {
        let acked = self.acknowledged(tenant)?;
        let r = self.db.query_value(
            "SELECT COUNT(*) FROM evidence WHERE tenant = ?1 AND sequence > ?2",
            args![tenant, acked],
        );
        self.sql(r)
    }

    /// Up to which sequence the centre acknowledged `tenant`'s chain.
    pub fn acknowledged(&self, tenant: &str) -> Result<u64> {
        let r = self.db.query_opt(
            "SELECT sequence FROM outbox_acks WHERE tenant = ?1",
            args![tenant],
        );
        match self.sql(r)? {
            Some(row) => self.sql(row.get(0)),
            None => Ok(0),
        }
    }

    /// The centre acknowledged `tenant`'s chain up to `sequence` (never moves back).
    pub fn acknowledge(&mut self, tenant: &str, sequence: u64, now: &str) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO outbox_acks (tenant, sequence, acknowledged) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant) DO UPDATE SET sequence = CASE
               WHEN excluded.sequence > outbox_acks.sequence THEN excluded.sequence
               ELSE outbox_acks.sequence END,
             acknowledged = excluded.acknowledged",
            args![tenant, sequence, now],
        );
        self.sql(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(sequence: u64, sha: &str, previous: Option<&str>) -> Pushed {
        Pushed {
            stored: StoredEvidence {
                tenant: "acme".into(),
                sequence,
                sha256: sha.into(),
                record: sha.as_bytes().to_vec(),
                signature: "sig".into(),
                object: format!("object-{sha}"),
            },
            previous: previous.map(str::to_string),
        }
    }

    #[test]
    fn pushes_continue_the_chain_once_and_refuse_gaps_and_forks() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let now = "2026-11-25T12:00:00.000Z";
        let first = [pushed(1, "a", None), pushed(2, "b", Some("a"))];
        let (taken, refused) = c.receive_site_evidence("ag", "acme", &first, now).unwrap();
        assert_eq!((taken.head, taken.new.len(), refused), (2, 2, None));

        // The same push again (its answer was lost), and one going on: taken once each.
        let again = [pushed(2, "b", Some("a")), pushed(3, "c", Some("b"))];
        let (taken, refused) = c.receive_site_evidence("ag", "acme", &again, now).unwrap();
        assert_eq!((taken.head, taken.new.len(), refused), (3, 1, None));

        // A gap, a record that differs from the one kept, a broken link: refused.
        let gap = [pushed(5, "e", Some("d"))];
        let (taken, refused) = c.receive_site_evidence("ag", "acme", &gap, now).unwrap();
        assert_eq!(taken.head, 3);
        assert_eq!(refused, Some(Refused::Gap { head: 3, got: 5 }));
        let (_, refused) = c
            .receive_site_evidence("ag", "acme", &[pushed(2, "x", Some("a"))], now)
            .unwrap();
        assert_eq!(refused, Some(Refused::Fork { sequence: 2 }));
        let (_, refused) = c
            .receive_site_evidence("ag", "acme", &[pushed(4, "d", Some("x"))], now)
            .unwrap();
        assert_eq!(refused, Some(Refused::Fork { sequence: 4 }));

        // Another agent's chain of the same tenant is its own.
        let (taken, _) = c
            .receive_site_evidence("other", "acme", &[pushed(1, "z", None)], now)
            .unwrap();
        assert_eq!(taken.head, 1);
        let kept: Vec<(String, u64)> = c
            .site_evidence(Some("acme"))
            .unwrap()
            .into_iter()
            .map(|(a, e)| (a, e.sequence))
            .collect();
        assert_eq!(
            kept,
            [
                ("ag".into(), 1),
                ("ag".into(), 2),
                ("ag".into(), 3),
                ("other".into(), 1)
            ]
        );
    }

    #[test]
    fn the_outbox_is_what_the_centre_has_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        for n in 0..3 {
            c.append_evidence("acme", &mut |_, _| {
                Ok(crate::catalog::evidence::Built {
                    record: format!("r{n}").into_bytes(),
                    sha256: format!("s{n}"),
                    signature: "sig".into(),
                    object: format!("o{n}"),
                })
            })
            .unwrap();
        }
        assert_eq!(c.outbox_backlog("acme").unwrap(), 3);
        c.acknowledge("acme", 2, "now").unwrap();
        c.acknowledge("acme", 1, "later").unwrap();
        assert_eq!(c.acknowledged("acme").unwrap(), 2, "never moves back");
        let left: Vec<u64> = c
            .outbox("acme", 10)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(left, [3]);
        assert_eq!(c.outbox_backlog("acme").unwrap(), 1);
    }
}
