//! The outbox: evidence an agent wrote, on its way to the centre.
//!
//! An agent's daemon appends its records to the tenant's chain in the agent's own catalog,
//! signed with the agent's key, whether or not the centre answers. `push` sends what the
//! centre has not acknowledged, in order and in bounded batches, and moves the acknowledged
//! mark only once the centre says it holds them: at least once, and the centre takes a
//! repeated record again without a second copy. `take` is the centre's side: it checks each
//! record (the agent's signature, the agent's tenant, canonical form, the chain's links)
//! before keeping it.

use super::client::Centre;
use super::{Error, Result};
use crate::catalog::evidence::StoredEvidence;
use crate::catalog::outbox::Pushed;
use crate::catalog::sites::AgentRow;
use crate::catalog::Catalog;
use crate::evidence::record::{sha256_hex, Record};
use crate::repo::crypto::{self, PublicCert, SecretKey};
use serde::{Deserialize, Serialize};

pub const PATH: &str = "/api/v1/agent/evidence";

/// Most bytes of records in one push (well within the API's body limit).
const BATCH_BYTES: usize = 40 * 1024;

/// Records of one tenant's chain, in sequence order.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Push {
    pub tenant: String,
    pub records: Vec<PushedRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushedRecord {
    pub sequence: u64,
    /// The record's canonical JSON, as signed.
    pub record: String,
    /// The agent's detached, armored signature of it.
    pub signature: String,
}

/// What the centre holds of the chain after a push.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushAnswer {
    /// Every record up to this sequence is safe at the centre.
    pub acknowledged: u64,
    /// How many of the records pushed were new to it.
    pub new: usize,
}

/// Why the centre did not take a push whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotTaken {
    /// A record is not the agent's, not evidence, or not for its tenant: nothing was kept.
    Bad(String),
    /// The records do not continue the centre's copy of the chain; those before the problem
    /// were kept.
    Chain(String),
}

/// The centre's side: checks and keeps `push` from `agent`; `Ok(Err(_))` says why not.
pub fn take(
    catalog: &mut Catalog,
    agent: &AgentRow,
    push: &Push,
    now: &str,
) -> Result<std::result::Result<(PushAnswer, Vec<StoredEvidence>), NotTaken>> {
    if push.tenant != agent.tenant {
        return Ok(Err(NotTaken::Bad(format!(
            "agent {} works for tenant '{}', not '{}'",
            agent.id, agent.tenant, push.tenant
        ))));
    }
    let cert = PublicCert::from_bytes(agent.certificate.as_bytes())?;
    let mut records = Vec::new();
    for p in &push.records {
        match check(&cert, agent, p) {
            Ok(r) => records.push(r),
            Err(why) => return Ok(Err(NotTaken::Bad(format!("record {}: {why}", p.sequence)))),
        }
    }
    let (taken, refused) =
        catalog.receive_site_evidence(&agent.id, &agent.tenant, &records, now)?;
    if let Some(refused) = refused {
        return Ok(Err(NotTaken::Chain(refused.message())));
    }
    Ok(Ok((
        PushAnswer {
            acknowledged: taken.head,
            new: taken.new.len(),
        },
        taken.new,
    )))
}

/// One pushed record, checked.
fn check(
    cert: &PublicCert,
    agent: &AgentRow,
    p: &PushedRecord,
) -> std::result::Result<Pushed, String> {
    let bytes = p.record.as_bytes();
    let record = Record::parse(bytes)?;
    if record.tenant != agent.tenant || record.sequence != p.sequence {
        return Err(format!(
            "names tenant '{}' and sequence {}, not what it was pushed as",
            record.tenant, record.sequence
        ));
    }
    crypto::verify_detached(cert, bytes, p.signature.as_bytes())
        .map_err(|e| format!("not signed by agent {}: {e}", agent.id))?;
    let object = crate::evidence::chain::object_name(&record, &p.signature)?;
    Ok(Pushed {
        stored: StoredEvidence {
            tenant: record.tenant.clone(),
            sequence: p.sequence,
            sha256: sha256_hex(bytes),
            record: bytes.to_vec(),
            signature: p.signature.clone(),
            object,
        },
        previous: record.previous,
    })
}

/// The agent's side: pushes `tenant`'s unacknowledged records from the catalog in
/// `data_dir` to `centre`, batch by batch; returns how many the centre acknowledged.
pub fn push(
    data_dir: &std::path::Path,
    centre: &Centre,
    key: &SecretKey,
    tenant: &str,
    now: &dyn Fn() -> chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let mut sent = 0;
    loop {
        let mut catalog = Catalog::open(data_dir)?;
        let waiting = catalog.outbox(tenant, 200)?;
        let mut records = Vec::new();
        let mut bytes = 0;
        for e in waiting {
            bytes += e.record.len() + e.signature.len();
            if !records.is_empty() && bytes > BATCH_BYTES {
                break;
            }
            records.push(PushedRecord {
                sequence: e.sequence,
                record: String::from_utf8(e.record)
                    .map_err(|_| Error::Other(format!("record {} is not UTF-8", e.sequence)))?,
                signature: e.signature,
            });
        }
        let Some(last) = records.last().map(|r| r.sequence) else {
            return Ok(sent);
        };
        let first = records[0].sequence;
        let body = Push {
            tenant: tenant.into(),
            records,
        };
        let answer: PushAnswer = centre.call("POST", PATH, Some(&body), Some((key, now())))?;
        if answer.acknowledged < first {
            // The centre holds less than it should: it says what it needs in an error next
            // time; stop here rather than loop.
            return Err(Error::Refused(format!(
                "the centre acknowledged records up to {} only, after a push of {first}..{last}",
                answer.acknowledged
            )));
        }
        let acked = answer.acknowledged.min(last);
        catalog.acknowledge(tenant, acked, &crate::evidence::record::time(now()))?;
        sent += acked + 1 - first;
        if acked < last {
            return Ok(sent);
        }
    }
}
