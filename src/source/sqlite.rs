//! SQLite sources: a consistent copy of a database that applications keep writing, made with
//! SQLite's online backup API, then stored like a file under the database's own file name.
//!
//! The copy is taken in one backup step, inside one read transaction, so it is the database as
//! of one commit. In WAL mode writers carry on meanwhile; in rollback-journal mode they wait
//! for the copy (their busy timeout applies). A copy that cannot start because a writer holds
//! the database for longer than [`LOCKED_FOR`] fails rather than waiting forever. The copy goes
//! to a temporary file (`TMPDIR`, which needs room for the database) and is switched to
//! rollback-journal mode, so that the restored file is one self-contained file that opens
//! read-only; the source's journal mode is recorded with the snapshot.

use crate::repo::backup::StreamSource;
use crate::repo::Error;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the copy may wait for writers that hold the database locked.
pub const LOCKED_FOR: Duration = Duration::from_secs(300);

pub struct SqliteSource {
    pub path: PathBuf,
    details: BTreeMap<String, String>,
}

impl SqliteSource {
    pub fn new(path: PathBuf) -> SqliteSource {
        SqliteSource {
            path,
            details: BTreeMap::new(),
        }
    }

    /// The file name under which the copy is stored (the database's own).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database.sqlite".into())
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Source(format!(
            "{what} SQLite database {}: {e}",
            self.path.display()
        ))
    }

    /// Copies the database into `dest` through the backup API.
    fn copy_to(&mut self, dest: &Path) -> Result<(), Error> {
        if !self.path.is_file() {
            return Err(Error::Source(format!(
                "SQLite database {} does not exist or is not a file",
                self.path.display()
            )));
        }
        let source = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.error("cannot open", e))?;
        source
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| self.error("cannot open", e))?;
        let journal_mode: String = source
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.error("cannot read", e))?;
        let mut copy = Connection::open(dest).map_err(|e| self.error("cannot copy", e))?;
        {
            let backup =
                Backup::new(&source, &mut copy).map_err(|e| self.error("cannot copy", e))?;
            let started = Instant::now();
            loop {
                // -1: every page in one step, under one read transaction.
                match backup.step(-1).map_err(|e| self.error("copying", e))? {
                    StepResult::Done => break,
                    StepResult::More => continue,
                    StepResult::Busy | StepResult::Locked if started.elapsed() < LOCKED_FOR => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => {
                        return Err(self.error(
                            "copying",
                            format!(
                                "a writer kept it locked for {}s; try again when it is idle",
                                LOCKED_FOR.as_secs()
                            ),
                        ))
                    }
                }
            }
        }
        // One self-contained file: no -wal or -shm beside it when restored.
        let _: String = copy
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .map_err(|e| self.error("copying", e))?;
        let (pages, page_size, check): (u64, u64, String) = copy
            .query_row(
                "SELECT (SELECT page_count FROM pragma_page_count), \
                        (SELECT page_size FROM pragma_page_size), \
                        (SELECT group_concat(quick_check, '; ') FROM pragma_quick_check)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.error("checking the copy of", e))?;
        copy.close()
            .map_err(|(_, e)| self.error("closing the copy of", e))?;
        self.details.insert("kind".into(), "sqlite".into());
        self.details
            .insert("database".into(), self.path.display().to_string());
        self.details
            .insert("server_version".into(), rusqlite::version().to_string());
        self.details.insert(
            "database_size_bytes".into(),
            (pages * page_size).to_string(),
        );
        self.details.insert("journal_mode".into(), journal_mode);
        self.details.insert("quick_check".into(), check);
        Ok(())
    }
}

impl StreamSource for SqliteSource {
    fn describe(&self) -> Vec<String> {
        vec![format!("sqlite:{}", self.path.display())]
    }

    fn produce(
        &mut self,
        each: &mut dyn FnMut(&str, &mut dyn Read) -> crate::repo::Result<()>,
    ) -> crate::repo::Result<()> {
        let started = Instant::now();
        let temp = tempfile::Builder::new()
            .prefix(".lifeboat-sqlite-")
            .tempdir()
            .map_err(|e| self.error("no temporary folder to copy", e))?;
        let copy = temp.path().join(self.file_name());
        self.copy_to(&copy)?;
        self.details.insert(
            "dump_duration_ms".into(),
            started.elapsed().as_millis().to_string(),
        );
        let mut file =
            std::fs::File::open(&copy).map_err(|e| self.error("reading the copy of", e))?;
        each(&self.file_name(), &mut file)
    }

    fn details(&self) -> BTreeMap<String, String> {
        self.details.clone()
    }

    /// Writers change scattered pages: small chunks keep each copy's cost small.
    fn chunker(&self) -> Option<crate::repo::chunker::ChunkerParams> {
        Some(crate::repo::chunker::ChunkerParams::for_dumps())
    }
}
