//! Evidence: every backup run and every drill written down as a record that nobody can quietly
//! edit, delete, reorder or insert.
//!
//! A record is canonical JSON (RFC 8785, the JSON Canonicalization Scheme): one exact byte
//! form for one content, so that anyone can hash and verify it. Each tenant's records form a
//! chain: record N holds its sequence number and the SHA-256 of record N-1's bytes. Each record
//! is signed by the service key with an OpenPGP detached signature, which stock `sqv` or
//! `gpg --verify` check. Records live in the catalog (which assigns the sequence) and are
//! copied into the repository (`evidence/`), so that a rebuilt catalog can recover them.
//!
//! `verify` checks a folder of exported records offline against the service certificate and
//! names the first bad record. A record removed from the end of a chain leaves no trace among
//! the records themselves; reports therefore state how many records they rest on and the hash
//! of the newest.

pub mod chain;
pub mod enrollment;
pub mod incident;
pub mod record;
pub mod redact;

pub use record::{Check, Environment, Event, Incident, Outcome, Record, RecordKind};
