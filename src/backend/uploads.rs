//! The multipart uploads this machine has under way, recorded in a local folder so that a
//! writer can abort those whose process ended without completing or aborting them (killed,
//! crashed): parts of an upload never completed are otherwise kept, and billed, by the store.
//!
//! One JSON file per upload in `$LIFEBOAT_DATA_DIR/uploads/` (else
//! `~/.local/share/lifeboat/uploads/`): the store, the key, the upload id and the writer (its
//! place and PID, see `writer`). A record of an earlier boot belongs to a process that is
//! certainly gone: the folder is on this machine.

use super::writer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The store's endpoint and bucket.
    pub store: String,
    pub key: String,
    /// Empty while the upload is being created (the store has not said its id yet).
    pub upload_id: String,
    /// `BOOT.NAMESPACE` of the writer.
    pub place: String,
    pub pid: u32,
    /// When the upload began (seconds since the epoch).
    pub started: u64,
}

/// The folder of the records: beside the catalog.
pub fn default_dir() -> Option<PathBuf> {
    let data = std::env::var_os("LIFEBOAT_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/lifeboat"))
        })?;
    Some(data.join("uploads"))
}

fn file(dir: &Path, store: &str, key: &str, upload_id: &str) -> PathBuf {
    let id = Sha256::digest(format!("{store}\n{key}\n{upload_id}").as_bytes());
    dir.join(format!("{}.json", hex::encode(&id[..16])))
}

impl Upload {
    /// This process's upload of `key` with `upload_id`, begun now.
    pub fn new(store: &str, key: &str, upload_id: &str) -> Upload {
        Upload {
            store: store.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            place: writer::here().map(|p| p.tag()).unwrap_or_default(),
            pid: std::process::id(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Whether its writer has ended: a process of an earlier boot, or of this one that is gone.
    pub fn writer_ended(&self) -> bool {
        let Some(place) = writer::Place::parse(&self.place) else {
            return false;
        };
        let Some(here) = writer::here() else {
            return false;
        };
        if place.boot != here.boot {
            return true;
        }
        let started = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.started);
        writer::ended(&place, self.pid, started)
    }

    /// Records it (best effort: without a record, only its age can ever remove it).
    pub fn record(&self, dir: &Path) {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
        if let Ok(bytes) = serde_json::to_vec(self) {
            let path = file(dir, &self.store, &self.key, &self.upload_id);
            let _ = std::fs::write(path, bytes);
        }
    }

    /// Forgets it: it was completed or aborted.
    pub fn forget(&self, dir: &Path) {
        let _ = std::fs::remove_file(file(dir, &self.store, &self.key, &self.upload_id));
    }
}

/// The recorded uploads into `store`.
pub fn recorded(dir: &Path, store: &str) -> Vec<Upload> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Upload>(&b).ok())
        .filter(|u| u.store == store)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_and_go_and_know_their_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mine = Upload::new("http://127.0.0.1:1/b", "repo/data/ab/ab12", "u1");
        mine.record(dir.path());
        let mut dead = Upload::new("http://127.0.0.1:1/b", "repo/data/cd/cd34", "u2");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        dead.pid = child.id();
        child.wait().unwrap();
        dead.record(dir.path());
        let mut old_boot = Upload::new("http://127.0.0.1:1/b", "repo/data/ef/ef56", "u3");
        old_boot.place = format!("{}.1", "0".repeat(32));
        old_boot.record(dir.path());
        Upload::new("http://other/b", "k", "u4").record(dir.path());

        let mut found = recorded(dir.path(), "http://127.0.0.1:1/b");
        found.sort_by(|a, b| a.upload_id.cmp(&b.upload_id));
        let ended: Vec<bool> = found.iter().map(Upload::writer_ended).collect();
        assert_eq!(ended, vec![false, true, true]);
        mine.forget(dir.path());
        assert_eq!(recorded(dir.path(), "http://127.0.0.1:1/b").len(), 2);
    }
}
