//! The small storage trait every target implements, and its implementations.
//!
//! A backend stores opaque, immutable objects under names (`data/ab/ab12…`). It knows nothing of
//! OpenPGP, packs or snapshots; the `repo` layer gives objects their meaning.

mod local;
pub mod s3;
pub mod uploads;
pub mod writer;

pub use local::{LocalBackend, REPOSITORY_FOLDERS};
pub use s3::{S3Backend, S3Credentials, S3Options, S3Url};

use chrono::{DateTime, Utc};
use std::fmt;

/// What an object is; decides the folder it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Config,
    Data,
    Index,
    Snapshot,
    /// A writer at work (see `repo::session`): short-lived, never locked.
    Session,
    /// Packs prune found unreferenced and will delete (see `repo::session`): never locked.
    Mark,
    /// A snapshot that retention must keep (see `repo::hold`): never locked, so it can be
    /// released.
    Hold,
    /// A signed evidence record (see `evidence`), written once and never deleted by prune;
    /// not under Object Lock, so a bucket with a default retention is what keeps it.
    Evidence,
}

impl ObjectKind {
    /// The kinds that hold the repository's contents (not the coordination objects).
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::Config,
        ObjectKind::Index,
        ObjectKind::Snapshot,
        ObjectKind::Data,
    ];

    pub fn dir(self) -> &'static str {
        match self {
            ObjectKind::Config => "config",
            ObjectKind::Data => "data",
            ObjectKind::Index => "index",
            ObjectKind::Snapshot => "snapshots",
            ObjectKind::Session => "sessions",
            ObjectKind::Mark => "marks",
            ObjectKind::Hold => "holds",
            ObjectKind::Evidence => "evidence",
        }
    }

    /// Whether objects of this kind are the repository's contents, which Object Lock protects;
    /// sessions, marks and holds come and go and are never locked, nor is evidence (yet).
    pub fn kept(self) -> bool {
        !matches!(
            self,
            ObjectKind::Session | ObjectKind::Mark | ObjectKind::Hold | ObjectKind::Evidence
        )
    }

    /// Data objects are many: they are fanned out over 256 sub-folders by their first byte.
    fn fanned_out(self) -> bool {
        self == ObjectKind::Data
    }

    /// The object's path relative to the repository root.
    pub fn path(self, name: &str) -> String {
        if self.fanned_out() && name.len() >= 2 {
            format!("{}/{}/{}", self.dir(), &name[..2], name)
        } else {
            format!("{}/{}", self.dir(), name)
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object {} not found in {location}", kind.path(name))]
    NotFound {
        kind: ObjectKind,
        name: String,
        location: String,
    },
    #[error("{action} {what} in {location}: {source}")]
    Io {
        action: &'static str,
        what: String,
        location: String,
        #[source]
        source: std::io::Error,
    },
    /// The object is under Object Lock: it cannot be deleted before `until`.
    #[error("{kind}/{name} in {location} is locked until {until} (Object Lock); it can be deleted only after that")]
    Locked {
        kind: ObjectKind,
        name: String,
        location: String,
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The target has no room left: not something that passes by itself.
    #[error("the target {location} is full{} while {action} {what}: free space there, or forget old snapshots and run 'lifeboat prune'", free.map(|f| format!(" ({} free)", human_bytes(f))).unwrap_or_default())]
    Full {
        action: &'static str,
        what: String,
        location: String,
        free: Option<u64>,
    },
    /// A remote store refused or failed a request; `message` says what to check.
    #[error("{action} {what} in {location}: {message}")]
    Remote {
        action: &'static str,
        what: String,
        location: String,
        message: String,
        transient: bool,
    },
}

impl Error {
    /// Whether trying the same call again may succeed (a full disk or a busy server may clear up;
    /// a missing object will not appear).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::NotFound { .. } | Error::Locked { .. } | Error::Full { .. } => false,
            Error::Remote { transient, .. } => *transient,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Every byte a repository's objects take in its store (what MSPs bill a tenant by).
pub fn stored_bytes(backend: &dyn Backend) -> Result<u64> {
    let mut total = 0;
    for kind in [
        ObjectKind::Config,
        ObjectKind::Data,
        ObjectKind::Index,
        ObjectKind::Snapshot,
        ObjectKind::Session,
        ObjectKind::Mark,
        ObjectKind::Hold,
        ObjectKind::Evidence,
    ] {
        total += backend.list(kind)?.iter().map(|(_, n)| n).sum::<u64>();
    }
    Ok(total)
}

/// Bytes for people: `512 B`, `3.4 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Where a repository's objects live. Implementations must make `put` atomic and durable: after
/// it returns the object is there in full and survives a crash; before, it is absent.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    fn get(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>>;
    /// Stores an object. Storing a name that already exists is a no-op: names are content hashes.
    /// The data is handed over, so a store that sends it from another thread needs no copy.
    fn put(&self, kind: ObjectKind, name: &str, data: Vec<u8>) -> Result<()>;
    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool>;
    /// Names and sizes of every object of a kind, in no particular order.
    fn list(&self, kind: ObjectKind) -> Result<Vec<(String, u64)>>;
    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()>;
    /// How many uploads a backup should keep in flight at once.
    fn uploads(&self) -> usize {
        2
    }

    /// Whether the store can lock objects against deletion until a date (S3 Object Lock).
    fn object_lock(&self) -> bool {
        false
    }

    /// Objects stored from now on are locked until `until` (on stores with Object Lock).
    fn lock_new_objects_until(&self, _until: Option<DateTime<Utc>>) {}

    /// The date an object is locked until, if it is locked.
    fn locked_until(&self, _kind: ObjectKind, _name: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }

    /// Locks an object until `until`. Callers lengthen locks only (see `locked_until`):
    /// a compliance lock cannot be shortened.
    fn lock_until(&self, _kind: ObjectKind, _name: &str, _until: DateTime<Utc>) -> Result<()> {
        Ok(())
    }

    /// What interrupted writers left outside the objects: temporary files (`tmp/` of a
    /// folder), multipart uploads never completed (S3). Writers remove those of this host's
    /// ended writers at their first write; `check` lists the rest.
    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(Vec::new())
    }
}

/// Something a writer left behind outside the objects.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Leftover {
    /// `tmp/NAME`, or `upload KEY (ID)`.
    pub what: String,
    pub bytes: u64,
    /// How long ago it was last written, in seconds (none when the store does not say).
    pub age_seconds: Option<u64>,
    /// Whether its writer is known to have ended (it goes at the next write on this host).
    pub writer_ended: bool,
}
