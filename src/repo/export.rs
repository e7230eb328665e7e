//! Export of a snapshot as one portable archive: tar, compressed with zstd, encrypted to the
//! repository's recipients. `gpg -d` (or `sq decrypt`), `zstd -d` and `tar x` restore it.
//!
//! The archive is streamed into a temporary file next to the destination and renamed into
//! place when complete, so a failed export never leaves a truncated archive under its name.

use super::crypto::{self, SecretKey};
use super::snapshot::Snapshot;
use super::tree::{ChunkRef, Entry, EntryKind};
use super::{ChunkReader, Error, Repository, Result};
use crate::progress::Progress;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, Default, serde::Serialize)]
pub struct ExportOutcome {
    pub entries: u64,
    pub bytes: u64,
    pub archive_bytes: u64,
}

/// Reads a file's content from its chunk list.
struct FileReader<'r, 'a> {
    reader: &'r mut ChunkReader<'a>,
    chunks: std::slice::Iter<'r, ChunkRef>,
    current: Vec<u8>,
    pos: usize,
    zeros: u64,
    error: Option<Error>,
}

impl Read for FileReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.zeros > 0 {
                let n = (self.zeros.min(buf.len() as u64)) as usize;
                buf[..n].fill(0);
                self.zeros -= n as u64;
                return Ok(n);
            }
            if self.pos < self.current.len() {
                let n = (self.current.len() - self.pos).min(buf.len());
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.chunks.next() {
                None => return Ok(0),
                Some(ChunkRef::Zero { len }) => self.zeros = *len,
                Some(ChunkRef::Data { id, .. }) => match self.reader.read(id) {
                    Ok(data) => {
                        self.current = data;
                        self.pos = 0;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        self.error = Some(e);
                        return Err(std::io::Error::other(msg));
                    }
                },
            }
        }
    }
}

fn header_for(e: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(u64::try_from(e.mtime_sec).unwrap_or(0));
    h.set_size(0);
    h
}

pub fn export(
    repo: &Repository,
    key: &SecretKey,
    snapshot: &Snapshot,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ExportOutcome> {
    repo.check_key(key)?;
    let map = repo.chunk_map(key, &snapshot.manifest.packs.iter().copied().collect())?;
    let mut reader = ChunkReader::new(repo, key, &map);
    let tree = repo.read_tree(&mut reader, snapshot)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let target_err = |what: &str, e: &dyn std::fmt::Display| {
        Error::Target(format!("{what} {}: {e}", out.display()))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".lifeboat-export-")
        .tempfile_in(dir)
        .map_err(|e| target_err("cannot create a temporary file for", &e))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| target_err("cannot write", &e))?;
    let mut outcome = ExportOutcome::default();
    progress.phase("export", Some(snapshot.manifest.stats.bytes), true);
    {
        let recipients = repo.recipients().to_vec();
        let encrypted = crypto::encrypting_writer(&recipients, std::io::BufWriter::new(file))?;
        let zstd = zstd::Encoder::new(encrypted, repo.config.zstd_level)
            .map_err(|e| target_err("cannot start compression for", &e))?;
        let mut tar = tar::Builder::new(zstd);
        tar.follow_symlinks(false);
        for e in &tree {
            let path = Path::new(OsStr::from_bytes(&e.path));
            let mut h = header_for(e);
            let written = match &e.kind {
                EntryKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut h, path, std::io::empty())
                }
                EntryKind::Symlink { target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut h, path, Path::new(OsStr::from_bytes(target)))
                }
                EntryKind::Hardlink { target } => {
                    h.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut h, path, Path::new(OsStr::from_bytes(target)))
                }
                EntryKind::File { chunks } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(e.size);
                    let mut content = FileReader {
                        reader: &mut reader,
                        chunks: chunks.iter(),
                        current: Vec::new(),
                        pos: 0,
                        zeros: 0,
                        error: None,
                    };
                    let r = tar.append_data(&mut h, path, &mut content);
                    if let Some(err) = content.error.take() {
                        return Err(err);
                    }
                    outcome.bytes += e.size;
                    progress.advance(e.size);
                    r
                }
            };
            written
                .map_err(|err| target_err(&format!("cannot add {} to", e.path_lossy()), &err))?;
            outcome.entries += 1;
        }
        let zstd = tar
            .into_inner()
            .map_err(|e| target_err("cannot finish the archive", &e))?;
        let mut encrypted = zstd
            .finish()
            .map_err(|e| target_err("cannot finish compressing", &e))?;
        encrypted
            .flush()
            .map_err(|e| target_err("cannot write", &e))?;
        crypto::finalize(encrypted)?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| target_err("cannot flush", &e))?;
    outcome.archive_bytes = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    tmp.persist(out)
        .map_err(|e| target_err("cannot move into place", &e.error))?;
    progress.finish();
    Ok(outcome)
}
