//! The local catalog (SQLite): a cache of what the repositories hold (chunks, packs, snapshots,
//! the file metadata of the last backup of each set of paths) plus the history of runs.
//!
//! It is only a cache of the repository: `lifeboat catalog rebuild` recreates it from the
//! repository and a recipient's key. Schema changes are migrations keyed by `user_version`.

pub mod db;
pub mod drills;
pub mod evidence;
pub mod jobs;
mod memory;
pub mod outbox;
mod schema;
pub mod site_jobs;
pub mod sites;
pub mod tokens;
pub mod usage;

use schema::MIGRATIONS;

/// Takes an exclusive lock file under the data directory (`repos/<id>/lock` for a repository,
/// `daemon.lock` for the daemon). `Ok(None)` when another process holds it. The lock lasts as
/// long as the returned file is open, and ends with the process however it ends.
pub fn lock_file(data_dir: &Path, relative: &Path) -> std::io::Result<Option<std::fs::File>> {
    let path = data_dir.join(relative);
    private_dir(data_dir)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Creates the data directory (and any parents missing) readable by this user only. A
/// directory that exists is left as it is: it may be one the administrator chose to share.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `path` readable and writable by this user only, or takes group and other access
/// away from it if it exists (SQLite gives its `-wal` and `-shm` files the same mode).
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            let mode = m.permissions().mode() & 0o700;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map(drop),
        Err(e) => Err(e),
    }
}

/// Where a repository's trusted service certificate is pinned.
pub fn pin_path(data_dir: &Path, repo_id: &str) -> PathBuf {
    data_dir.join("repos").join(repo_id).join("signer.cert")
}

/// Pins the service certificate of a repository on first use, atomically. `Ok(Some(pinned))`
/// when a different certificate is pinned already (the caller refuses).
pub fn pin_signer(
    data_dir: &Path,
    repo_id: &str,
    cert: &crate::repo::crypto::PublicCert,
) -> anyhow::Result<Option<crate::repo::crypto::PublicCert>> {
    let path = pin_path(data_dir, repo_id);
    if path.exists() {
        let pinned = crate::repo::crypto::PublicCert::load(&path)?;
        return Ok((pinned.fingerprint() != cert.fingerprint()).then_some(pinned));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(data_dir)?;
    std::fs::create_dir_all(dir)?;
    crate::files::write_atomically(&path, cert.armored()?.as_bytes(), None)?;
    Ok(None)
}

/// The lock a repository's writers (backup, forget, prune, daemon jobs) hold.
pub fn lock_repository(data_dir: &Path, repo_id: &str) -> std::io::Result<Option<std::fs::File>> {
    lock_file(data_dir, &Path::new("repos").join(repo_id).join("lock"))
}

use crate::args;
use crate::repo::backup::{BackupCache, FileCache};
use crate::repo::ids::{Hash, IndexId, PackId, SnapshotId};
use crate::repo::index::PackInfo;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree;
use crate::repo::{self, Repository};
use db::{Begin, Db, DbResult};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: db::DbError,
    },
    #[error("catalog {path}: {reason}")]
    Other { path: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct Catalog {
    db: Box<dyn Db>,
    /// Where the catalog is, for messages: a file, or a PostgreSQL address without password.
    name: String,
}

/// Where the catalog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `catalog.sqlite` in this data directory.
    Embedded(PathBuf),
    /// A PostgreSQL database that instances of the service share (`[service] catalog`).
    Postgres(String),
}

impl Place {
    /// The catalog of a service with data directory `data_dir` and `[service] catalog` `url`.
    pub fn new(data_dir: &Path, url: Option<&str>) -> Place {
        match url {
            Some(url) => Place::Postgres(url.to_string()),
            None => Place::Embedded(data_dir.to_path_buf()),
        }
    }

    /// The catalog `config` names, with data directory `data_dir`.
    pub fn of(data_dir: &Path, config: &crate::config::Config) -> Place {
        Place::new(data_dir, config.service.catalog_url())
    }

    pub fn open(&self) -> Result<Catalog> {
        match self {
            Place::Embedded(dir) => Catalog::open(dir),
            Place::Postgres(url) => Catalog::connect(url),
        }
    }
}

/// The catalog seen from one repository.
pub struct RepoCatalog<'a> {
    catalog: &'a mut Catalog,
    repo: String,
}

impl Catalog {
    /// Run records, oldest first: of one repository, or of all.
    pub fn runs(&self, repo: Option<&str>) -> Result<Vec<RunRecord>> {
        let rows = self.db.query_map(
            "SELECT id, repo, kind, source, tier, scheduled, job, started, finished, result,
                    snapshot, files, bytes_read, bytes_added, error, summary, bytes_freed
             FROM runs WHERE ?1 IS NULL OR repo = ?1 ORDER BY id",
            args![repo],
            |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    repo: r.get(1)?,
                    kind: r.get(2)?,
                    source: r.get(3)?,
                    tier: r.get(4)?,
                    scheduled: r.get(5)?,
                    job: r.get(6)?,
                    started: r.get(7)?,
                    finished: r.get(8)?,
                    result: r.get(9)?,
                    snapshot: r.get(10)?,
                    files: r.get(11)?,
                    bytes_read: r.get(12)?,
                    bytes_added: r.get(13)?,
                    error: r.get(14)?,
                    summary: r.get(15)?,
                    bytes_freed: r.get(16)?,
                })
            },
        );
        self.sql(rows)
    }

    /// Snapshots known to the catalog (of every repository), oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let rows = self.db.query_map(
            "SELECT repo, id, time, tags, stats FROM snapshots ORDER BY time, id",
            &[],
            |r| {
                let tags: String = r.get(3)?;
                let stats: String = r.get(4)?;
                Ok(SnapshotRow {
                    repo: r.get(0)?,
                    id: r.get(1)?,
                    time: r.get(2)?,
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                    stats: serde_json::from_str(&stats).unwrap_or_default(),
                })
            },
        );
        self.sql(rows)
    }

    /// Opens the embedded catalog: `catalog.sqlite` in the data directory.
    pub fn open(data_dir: &Path) -> Result<Catalog> {
        let path = data_dir.join("catalog.sqlite");
        let other = |reason: String| Error::Other {
            path: path.display().to_string(),
            reason,
        };
        private_dir(data_dir).map_err(|e| {
            other(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        // Set-up (the switch to WAL, the migrations) is one process at a time: SQLite answers
        // "database is locked" at once, without waiting, to two connections changing the journal
        // mode together. The lock ends when set-up does.
        let setup_lock = data_dir.join("catalog.setup-lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&setup_lock)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|e| other(format!("cannot lock {}: {e}", setup_lock.display())))?;
        private_file(&path).map_err(|e| other(format!("cannot make it private: {e}")))?;
        let name = path.display().to_string();
        let catalog = Catalog::set_up(db::sqlite::Sqlite::open(&path), name)?;
        drop(lock);
        Ok(catalog)
    }

    /// The catalog on a connection just made (or why it could not be), its schema brought
    /// up to date.
    fn set_up<D: Db + 'static>(db: DbResult<D>, name: String) -> Result<Catalog> {
        let db = db.map_err(|source| Error::Sql {
            path: name.clone(),
            source,
        })?;
        let mut catalog = Catalog {
            db: Box::new(db),
            name,
        };
        catalog.setup()?;
        Ok(catalog)
    }

    /// Connects to a PostgreSQL catalog (`postgres://user@host:port/database`) and
    /// brings its schema up to date.
    pub fn connect(url: &str) -> Result<Catalog> {
        let name = db::postgres::display_url(url);
        Catalog::set_up(db::postgres::Postgres::connect(url), name)
    }

    /// Runs `f` while no other instance of the service sharing this catalog runs anything
    /// under `key` (creating a tenant's repository on a target, say). On the embedded catalog
    /// only one daemon runs, so `f` just runs.
    pub fn exclusive<T>(&self, key: &str, f: impl FnOnce() -> T) -> Result<T> {
        if self.db.engine() == db::Engine::Sqlite {
            return Ok(f());
        }
        let tx = self.sql(self.db.begin(Begin::Deferred))?;
        self.sql(tx.serialise(key))?;
        let out = f();
        self.sql(tx.commit())?;
        Ok(out)
    }

    /// Keeps the embedded catalog's write-ahead log from growing without end. SQLite empties
    /// the log only when no reader uses it, which under a steady stream of short reads (many
    /// agents' polls) is never; this waits for the readers of the moment to finish, copies
    /// the log into the database and truncates it. Nothing to do for PostgreSQL.
    pub fn checkpoint(&self) -> Result<()> {
        let r = self.db.checkpoint();
        self.sql(r)
    }

    /// Which engine this catalog runs on.
    pub fn engine(&self) -> db::Engine {
        self.db.engine()
    }

    fn sql<T>(&self, r: DbResult<T>) -> Result<T> {
        r.map_err(|source| Error::Sql {
            path: self.name.clone(),
            source,
        })
    }

    fn other(&self, reason: impl Into<String>) -> Error {
        Error::Other {
            path: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Sets the connection up and brings the schema to this version. Two processes may open a
    /// new catalog at once (the service and a `token create` beside it, or two instances of
    /// the service on one PostgreSQL): each migration runs in a transaction that holds the
    /// writer's lock before the version is read, so only one of them applies it.
    fn setup(&mut self) -> Result<()> {
        let engine = self.db.engine();
        // Up to date already (the common case): no lock to take. A catalog not set up yet
        // answers with an error here, and is set up below.
        if self.db.schema_version().ok() == Some(MIGRATIONS.len()) {
            return Ok(());
        }
        loop {
            let tx = self.sql(self.db.begin_schema())?;
            let version = self.sql(tx.schema_version())?;
            if version > MIGRATIONS.len() {
                return Err(self.other(format!(
                    "schema version {version} is newer than this Lifeboat knows ({}); upgrade Lifeboat",
                    MIGRATIONS.len()
                )));
            }
            let Some(migration) = MIGRATIONS.get(version) else {
                return Ok(());
            };
            self.sql(tx.batch(&db::ddl(migration, engine)))?;
            self.sql(tx.set_schema_version(version + 1))?;
            self.sql(tx.commit())?;
        }
    }

    pub fn for_repo(&mut self, repo: &Repository) -> Result<RepoCatalog<'_>> {
        let id = repo.config.id.clone();
        let location = repo.backend().location();
        let now = chrono::Utc::now().to_rfc3339();
        let r = self.db.execute(
            "INSERT INTO repositories (id, location, first_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET location = excluded.location",
            args![&id, location, now],
        );
        self.sql(r)?;
        Ok(RepoCatalog {
            catalog: self,
            repo: id,
        })
    }
}

fn blob(h: &Hash) -> &[u8] {
    &h.0
}

fn hash_from(v: Vec<u8>) -> DbResult<Hash> {
    <[u8; 32]>::try_from(v.as_slice())
        .map(Hash)
        .map_err(|_| db::DbError::Decode {
            column: 0,
            reason: format!("expected a 32-byte hash, found {} bytes", v.len()),
        })
}

/// A snapshot as the catalog lists it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SnapshotRow {
    pub repo: String,
    pub id: String,
    pub time: String,
    pub tags: std::collections::BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub stats: serde_json::Value,
}

/// A row of the run history.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: i64,
    pub repo: String,
    pub kind: String,
    /// For runs of the daemon: the source, its tier, the slot, and the job.
    pub source: Option<String>,
    pub tier: Option<String>,
    pub scheduled: Option<String>,
    pub job: Option<i64>,
    pub started: String,
    pub finished: Option<String>,
    pub result: String,
    pub snapshot: Option<String>,
    pub files: Option<i64>,
    pub bytes_read: Option<i64>,
    pub bytes_added: Option<i64>,
    pub error: Option<String>,
    /// What a run that makes no snapshot did ("forgot 3 snapshots", "deleted 12 packs …").
    pub summary: Option<String>,
    pub bytes_freed: Option<i64>,
}

impl RepoCatalog<'_> {
    fn sql<T>(&self, r: DbResult<T>) -> Result<T> {
        self.catalog.sql(r)
    }

    fn db(&self) -> &dyn Db {
        &*self.catalog.db
    }

    /// Starts a run record; returns its id.
    pub fn start_run(&mut self, kind: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64> {
        let r = self.db().query_value(
            "INSERT INTO runs (repo, kind, started, result) VALUES (?1, ?2, ?3, 'running')
             RETURNING id",
            args![&self.repo, kind, now.to_rfc3339()],
        );
        self.sql(r)
    }

    pub fn finish_run(
        &mut self,
        run: i64,
        outcome: std::result::Result<&Snapshot, &str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let now = now.to_rfc3339();
        let r = match outcome {
            Ok(s) => self.db().execute(
                "UPDATE runs SET finished = ?2, result = 'success', snapshot = ?3, files = ?4,
                 bytes_read = ?5, bytes_added = ?6 WHERE id = ?1",
                args![
                    run,
                    &now,
                    s.id.to_hex(),
                    s.manifest.stats.files as i64,
                    s.manifest.stats.bytes_read as i64,
                    s.manifest.stats.bytes_added as i64
                ],
            ),
            Err(error) => self.db().execute(
                "UPDATE runs SET finished = ?2, result = 'failure', error = ?3 WHERE id = ?1",
                args![run, &now, error],
            ),
        };
        self.sql(r).map(|_| ())
    }

    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.catalog.runs(Some(&self.repo))
    }

    /// Ends a run that makes no snapshot (forget, prune): what it did, or why it failed.
    pub fn finish_upkeep(
        &mut self,
        run: i64,
        outcome: std::result::Result<&str, &str>,
        bytes_freed: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let now = now.to_rfc3339();
        let r = match outcome {
            Ok(summary) => self.db().execute(
                "UPDATE runs SET finished = ?2, result = 'success', summary = ?3, bytes_freed = ?4
                 WHERE id = ?1",
                args![run, &now, summary, bytes_freed as i64],
            ),
            Err(error) => self.db().execute(
                "UPDATE runs SET finished = ?2, result = 'failure', error = ?3 WHERE id = ?1",
                args![run, &now, error],
            ),
        };
        self.sql(r).map(|_| ())
    }

    /// Marks a run as the daemon's run of `source` (tier, slot, job).
    pub fn tag_run(
        &mut self,
        run: i64,
        source: &str,
        tier: &str,
        scheduled: chrono::DateTime<chrono::Utc>,
        job: i64,
    ) -> Result<()> {
        let r = self.db().execute(
            "UPDATE runs SET source = ?2, tier = ?3, scheduled = ?4, job = ?5 WHERE id = ?1",
            args![run, source, tier, scheduled.to_rfc3339(), job],
        );
        self.sql(r).map(|_| ())
    }

    /// Notes the target backup run `run` writes to.
    pub fn run_target(&mut self, run: i64, target: &str) -> Result<()> {
        let r = self.db().execute(
            "UPDATE runs SET target = ?2 WHERE id = ?1",
            args![run, target],
        );
        self.sql(r).map(|_| ())
    }

    pub fn record_snapshot(&mut self, s: &Snapshot) -> Result<()> {
        let m = &s.manifest;
        let json = |v: &dyn erased::Json| v.to_json();
        let r = self.db().execute(
            "INSERT INTO snapshots (repo, id, time, hostname, paths, tags, stats)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (repo, id) DO UPDATE SET time = excluded.time,
             hostname = excluded.hostname, paths = excluded.paths, tags = excluded.tags,
             stats = excluded.stats",
            args![
                &self.repo,
                s.id.to_hex(),
                m.time.to_rfc3339(),
                &m.hostname,
                json(&m.paths),
                json(&m.tags),
                json(&m.stats)
            ],
        );
        self.sql(r).map(|_| ())
    }

    pub fn snapshot_count(&self) -> Result<u64> {
        let r = self.db().query_value(
            "SELECT count(*) FROM snapshots WHERE repo = ?1",
            args![&self.repo],
        );
        self.sql(r)
    }

    pub fn chunk_count(&self) -> Result<u64> {
        let r = self.db().query_value(
            "SELECT count(DISTINCT id) FROM chunks WHERE repo = ?1",
            args![&self.repo],
        );
        self.sql(r)
    }

    pub fn save_file_cache(
        &mut self,
        paths_key: &str,
        snapshot: &SnapshotId,
        files: &FileCache,
    ) -> Result<()> {
        let mut text = String::new();
        let mut keys: Vec<&Vec<u8>> = files.keys().collect();
        keys.sort();
        for k in keys {
            let f = &files[k];
            tree::escape(k, &mut text);
            text.push_str(&format!(
                " {} {} {} {} ",
                f.size, f.mtime_ns, f.ctime_ns, f.ino
            ));
            tree::format_chunks(&f.chunks, &mut text);
            text.push('\n');
        }
        let data = zstd::bulk::compress(text.as_bytes(), 3).map_err(|e| Error::Other {
            path: self.catalog.name.clone(),
            reason: format!("compressing the file cache: {e}"),
        })?;
        let r = self.db().execute(
            "INSERT INTO file_cache (repo, paths_key, snapshot, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repo, paths_key) DO UPDATE SET snapshot = excluded.snapshot,
             data = excluded.data",
            args![&self.repo, paths_key, snapshot.to_hex(), data],
        );
        self.sql(r).map(|_| ())
    }

    /// Forgets packs that were deleted from the repository, and their chunks.
    pub fn remove_packs(&mut self, packs: &[PackId]) -> Result<()> {
        let tx = self.sql(self.db().begin(Begin::Deferred))?;
        for p in packs {
            for sql in [
                "DELETE FROM chunks WHERE repo = ?1 AND pack = ?2",
                "DELETE FROM packs WHERE repo = ?1 AND id = ?2",
            ] {
                self.sql(tx.execute(sql, args![&self.repo, blob(&p.0)]))?;
            }
        }
        self.sql(tx.commit())
    }

    /// Which packs each index covers, as far as this catalog knows.
    pub fn index_coverage(&self) -> Result<HashMap<IndexId, Vec<PackId>>> {
        let rows = self.db().query_map(
            "SELECT index_id, id FROM packs WHERE repo = ?1 AND index_id IS NOT NULL",
            args![&self.repo],
            |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<Vec<u8>>(1)?)),
        );
        let mut out: HashMap<IndexId, Vec<PackId>> = HashMap::new();
        for (index, pack) in self.sql(rows)? {
            if let (Ok(i), Ok(p)) = (
                <[u8; 32]>::try_from(index.as_slice()),
                <[u8; 32]>::try_from(pack.as_slice()),
            ) {
                out.entry(IndexId(Hash(i)))
                    .or_default()
                    .push(PackId(Hash(p)));
            }
        }
        Ok(out)
    }

    /// Forgets a snapshot whose manifest was deleted.
    pub fn remove_snapshot(&mut self, id: &SnapshotId) -> Result<()> {
        let r = self.db().execute(
            "DELETE FROM snapshots WHERE repo = ?1 AND id = ?2",
            args![&self.repo, id.to_hex()],
        );
        self.sql(r).map(|_| ())
    }

    /// Forgets everything known about the repository (before a rebuild).
    pub fn clear(&mut self) -> Result<()> {
        for table in ["packs", "chunks", "snapshots", "file_cache", "locks"] {
            let r = self.db().execute(
                &format!("DELETE FROM {table} WHERE repo = ?1"),
                args![&self.repo],
            );
            self.sql(r)?;
        }
        Ok(())
    }

    /// Records packs known from an index.
    pub fn record_indexed(&mut self, index: &IndexId, packs: &[PackInfo]) -> Result<()> {
        for p in packs {
            self.record_pack(p).map_err(|e| Error::Other {
                path: self.catalog.name.clone(),
                reason: e.to_string(),
            })?;
        }
        let ids: Vec<PackId> = packs.iter().map(|p| p.id).collect();
        BackupCache::record_index(self, index, &ids).map_err(|e| Error::Other {
            path: self.catalog.name.clone(),
            reason: e.to_string(),
        })
    }
}

/// What a rebuild found.
#[derive(Debug, Default)]
pub struct RebuildSummary {
    pub snapshots: u64,
    pub indexes: u64,
    pub packs: u64,
    pub chunks: u64,
}

impl RepoCatalog<'_> {
    /// Recreates this repository's part of the catalog from the repository alone. Run history
    /// is kept; the file cache is not recoverable (the next backup reads every file once).
    pub fn rebuild(
        &mut self,
        repo: &Repository,
        key: &crate::repo::crypto::SecretKey,
    ) -> repo::Result<RebuildSummary> {
        repo.check_key(key)?;
        let mut summary = RebuildSummary::default();
        // Read everything first: a failure leaves the old catalog untouched.
        // Indexes may still list packs that prune removed: only packs that exist are recorded,
        // so no backup deduplicates against data that is gone.
        let stored: std::collections::HashSet<String> = repo
            .backend()
            .list(crate::backend::ObjectKind::Data)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut indexes = Vec::new();
        for id in repo.index_ids()? {
            let mut packs = repo.load_index(key, &id)?;
            packs.retain(|p| stored.contains(&p.id.to_hex()));
            indexes.push((id, packs));
        }
        let (snapshots, bad) = repo.snapshots()?;
        if let Some(e) = bad.into_iter().next() {
            return Err(e);
        }
        self.clear().map_err(to_repo)?;
        for (id, packs) in &indexes {
            summary.indexes += 1;
            summary.packs += packs.len() as u64;
            summary.chunks += packs.iter().map(|p| p.entries.len() as u64).sum::<u64>();
            self.record_indexed(id, packs).map_err(to_repo)?;
        }
        for s in &snapshots {
            self.record_snapshot(s).map_err(to_repo)?;
            summary.snapshots += 1;
        }
        Ok(summary)
    }
}

mod erased {
    /// Serialises a value to JSON text for a catalog column.
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn to_repo(e: Error) -> repo::Error {
    repo::Error::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service and a command beside it open a new catalog at the same moment: both must
    /// find it at the current schema, neither may apply a migration the other already applied.
    #[test]
    fn processes_opening_a_new_catalog_at_once_all_succeed() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|_| {
                    let (dir, start) = (dir.path().to_path_buf(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Catalog::open(&dir).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let catalog = Catalog::open(dir.path()).unwrap();
            let version = catalog.db.schema_version().unwrap();
            assert_eq!(version, MIGRATIONS.len());
        }
    }

    #[test]
    fn a_checkpoint_empties_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(dir.path()).unwrap();
        // A reader that stays open meanwhile (as the API's kept connections do) does not
        // hold the checkpoint up once it is between statements.
        let reader = Catalog::open(dir.path()).unwrap();
        let wal = dir.path().join("catalog.sqlite-wal");
        for i in 0..200 {
            catalog
                .enqueue_now(&format!("source-{i}"), "now", chrono::Utc::now())
                .unwrap();
            assert!(reader.jobs(1).is_ok());
        }
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        catalog.checkpoint().unwrap();
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        assert_eq!(reader.jobs(1000).unwrap().len(), 200);
    }
}
