//! Backup of file trees into a repository.
//!
//! The walking thread reads, chunks and hashes; new chunks go through a bounded channel to one
//! packer per core, which compresses, packs, encrypts and stores them. Memory is bounded by the
//! channel and the pack size, whatever the file sizes. Order of writes: packs, then an index for
//! them, then the signed manifest, which is the commit point; a crash before it leaves only
//! unreferenced packs, and the cache remembers them so the next backup reuses them.

use super::chunker::{is_zero, ChunkerParams};
use super::crypto::SecretKey;
use super::ids::{ChunkId, IndexId, PackId, SnapshotId};
use super::index::PackInfo;
use super::lock::{ensure_locked, lock_target, LockMemory, LockStats};
use super::pack::PackBuilder;
use super::session::{Session, SessionKind, Timing};
use super::snapshot::{Manifest, Snapshot, SnapshotStats, SNAPSHOT_FORMAT};
use super::tree::{ChunkRef, Entry, EntryKind};
use super::{Error, Repository, Result};
use crate::backend::ObjectKind;
use crate::progress::Progress;
use crate::source::fs::{self as fs_source, FsEntry, Warning};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What the backup needs from the local catalog: which chunks the repository already has, and
/// what the files looked like last time. Implemented by `catalog::Catalog`.
pub trait BackupCache: LockMemory {
    /// The pack holding `chunk`, if the repository is known to have it.
    fn chunk_pack(&mut self, chunk: &ChunkId) -> Result<Option<PackId>>;
    /// A pack is stored durably (not yet in an index).
    fn record_pack(&mut self, pack: &PackInfo) -> Result<()>;
    /// Stored packs that no index covers yet (from this run or from one cut short).
    fn unindexed_packs(&mut self) -> Result<Vec<PackInfo>>;
    fn record_index(&mut self, index: &IndexId, packs: &[PackId]) -> Result<()>;
    /// The last snapshot of the same paths, with its files' metadata and chunks.
    fn file_cache(&mut self, paths_key: &str) -> Result<(Option<SnapshotId>, FileCache)>;
    /// The indexes that cover these packs.
    fn indexes_of(&mut self, packs: &[PackId]) -> Result<Vec<IndexId>>;
    /// Packs found missing from the repository (a prune elsewhere deleted them): never
    /// deduplicate against them again.
    fn forget_missing(&mut self, packs: &[PackId]) -> Result<()>;
}

/// What a file looked like when it was last backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub chunks: Vec<ChunkRef>,
}

pub type FileCache = HashMap<Vec<u8>, CachedFile>;

pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub tags: BTreeMap<String, String>,
    pub hostname: String,
    /// Packer threads; 0 means one per core.
    pub threads: usize,
    /// Keep the snapshot until then (and lock its objects, on a store with Object Lock).
    pub retain_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The snapshot's time (default: now; the daemon passes its clock's time).
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

/// A source that is not a file tree: named byte streams such as database dumps, each stored
/// as one file of the snapshot, straight from the producer (no temporary copy).
pub trait StreamSource {
    /// What is backed up, without secrets (`postgres://db1:5432/erp`): the manifest's paths.
    fn describe(&self) -> Vec<String>;
    /// Produces the streams in order, handing each to `each` with its path in the snapshot.
    /// Fails when the producer fails (a dump tool's exit status, with its own message).
    fn produce(
        &mut self,
        each: &mut dyn FnMut(&str, &mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()>;
    /// Facts learnt while producing (server version, database size, dump duration), recorded
    /// in the manifest.
    fn details(&self) -> BTreeMap<String, String>;
    /// How to chunk the streams, if not as the repository chunks files. Database dumps change
    /// in many small places between runs (one row here, one there), so smaller chunks keep
    /// what each dump adds small; any chunking reads back the same way.
    fn chunker(&self) -> Option<ChunkerParams> {
        None
    }
}

/// What a backup reads.
enum Content<'a> {
    Files,
    Streams(&'a mut dyn StreamSource),
}

pub struct BackupOutcome {
    pub snapshot: Snapshot,
    pub paths_key: String,
    /// The file cache to remember for the next backup of the same paths.
    pub file_cache: FileCache,
    pub warnings: Vec<Warning>,
    pub locks: LockStats,
}

impl BackupOutcome {
    /// Whether some source entries could not be read (the snapshot lacks them).
    pub fn incomplete(&self) -> bool {
        self.warnings
            .iter()
            .any(|w| matches!(w, Warning::Unreadable(_)))
    }
}

fn ns(sec: i64, nsec: i64) -> i128 {
    i128::from(sec) * 1_000_000_000 + i128::from(nsec)
}

type Job = (ChunkId, Vec<u8>);

/// The packers: threads that turn chunks into stored packs.
struct Packers {
    jobs: Option<Sender<Job>>,
    done: Receiver<Result<PackInfo>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set when the run has failed: queued packs are dropped instead of stored.
    abandon: Arc<AtomicBool>,
}

impl Packers {
    /// `threads` packers compress and encrypt; `uploads` uploaders store the sealed packs, so
    /// a slow store never idles the CPUs and a fast CPU never floods the store. At most
    /// `threads + 1 + uploads` sealed packs are in memory at once.
    fn start(repo: &Repository, threads: usize, uploads: usize) -> Packers {
        let (jobs_tx, jobs_rx) = bounded::<Job>(threads * 2);
        let (sealed_tx, sealed_rx) = bounded::<(PackInfo, Vec<u8>)>(1);
        let (done_tx, done_rx) = unbounded();
        let abandon = Arc::new(AtomicBool::new(false));
        let mut handles: Vec<_> = (0..uploads.max(1))
            .map(|_| {
                let sealed = sealed_rx.clone();
                let done = done_tx.clone();
                let backend = repo.backend.clone();
                let abandon = abandon.clone();
                std::thread::spawn(move || {
                    for (info, bytes) in sealed.iter() {
                        if abandon.load(Ordering::Relaxed) {
                            continue;
                        }
                        let stored = backend
                            .put(ObjectKind::Data, &info.id.to_hex(), bytes)
                            .map(|_| info)
                            .map_err(Error::from);
                        if stored.is_err() {
                            abandon.store(true, Ordering::Relaxed);
                        }
                        let _ = done.send(stored);
                    }
                })
            })
            .collect();
        handles.extend((0..threads).map(|_| {
            let jobs = jobs_rx.clone();
            let done = done_tx.clone();
            let sealed = sealed_tx.clone();
            let recipients = repo.recipients.clone();
            let level = repo.config.zstd_level;
            let pack_size = repo.config.pack_size as usize;
            let abandon = abandon.clone();
            std::thread::spawn(move || {
                // Sealing errors go to `done`; a closed upload queue means the run is over.
                let seal = |builder: PackBuilder| -> Result<()> {
                    let pack = builder.seal(&recipients)?;
                    sealed
                        .send(pack)
                        .map_err(|_| Error::Internal("all uploader threads stopped".into()))
                };
                let mut builder = PackBuilder::new(level, pack_size + pack_size / 8);
                let mut failed = false;
                for (id, data) in jobs.iter() {
                    if failed || abandon.load(Ordering::Relaxed) {
                        failed = true;
                        continue; // keep draining so the walker never blocks
                    }
                    let result = builder.add(id, &data).and_then(|_| {
                        if builder.plain_len() >= pack_size {
                            let full = std::mem::replace(
                                &mut builder,
                                PackBuilder::new(level, pack_size + pack_size / 8),
                            );
                            seal(full)
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = result {
                        failed = true;
                        let _ = done.send(Err(e));
                    }
                }
                if !failed && !builder.is_empty() {
                    if let Err(e) = seal(builder) {
                        let _ = done.send(Err(e));
                    }
                }
            })
        }));
        Packers {
            jobs: Some(jobs_tx),
            done: done_rx,
            threads: handles,
            abandon,
        }
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::Internal("packers already stopped".into()))?
            .send(job)
            .map_err(|_| Error::Internal("all packer threads stopped".into()))
    }

    /// Stops the packers and waits for their last packs.
    fn finish(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Packers {
    fn drop(&mut self) {
        // Reached with threads still running only when the run failed: stop storing.
        if !self.threads.is_empty() {
            self.abandon.store(true, Ordering::Relaxed);
        }
        self.finish();
    }
}

struct Run<'a> {
    repo: &'a Repository,
    cache: &'a mut dyn BackupCache,
    progress: &'a dyn Progress,
    old_files: FileCache,
    new_files: FileCache,
    entries: Vec<Entry>,
    hardlinks: HashMap<(u64, u64), Vec<u8>>,
    /// Chunks handed to the packers in this run.
    sent: HashSet<ChunkId>,
    /// Packs holding chunks this snapshot reuses.
    reused_packs: BTreeSet<PackId>,
    /// Packs a prune is about to delete: not to be reused.
    condemned: HashSet<PackId>,
    /// Packs written by this run.
    written: Vec<PackInfo>,
    stats: SnapshotStats,
    packers: Packers,
    first_error: Option<Error>,
}

impl Run<'_> {
    /// Records the packs the packers finished so far; remembers the first failure.
    fn collect(&mut self, block: bool) -> Result<()> {
        loop {
            let next = if block {
                match self.packers.done.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                match self.packers.done.try_recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            };
            match next {
                Ok(info) => {
                    self.cache.record_pack(&info)?;
                    self.stats.bytes_added += info.size;
                    self.stats.packs_added += 1;
                    self.written.push(info);
                }
                Err(e) => {
                    self.packers.abandon.store(true, Ordering::Relaxed);
                    if self.first_error.is_none() {
                        self.first_error = Some(e);
                    }
                }
            }
        }
        match self.first_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The pack to reuse for a chunk the repository has, unless a prune is about to delete it.
    fn reusable(&mut self, id: &ChunkId) -> Result<Option<PackId>> {
        Ok(self
            .cache
            .chunk_pack(id)?
            .filter(|p| !self.condemned.contains(p)))
    }

    /// Decides what to do with one chunk of content: nothing (zero run), reuse, or store.
    fn add_chunk(&mut self, data: Vec<u8>, refs: &mut Vec<ChunkRef>) -> Result<()> {
        let len = data.len() as u64;
        if is_zero(&data) {
            match refs.last_mut() {
                Some(ChunkRef::Zero { len: run }) => *run += len,
                _ => refs.push(ChunkRef::Zero { len }),
            }
            return Ok(());
        }
        let id = ChunkId::of(&data);
        refs.push(ChunkRef::Data { id, len });
        if self.sent.contains(&id) {
            return Ok(());
        }
        if let Some(pack) = self.reusable(&id)? {
            self.reused_packs.insert(pack);
            return Ok(());
        }
        self.sent.insert(id);
        self.stats.bytes_new += len;
        self.packers.send((id, data))?;
        // Remember finished packs right away: after a crash, the next backup reuses them.
        self.collect(false)
    }

    /// Reuses the chunks of an unchanged file, if the repository still has all of them.
    fn try_reuse(&mut self, cached: &CachedFile) -> Result<bool> {
        let mut packs = Vec::new();
        for c in &cached.chunks {
            if let ChunkRef::Data { id, .. } = c {
                if self.sent.contains(id) {
                    continue;
                }
                match self.reusable(id)? {
                    Some(p) => packs.push(p),
                    None => return Ok(false),
                }
            }
        }
        self.reused_packs.extend(packs);
        Ok(true)
    }

    fn visit(&mut self, e: FsEntry<'_>, warn: &mut dyn FnMut(Warning)) -> Result<()> {
        let m = e.meta;
        let mut entry = Entry {
            path: e.rel.to_vec(),
            kind: EntryKind::Dir,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime_sec: m.mtime(),
            mtime_nsec: u32::try_from(m.mtime_nsec()).unwrap_or(0),
            size: 0,
        };
        let ft = m.file_type();
        if ft.is_dir() {
            self.stats.dirs += 1;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.abs).map_err(|err| {
                Error::Source(format!("cannot read symlink {}: {err}", e.abs.display()))
            })?;
            use std::os::unix::ffi::OsStrExt;
            entry.kind = EntryKind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            };
            self.stats.symlinks += 1;
        } else if m.nlink() > 1 && self.hardlinks.contains_key(&(m.dev(), m.ino())) {
            let first = self.hardlinks[&(m.dev(), m.ino())].clone();
            entry.kind = EntryKind::Hardlink { target: first };
            entry.size = m.size();
            self.stats.files += 1;
        } else {
            let (chunks, size) = match self.file_chunks(&e) {
                Ok(found) => found,
                Err(Error::Source(why)) => {
                    // One unreadable file does not stop the backup; the snapshot says it lacks it.
                    warn(Warning::Unreadable(why));
                    return self.collect(false);
                }
                Err(other) => return Err(other),
            };
            if m.nlink() > 1 {
                self.hardlinks.insert((m.dev(), m.ino()), e.rel.to_vec());
            }
            entry.kind = EntryKind::File { chunks };
            entry.size = size;
            self.stats.files += 1;
            self.stats.bytes += size;
        }
        self.entries.push(entry);
        self.collect(false)
    }

    fn file_chunks(&mut self, e: &FsEntry<'_>) -> Result<(Vec<ChunkRef>, u64)> {
        let m = e.meta;
        let (mtime_ns, ctime_ns) = (ns(m.mtime(), m.mtime_nsec()), ns(m.ctime(), m.ctime_nsec()));
        if let Some(old) = self.old_files.get(e.rel).cloned() {
            if old.size == m.size()
                && old.mtime_ns == mtime_ns
                && old.ctime_ns == ctime_ns
                && old.ino == m.ino()
                && self.try_reuse(&old)?
            {
                self.progress.advance(old.size);
                self.new_files.insert(e.rel.to_vec(), old.clone());
                return Ok((old.chunks, old.size));
            }
        }
        let file = File::open(e.abs)
            .map_err(|err| Error::Source(format!("cannot open {}: {err}", e.abs.display())))?;
        let mut refs = Vec::new();
        let mut size = 0u64;
        let chunker = self.repo.config.chunker.clone();
        chunker
            .chunk_stream(file, |data| {
                size += data.len() as u64;
                self.stats.bytes_read += data.len() as u64;
                self.progress.advance(data.len() as u64);
                self.add_chunk(data, &mut refs)
            })
            .map_err(|err| match err {
                Error::Source(s) => Error::Source(format!("reading {}: {s}", e.abs.display())),
                other => other,
            })?;
        self.new_files.insert(
            e.rel.to_vec(),
            CachedFile {
                size,
                mtime_ns,
                ctime_ns,
                ino: m.ino(),
                chunks: refs.clone(),
            },
        );
        Ok((refs, size))
    }

    /// Stores one stream as a file of the snapshot, at `path`.
    fn add_stream(
        &mut self,
        path: &str,
        reader: &mut dyn std::io::Read,
        time: chrono::DateTime<chrono::Utc>,
        chunker: &ChunkerParams,
    ) -> Result<()> {
        let mut refs = Vec::new();
        let mut size = 0u64;
        chunker.chunk_stream(reader, |data| {
            size += data.len() as u64;
            self.stats.bytes_read += data.len() as u64;
            self.progress.advance(data.len() as u64);
            self.add_chunk(data, &mut refs)
        })?;
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        self.entries.push(Entry {
            path: path.as_bytes().to_vec(),
            kind: EntryKind::File { chunks: refs },
            mode: 0o600,
            uid,
            gid,
            mtime_sec: time.timestamp(),
            mtime_nsec: 0,
            size,
        });
        self.stats.files += 1;
        self.stats.bytes += size;
        self.collect(false)
    }

    /// Stores the tree's chunks in their own packs, so that listing a snapshot does not need
    /// to decrypt file data.
    fn store_tree(&mut self, tree: &[u8]) -> Result<Vec<ChunkId>> {
        let repo = self.repo;
        let mut ids = Vec::new();
        let pack_size = repo.config.pack_size as usize;
        let mut builder = PackBuilder::new(repo.config.zstd_level, 0);
        let mut queued = HashSet::new();
        for piece in repo.config.chunker.chunk_slice(tree) {
            let id = ChunkId::of(piece);
            ids.push(id);
            if queued.contains(&id) {
                continue;
            }
            if let Some(pack) = self.reusable(&id)? {
                self.reused_packs.insert(pack);
                continue;
            }
            queued.insert(id);
            self.stats.bytes_new += piece.len() as u64;
            builder.add(id, piece)?;
            if builder.plain_len() >= pack_size {
                let full =
                    std::mem::replace(&mut builder, PackBuilder::new(repo.config.zstd_level, 0));
                self.store_pack(full)?;
            }
        }
        if !builder.is_empty() {
            self.store_pack(builder)?;
        }
        Ok(ids)
    }

    fn store_pack(&mut self, builder: PackBuilder) -> Result<()> {
        let (info, bytes) = builder.seal(&self.repo.recipients)?;
        self.repo
            .backend
            .put(ObjectKind::Data, &info.id.to_hex(), bytes)?;
        self.cache.record_pack(&info)?;
        self.stats.bytes_added += info.size;
        self.stats.packs_added += 1;
        self.written.push(info);
        Ok(())
    }
}

/// Backs up file trees (`options.paths`) and commits a snapshot.
pub fn backup(
    repo: &Repository,
    signing: &SecretKey,
    cache: &mut dyn BackupCache,
    options: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    run_backup(repo, signing, cache, options, Content::Files, progress)
}

/// Backs up the streams of `source` (`options.paths` is not used) and commits a snapshot.
/// If the source fails, nothing is committed.
pub fn backup_streams(
    repo: &Repository,
    signing: &SecretKey,
    cache: &mut dyn BackupCache,
    options: &BackupOptions,
    source: &mut dyn StreamSource,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    run_backup(
        repo,
        signing,
        cache,
        options,
        Content::Streams(source),
        progress,
    )
}

fn run_backup(
    repo: &Repository,
    signing: &SecretKey,
    cache: &mut dyn BackupCache,
    options: &BackupOptions,
    mut content: Content<'_>,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    repo.check_signing_key(signing)?;
    let started = Instant::now();
    // Announced before anything is decided: a prune now leaves alone what this run may reuse.
    let session = Session::begin(
        repo.backend.clone(),
        &repo.config.id,
        SessionKind::Backup,
        Timing::default(),
        progress,
    )?;
    let time = options.time.unwrap_or_else(chrono::Utc::now);
    let (roots, paths) = match &content {
        Content::Files => {
            let roots = fs_source::normalize_roots(&options.paths)
                .map_err(|e| Error::Source(e.to_string()))?;
            let paths = roots.iter().map(|p| p.display().to_string()).collect();
            (roots, paths)
        }
        Content::Streams(source) => (Vec::new(), source.describe()),
    };
    // The file cache of a set of sources is kept under their paths.
    let key = paths.join("\n");
    let (parent, old_files) = cache.file_cache(&key)?;
    let threads = if options.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        options.threads
    };
    progress.phase("backup", None, true);
    // New objects are locked as they are stored; reused ones are checked before the commit.
    let lock_dates = options
        .retain_until
        .filter(|_| repo.backend.object_lock())
        .map(|needed| (needed, lock_target(chrono::Utc::now(), needed)));
    repo.backend
        .lock_new_objects_until(lock_dates.map(|(_, target)| target));
    let mut run = Run {
        repo,
        cache,
        progress,
        old_files,
        new_files: FileCache::new(),
        entries: Vec::new(),
        hardlinks: HashMap::new(),
        sent: HashSet::new(),
        reused_packs: BTreeSet::new(),
        condemned: session.condemned().clone(),
        written: Vec::new(),
        stats: SnapshotStats::default(),
        packers: Packers::start(repo, threads, repo.backend.uploads()),
        first_error: None,
    };
    let mut warnings = Vec::new();
    let filled = match &mut content {
        Content::Files => {
            let mut warn = |w: Warning| warnings.push(w);
            // The walk carries a message; the error itself is kept, so that a store that
            // fails (a full disk) is not blamed on the source.
            let mut failed: Option<Error> = None;
            let walked = {
                let mut visit = |e: FsEntry<'_>, warn: &mut dyn FnMut(Warning)| {
                    run.visit(e, warn).map_err(|err| {
                        let text = err.to_string();
                        failed.get_or_insert(err);
                        text
                    })
                };
                fs_source::walk(&roots, &mut warn, &mut visit)
            };
            walked.map_err(|e| match e {
                fs_source::WalkError::Root { .. } => Error::Source(e.to_string()),
                fs_source::WalkError::Callback(s) => failed.take().unwrap_or(Error::Source(s)),
            })
        }
        Content::Streams(source) => {
            let chunker = source
                .chunker()
                .unwrap_or_else(|| repo.config.chunker.clone());
            let filled =
                source.produce(&mut |path, reader| run.add_stream(path, reader, time, &chunker));
            run.entries.sort_by(|a, b| a.path.cmp(&b.path));
            filled
        }
    };
    // Whatever happened, wait for the packers and remember every pack they stored: a later
    // backup can reuse them even if this one fails.
    run.packers.finish();
    let collected = run.collect(true);
    filled?;
    collected?;
    let details = match &content {
        Content::Files => BTreeMap::new(),
        Content::Streams(source) => source.details(),
    };
    let tree_bytes = super::tree::serialize(&run.entries);
    let tree = run.store_tree(&tree_bytes)?;

    // Index every pack that no index covers yet, then commit the manifest.
    let unindexed = run.cache.unindexed_packs()?;
    let mut new_index = None;
    if !unindexed.is_empty() {
        let index = repo.write_index(signing, &unindexed)?;
        let ids: Vec<PackId> = unindexed.iter().map(|p| p.id).collect();
        run.cache.record_index(&index, &ids)?;
        new_index = Some(index);
    }
    let mut packs: BTreeSet<PackId> = run.reused_packs.clone();
    packs.extend(run.written.iter().map(|p| p.id));
    // The cache may remember packs that a prune on another host removed since: never commit
    // a snapshot that points at missing data.
    let mut missing = Vec::new();
    for p in &run.reused_packs {
        if !repo.backend.exists(ObjectKind::Data, &p.to_hex())? {
            missing.push(*p);
        }
    }
    if !missing.is_empty() {
        run.cache.forget_missing(&missing)?;
        return Err(Error::Interrupted(format!(
            "{} pack(s) this backup reuses, such as {}, are no longer in the repository \
             (removed by a prune elsewhere?); nothing was committed. The catalog has forgotten \
             them: run the backup again and it stores that data anew",
            missing.len(),
            ObjectKind::Data.path(&missing[0].to_hex())
        )));
    }
    let mut locks = LockStats::default();
    if let Some((needed, target)) = lock_dates {
        // Objects this run stored are locked already; the rest are checked and lengthened.
        for p in &run.written {
            run.cache
                .record_lock(&ObjectKind::Data.path(&p.id.to_hex()), target)?;
        }
        if let Some(index) = &new_index {
            run.cache
                .record_lock(&ObjectKind::Index.path(&index.to_hex()), target)?;
        }
        let packs: Vec<PackId> = packs.iter().copied().collect();
        let mut objects: Vec<(ObjectKind, String)> =
            vec![(ObjectKind::Config, repo.config_id.to_hex())];
        objects.extend(
            run.cache
                .indexes_of(&packs)?
                .iter()
                .map(|i| (ObjectKind::Index, i.to_hex())),
        );
        objects.extend(packs.iter().map(|p| (ObjectKind::Data, p.to_hex())));
        locks = ensure_locked(repo.backend.as_ref(), run.cache, &objects, needed, target)?;
    }
    run.stats.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let manifest = Manifest {
        format: SNAPSHOT_FORMAT.into(),
        version: super::FORMAT_VERSION,
        repository: repo.config.id.clone(),
        time,
        hostname: options.hostname.clone(),
        paths,
        tags: options.tags.clone(),
        parent,
        tree,
        packs: packs.into_iter().collect(),
        stats: run.stats.clone(),
        retain_until: options.retain_until,
        details,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let signed = super::crypto::sign(signing, &json)?;
    let id = SnapshotId::of(&signed);
    session.guard()?;
    repo.backend
        .put(ObjectKind::Snapshot, &id.to_hex(), signed)?;
    // A session left behind (the store failed just now) goes stale and prune removes it.
    let _ = session.end();
    progress.finish();
    Ok(BackupOutcome {
        snapshot: Snapshot { id, manifest },
        paths_key: key,
        file_cache: run.new_files,
        warnings,
        locks,
    })
}
