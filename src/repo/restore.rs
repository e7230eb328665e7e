//! Restore of a snapshot (or part of it) into a folder.
//!
//! Everything is written into a staging folder inside the target first and moved into place
//! only when every chunk was authenticated and written: a failed restore leaves the target as
//! it was. Files are created at full length and only non-zero data is written, so holes stay
//! holes. Packs are read once each, several at a time.

use super::crypto::SecretKey;
use super::ids::PackId;
use super::index::PackEntry;
use super::snapshot::Snapshot;
use super::tree::{ChunkRef, Entry, EntryKind};
use super::{Error, Repository, Result};
use crate::progress::Progress;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct RestoreOptions {
    pub target: PathBuf,
    /// Paths inside the snapshot to restore (with everything below them); empty means all.
    pub includes: Vec<String>,
    /// Reader threads; 0 means one per core.
    pub threads: usize,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreOutcome {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

/// Normalises a path given by a user to the snapshot's form: no leading or trailing `/`.
pub fn normalize_include(p: &str) -> Vec<u8> {
    p.trim_matches('/').as_bytes().to_vec()
}

fn is_within(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.len() > prefix.len() && path.starts_with(prefix) && path[prefix.len()] == b'/')
}

/// Picks the entries to restore: those at or below an include, and the folders above them.
/// A hard link whose first name is not restored becomes a copy of that file.
pub fn select(entries: Vec<Entry>, includes: &[Vec<u8>]) -> Result<Vec<Entry>> {
    if includes.is_empty() {
        return Ok(entries);
    }
    let files: HashMap<Vec<u8>, Entry> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .map(|e| (e.path.clone(), e.clone()))
        .collect();
    let chosen = |p: &[u8]| includes.iter().any(|i| is_within(p, i));
    let parent_of_chosen = |p: &[u8]| {
        includes
            .iter()
            .any(|i| i.len() > p.len() && is_within(i, p))
    };
    let mut out = Vec::new();
    for mut e in entries {
        if chosen(&e.path) {
            if let EntryKind::Hardlink { target } = &e.kind {
                if !chosen(target) {
                    let original = files.get(target).ok_or_else(|| Error::Corrupt {
                        object: "tree".into(),
                        reason: format!(
                            "hard link {} points at missing {}",
                            e.path_lossy(),
                            String::from_utf8_lossy(target)
                        ),
                    })?;
                    e.kind = original.kind.clone();
                }
            }
            out.push(e);
        } else if matches!(e.kind, EntryKind::Dir) && parent_of_chosen(&e.path) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err(Error::NotFound(format!(
            "nothing in the snapshot matches {}",
            includes
                .iter()
                .map(|i| format!("'/{}'", String::from_utf8_lossy(i)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(out)
}

/// Where one chunk goes: files and offsets.
type Destinations = Vec<(usize, u64)>;
/// The chunks to take from one pack, by offset, with where each goes.
type PackPlan = BTreeMap<u64, (PackEntry, Destinations)>;

pub fn restore(
    repo: &Repository,
    key: &SecretKey,
    snapshot: &Snapshot,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreOutcome> {
    repo.check_key(key)?;
    let map = repo.chunk_map(key, &snapshot.manifest.packs.iter().copied().collect())?;
    let mut reader = super::ChunkReader::new(repo, key, &map);
    let tree = repo.read_tree(&mut reader, snapshot)?;
    let includes: Vec<Vec<u8>> = options
        .includes
        .iter()
        .map(|i| normalize_include(i))
        .collect();
    let entries = select(tree, &includes)?;

    let target = &options.target;
    fs::create_dir_all(target).map_err(|e| {
        Error::Target(format!(
            "cannot create restore target {}: {e}",
            target.display()
        ))
    })?;
    let tops: BTreeSet<Vec<u8>> = entries
        .iter()
        .map(|e| {
            e.path
                .split(|&b| b == b'/')
                .next()
                .unwrap_or_default()
                .to_vec()
        })
        .collect();
    for top in &tops {
        let dest = target.join(OsStr::from_bytes(top));
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(Error::Target(format!(
                "{} already exists; restore into an empty folder or move it away first",
                dest.display()
            )));
        }
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".lifeboat-restore-{}-", snapshot.id.short()))
        .tempdir_in(target)
        .map_err(|e| {
            Error::Target(format!(
                "cannot create a staging folder in {}: {e}",
                target.display()
            ))
        })?;
    let mut outcome = write_all(
        repo,
        key,
        &map,
        &entries,
        staging.path(),
        options.threads,
        progress,
    )?;
    for d in &map.damaged {
        outcome.warnings.push(format!(
            "{d}; it was left out, and this snapshot did not need it ('lifeboat repair index' \
             rebuilds indexes from the packs)"
        ));
    }
    for top in &tops {
        let from = staging.path().join(OsStr::from_bytes(top));
        let to = target.join(OsStr::from_bytes(top));
        fs::rename(&from, &to)
            .map_err(|e| Error::Target(format!("cannot move {} into place: {e}", to.display())))?;
    }
    progress.finish();
    Ok(outcome)
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::StorageFull {
        " (the target is full; free space and run the restore again)"
    } else {
        ""
    };
    Error::Target(format!("{what} {}: {e}{hint}", path.display()))
}

fn write_all(
    repo: &Repository,
    key: &SecretKey,
    map: &super::ChunkMap,
    entries: &[Entry],
    root: &Path,
    threads: usize,
    progress: &dyn Progress,
) -> Result<RestoreOutcome> {
    let mut outcome = RestoreOutcome::default();
    let path_of = |e: &Entry| root.join(OsStr::from_bytes(&e.path));
    // Folders and empty files first, so data has somewhere to go.
    let mut files: Vec<(PathBuf, &Entry)> = Vec::new();
    let mut plan: BTreeMap<PackId, PackPlan> = BTreeMap::new();
    let mut total = 0u64;
    for e in entries {
        let path = path_of(e);
        match &e.kind {
            EntryKind::Dir => {
                fs::create_dir_all(&path)
                    .map_err(|err| io_err("cannot create folder", &path, err))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
                    .map_err(|err| io_err("cannot set permissions of", &path, err))?;
                outcome.dirs += 1;
            }
            EntryKind::File { chunks } => {
                let file =
                    fs::File::create(&path).map_err(|err| io_err("cannot create", &path, err))?;
                file.set_len(e.size)
                    .map_err(|err| io_err("cannot size", &path, err))?;
                let index = files.len();
                files.push((path, e));
                let mut offset = 0u64;
                for c in chunks {
                    if let ChunkRef::Data { id, .. } = c {
                        let (pack, entry) = map.locate(id, &e.path_lossy())?;
                        let (pack, entry) = (&pack, &entry);
                        plan.entry(*pack)
                            .or_default()
                            .entry(entry.offset)
                            .or_insert_with(|| (*entry, Vec::new()))
                            .1
                            .push((index, offset));
                        total += c.len();
                    }
                    offset += c.len();
                }
                outcome.files += 1;
                outcome.bytes += e.size;
            }
            EntryKind::Symlink { .. } | EntryKind::Hardlink { .. } => {}
        }
    }
    progress.phase("restore", Some(total), true);

    // Data: packs in parallel, each read and decrypted once.
    let packs: Vec<(&PackId, &PackPlan)> = plan.iter().collect();
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        threads
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.min(packs.len().max(1)) {
            scope.spawn(|| loop {
                if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((pack, chunks)) = packs.get(i) else {
                    return;
                };
                let result = (|| -> Result<()> {
                    let plain = repo.read_pack(key, pack)?;
                    for (entry, dests) in chunks.values() {
                        let data = super::pack::extract(**pack, &plain, entry)?;
                        for (file, offset) in dests {
                            let path = &files[*file].0;
                            let f = OpenOptions::new()
                                .write(true)
                                .open(path)
                                .map_err(|e| io_err("cannot open", path, e))?;
                            write_sparse(&f, &data, *offset)
                                .map_err(|e| io_err("cannot write", path, e))?;
                            progress.advance(data.len() as u64);
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    if let Some(e) = failure
        .into_inner()
        .map_err(|_| Error::Internal("restore worker panicked".into()))?
    {
        return Err(e);
    }

    // Links, then metadata: files and links now, folders last and deepest first, because
    // writing into a folder changes its modification time.
    for e in entries {
        let path = path_of(e);
        match &e.kind {
            EntryKind::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                    .map_err(|err| io_err("cannot create symlink", &path, err))?;
                outcome.symlinks += 1;
            }
            EntryKind::Hardlink { target } => {
                let original = root.join(OsStr::from_bytes(target));
                fs::hard_link(&original, &path)
                    .map_err(|err| io_err("cannot create hard link", &path, err))?;
                outcome.files += 1;
            }
            _ => {}
        }
    }
    let is_root = running_as_root();
    for e in entries
        .iter()
        .filter(|e| !matches!(e.kind, EntryKind::Dir | EntryKind::Hardlink { .. }))
    {
        set_metadata(&path_of(e), e, is_root, &mut outcome.warnings)?;
    }
    let mut dirs: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Dir))
        .collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.len()));
    for e in dirs {
        set_metadata(&path_of(e), e, is_root, &mut outcome.warnings)?;
    }
    Ok(outcome)
}

/// Writes `data` at `offset`, leaving out all-zero blocks: the file was created at full length,
/// so they read back as zeros and stay holes on file systems that support them.
fn write_sparse(file: &fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    const BLOCK: usize = 4096;
    let mut start = 0;
    while start < data.len() {
        // Align blocks to the file, not to the chunk, so holes line up with the file system's.
        let file_pos = offset + start as u64;
        let to_boundary = BLOCK - (file_pos % BLOCK as u64) as usize;
        let end = (start + to_boundary).min(data.len());
        let block = &data[start..end];
        if !super::chunker::is_zero(block) {
            file.write_all_at(block, file_pos)?;
        }
        start = end;
    }
    Ok(())
}

fn running_as_root() -> bool {
    // Ownership can only be given away by root; everyone else keeps their own.
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn set_metadata(path: &Path, e: &Entry, is_root: bool, warnings: &mut Vec<String>) -> Result<()> {
    let is_link = matches!(e.kind, EntryKind::Symlink { .. });
    if is_root {
        if let Err(err) = std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)) {
            warnings.push(format!("cannot set owner of {}: {err}", path.display()));
        }
    }
    if !is_link {
        fs::set_permissions(path, fs::Permissions::from_mode(e.mode))
            .map_err(|err| io_err("cannot set permissions of", path, err))?;
    }
    let mtime = filetime::FileTime::from_unix_time(e.mtime_sec, e.mtime_nsec);
    filetime::set_symlink_file_times(path, mtime, mtime)
        .map_err(|err| io_err("cannot set modification time of", path, err))
}

/// The files of one snapshot, read one at a time into a writer (the dumps of a database
/// source go to its restore tool this way). The chunk map is built once for all of them.
pub struct SnapshotFiles<'a> {
    repo: &'a Repository,
    key: &'a SecretKey,
    map: super::ChunkMap,
    files: Vec<Entry>,
}

impl<'a> SnapshotFiles<'a> {
    pub fn open(
        repo: &'a Repository,
        key: &'a SecretKey,
        snapshot: &Snapshot,
    ) -> Result<SnapshotFiles<'a>> {
        repo.check_key(key)?;
        let map = repo.chunk_map(key, &snapshot.manifest.packs.iter().copied().collect())?;
        let tree = repo.read_tree(&mut super::ChunkReader::new(repo, key, &map), snapshot)?;
        let files = tree
            .into_iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .collect();
        Ok(SnapshotFiles {
            repo,
            key,
            map,
            files,
        })
    }

    /// The logical size of all files.
    pub fn total(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Writes the content of the file at `path` to `out`, every chunk authenticated on the
    /// way; returns the bytes written.
    pub fn write(
        &self,
        path: &str,
        out: &mut dyn std::io::Write,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let chunks = match self.files.iter().find(|f| f.path == path.as_bytes()) {
            Some(Entry {
                kind: EntryKind::File { chunks },
                ..
            }) => chunks,
            _ => return Err(Error::NotFound(format!("the snapshot has no file {path}"))),
        };
        let mut reader = super::ChunkReader::new(self.repo, self.key, &self.map);
        let broken = |e: std::io::Error| Error::Target(format!("writing the restored data: {e}"));
        let zeros = vec![0u8; 1 << 16];
        let mut written = 0u64;
        for c in chunks {
            match c {
                ChunkRef::Data { id, .. } => {
                    out.write_all(&reader.read(id)?).map_err(broken)?;
                }
                ChunkRef::Zero { len } => {
                    let mut left = *len;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        out.write_all(&zeros[..n]).map_err(broken)?;
                        left -= n as u64;
                    }
                }
            }
            written += c.len();
            progress.advance(c.len());
        }
        Ok(written)
    }
}

/// What comparing restored files with their snapshot found.
#[derive(Debug, Default)]
pub struct OnDisk {
    pub files: u64,
    pub bytes: u64,
    /// Files that differ, are missing or cannot be read, with why.
    pub mismatches: Vec<String>,
}

impl SnapshotFiles<'_> {
    /// Reads every file of the snapshot back from `root` (where it was restored) and checks
    /// it chunk by chunk: each chunk's SHA-256 as the snapshot's tree records it, zero runs
    /// as zeros, and the size. Needs no repository data, only the tree.
    pub fn verify_on_disk(&self, root: &Path) -> OnDisk {
        use std::io::Read;
        let mut found = OnDisk::default();
        for entry in &self.files {
            let EntryKind::File { chunks } = &entry.kind else {
                continue;
            };
            let name = String::from_utf8_lossy(&entry.path).into_owned();
            let path = root.join(&name);
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    found.mismatches.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let mut ok = true;
            let mut offset = 0u64;
            let mut buf = Vec::new();
            for c in chunks {
                buf.resize(c.len() as usize, 0);
                if let Err(e) = file.read_exact(&mut buf) {
                    found.mismatches.push(format!(
                        "{name}: shorter than the snapshot's {} bytes ({e})",
                        entry.size
                    ));
                    ok = false;
                    break;
                }
                let good = match c {
                    ChunkRef::Data { id, .. } => super::ids::ChunkId::of(&buf) == *id,
                    ChunkRef::Zero { .. } => buf.iter().all(|b| *b == 0),
                };
                if !good {
                    found.mismatches.push(format!(
                        "{name}: the {} bytes at offset {offset} differ from the snapshot",
                        c.len()
                    ));
                    ok = false;
                    break;
                }
                offset += c.len();
            }
            if ok && file.read(&mut [0u8; 1]).map(|n| n > 0).unwrap_or(false) {
                found.mismatches.push(format!(
                    "{name}: longer than the snapshot's {} bytes",
                    entry.size
                ));
                ok = false;
            }
            if ok {
                found.files += 1;
                found.bytes += entry.size;
            }
        }
        found
    }
}
