//! Snapshot manifests: the commit point of a backup. Signed by the service key, not encrypted,
//! so that snapshots can be listed and their references checked without a secret key; the
//! tree they point to (file names, contents) lives encrypted in packs.

use super::ids::{ChunkId, PackId, SnapshotId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SNAPSHOT_FORMAT: &str = "lifeboat-snapshot";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Logical bytes of all files in the snapshot.
    pub bytes: u64,
    /// Bytes read from the source during this backup (unchanged files are not read).
    pub bytes_read: u64,
    /// Bytes of new packs written to the repository by this backup.
    pub bytes_added: u64,
    /// Plaintext bytes of the chunks this backup stored because the repository lacked them.
    #[serde(default)]
    pub bytes_new: u64,
    pub packs_added: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The repository this snapshot belongs to (its config id).
    pub repository: String,
    pub time: DateTime<Utc>,
    pub hostname: String,
    /// The absolute source paths as given.
    pub paths: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub parent: Option<SnapshotId>,
    /// The tree's chunks, in order; their plaintexts concatenated are the tree (see `tree`).
    pub tree: Vec<ChunkId>,
    /// Every pack holding a chunk this snapshot needs (tree and data), sorted.
    pub packs: Vec<PackId>,
    pub stats: SnapshotStats,
    /// The snapshot is kept at least until then; on a store with Object Lock, its objects are
    /// locked until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<DateTime<Utc>>,
    /// Facts about the source at backup time (a database's server version, size, dump
    /// duration).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// A manifest together with its id.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub manifest: Manifest,
}
