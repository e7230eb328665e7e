//! The evidence record and its canonical bytes.
//!
//! Numbers are integers (milliseconds, bytes): RFC 8785 writes them exactly as JavaScript does,
//! and integers below 2^53 have only one form. Times are RFC 3339 strings in UTC with
//! milliseconds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const FORMAT: &str = "lifeboat-evidence";

/// The `measured` key of what a tenant's repository on a target holds after a backup:
/// `stored_bytes:` and the target's name (reports sum a tenant's usage from it).
pub const STORED_BYTES: &str = "stored_bytes:";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Backup,
    Drill,
    /// A tenant's data erased (`tenant purge`): what was deleted, what is still kept.
    Erasure,
    /// A tenant's repositories re-encrypted to its current recipients (`tenant rekey`):
    /// one check per target, one per snapshot renamed (old id → new).
    Rekey,
    /// A site whose agents were silent for longer than `[service] site_silence`: an
    /// incident, with the last contact in its timeline.
    Site,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// The snapshot a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRef {
    pub id: String,
    pub time: String,
}

/// The contract's promises, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rpo_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rto_ms: Option<u64>,
}

/// One check of a drill (or of a backup run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// How it was checked: `sha256`, `sql`, `integrity_check`, `command`, `console`.
    pub method: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

/// Where a drill ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `dir`, `postgres`, `mariadb`, `sqlite`, `qemu`.
    pub kind: String,
    /// How it was kept apart: `network namespace`, `loopback only`, `no network device`, ….
    pub isolation: String,
    /// Whether it was torn down: `done`, or what went wrong.
    pub teardown: String,
}

/// A moment in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event: String,
    pub time: String,
}

/// A failure worth someone's attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// `critical`, `high`, `medium`, `low`.
    pub severity: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: String,
    pub version: u32,
    pub tenant: String,
    /// 1 for a tenant's first record, then one more for each.
    pub sequence: u64,
    /// The SHA-256 (hex) of the tenant's previous record; absent on the first.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<String>,
    pub kind: RecordKind,
    /// When the record was written.
    pub recorded: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contract: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tier: Option<String>,
    /// The tier's slot a scheduled backup ran for (absent for backups asked for at once, and
    /// in records written before slots were recorded). Reports count slots by it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub slot: Option<String>,
    /// The drill spec, for drills.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drill: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotRef>,
    /// How a drill's snapshot was chosen (`latest`, or `random among N …`), fixed before the
    /// restore began.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pick: Option<String>,
    pub objectives: Objectives,
    /// What was measured: `rto_ms`, `data_age_ms`, `bytes`, `files`, `duration_ms`, ….
    pub measured: BTreeMap<String, u64>,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<Environment>,
    pub timeline: Vec<Event>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub incident: Option<Incident>,
    pub lifeboat_version: String,
}

/// A time as records write it.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Record {
    /// A record with nothing measured yet; the chain fields are set when it is appended.
    pub fn new(kind: RecordKind, tenant: &str, recorded: chrono::DateTime<chrono::Utc>) -> Record {
        Record {
            format: FORMAT.into(),
            version: VERSION,
            tenant: tenant.into(),
            sequence: 0,
            previous: None,
            kind,
            recorded: time(recorded),
            contract: None,
            source: None,
            tier: None,
            slot: None,
            drill: None,
            snapshot: None,
            pick: None,
            objectives: Objectives::default(),
            measured: BTreeMap::new(),
            checks: Vec::new(),
            environment: None,
            timeline: Vec::new(),
            outcome: Outcome::Success,
            error: None,
            incident: None,
            lifeboat_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// The record's canonical bytes (RFC 8785): what is hashed and signed.
    pub fn canonical(&self) -> Result<Vec<u8>, String> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| e.to_string())
    }

    /// Parses a record, which must be in canonical form: bytes that are not are not evidence.
    pub fn parse(bytes: &[u8]) -> Result<Record, String> {
        let record: Record =
            serde_json::from_slice(bytes).map_err(|e| format!("not an evidence record: {e}"))?;
        if record.format != FORMAT {
            return Err(format!("format is '{}', not '{FORMAT}'", record.format));
        }
        if record.version != VERSION {
            return Err(format!(
                "version {} is not one this Lifeboat reads ({VERSION})",
                record.version
            ));
        }
        if record.canonical()? != bytes {
            return Err("not in canonical form (RFC 8785): it was edited or re-encoded".into());
        }
        Ok(record)
    }
}

/// SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_are_sorted_compact_and_round_trip() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut r = Record::new(RecordKind::Drill, "acme", t);
        r.sequence = 1;
        r.measured.insert("rto_ms".into(), 1500);
        r.checks.push(Check {
            name: "orders".into(),
            method: "sql".into(),
            expected: ">= 1000 \"rows\"".into(),
            actual: "20000".into(),
            passed: true,
        });
        let bytes = r.canonical().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"checks\":[{\"actual\":\"20000\""),
            "{text}"
        );
        assert!(!text.contains(' ') || text.contains(">= 1000"), "{text}");
        assert!(text.contains("\"recorded\":\"2026-11-23T10:00:00.000Z\""));
        assert_eq!(Record::parse(&bytes).unwrap(), r);
        // The same content pretty-printed is not evidence.
        let pretty = serde_json::to_vec_pretty(&r).unwrap();
        assert!(Record::parse(&pretty).unwrap_err().contains("canonical"));
    }
}
