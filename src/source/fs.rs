//! File-tree source: walks one or more paths in a fixed order (names sorted bytewise) and hands
//! each entry with its metadata to a callback. Entries that cannot be read are reported as
//! warnings and skipped, so one unreadable file does not stop a backup.

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

pub struct FsEntry<'a> {
    /// Path inside the snapshot: the absolute path without its leading `/`.
    pub rel: &'a [u8],
    pub abs: &'a Path,
    pub meta: &'a Metadata,
}

/// Something the walk passed over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "lowercase")]
pub enum Warning {
    /// A kind of entry that is not backed up (sockets, pipes, devices).
    Skipped(String),
    /// An entry that could not be read: the snapshot is incomplete.
    Unreadable(String),
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Skipped(m) | Warning::Unreadable(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("source path {path} cannot be backed up: {reason}")]
    Root { path: String, reason: String },
    #[error("{0}")]
    Callback(String),
}

/// Normalises source paths: absolute, without `.`/`..`, sorted, nested ones dropped.
pub fn normalize_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>, WalkError> {
    let mut roots = BTreeSet::new();
    for p in paths {
        let abs = std::path::absolute(p).map_err(|e| WalkError::Root {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut clean = PathBuf::from("/");
        for c in abs.components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::ParentDir => {
                    clean.pop();
                }
                _ => {}
            }
        }
        fs::symlink_metadata(&clean).map_err(|e| WalkError::Root {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        roots.insert(clean);
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for r in roots {
        if !out.iter().any(|o| r.starts_with(o)) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Walks normalised roots. Ancestors of each root are visited first (once), so a restore
/// recreates them with their metadata.
pub fn walk<F>(
    roots: &[PathBuf],
    warn: &mut dyn FnMut(Warning),
    visit: &mut F,
) -> Result<(), WalkError>
where
    F: FnMut(FsEntry<'_>, &mut dyn FnMut(Warning)) -> Result<(), String>,
{
    let mut seen_ancestors = BTreeSet::new();
    for root in roots {
        let mut ancestors: Vec<&Path> = root.ancestors().skip(1).collect();
        ancestors.reverse();
        for a in ancestors {
            let rel = rel_bytes(a);
            if rel.is_empty() || !seen_ancestors.insert(rel.clone()) {
                continue;
            }
            let meta = fs::symlink_metadata(a).map_err(|e| WalkError::Root {
                path: a.display().to_string(),
                reason: e.to_string(),
            })?;
            visit(
                FsEntry {
                    rel: &rel,
                    abs: a,
                    meta: &meta,
                },
                warn,
            )
            .map_err(WalkError::Callback)?;
        }
        let meta = fs::symlink_metadata(root).map_err(|e| WalkError::Root {
            path: root.display().to_string(),
            reason: e.to_string(),
        })?;
        walk_entry(root, &rel_bytes(root), &meta, warn, visit)?;
    }
    Ok(())
}

fn rel_bytes(p: &Path) -> Vec<u8> {
    let b = p.as_os_str().as_bytes();
    b.strip_prefix(b"/").unwrap_or(b).to_vec()
}

fn walk_entry<F>(
    abs: &Path,
    rel: &[u8],
    meta: &Metadata,
    warn: &mut dyn FnMut(Warning),
    visit: &mut F,
) -> Result<(), WalkError>
where
    F: FnMut(FsEntry<'_>, &mut dyn FnMut(Warning)) -> Result<(), String>,
{
    let ft = meta.file_type();
    if ft.is_socket() || ft.is_fifo() || ft.is_block_device() || ft.is_char_device() {
        let kind = if ft.is_socket() {
            "socket"
        } else if ft.is_fifo() {
            "named pipe"
        } else {
            "device"
        };
        warn(Warning::Skipped(format!(
            "skipped {kind} {}",
            abs.display()
        )));
        return Ok(());
    }
    visit(FsEntry { rel, abs, meta }, warn).map_err(WalkError::Callback)?;
    if !ft.is_dir() {
        return Ok(());
    }
    let mut children: Vec<(Vec<u8>, PathBuf)> = match fs::read_dir(abs) {
        Ok(entries) => entries
            .filter_map(|e| match e {
                Ok(e) => Some((e.file_name().as_bytes().to_vec(), e.path())),
                Err(err) => {
                    warn(Warning::Unreadable(format!(
                        "cannot list {}: {err}",
                        abs.display()
                    )));
                    None
                }
            })
            .collect(),
        Err(e) => {
            warn(Warning::Unreadable(format!(
                "cannot list {}: {e}",
                abs.display()
            )));
            return Ok(());
        }
    };
    children.sort();
    for (name, path) in children {
        let child_meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                warn(Warning::Unreadable(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
                continue;
            }
        };
        let mut child_rel = Vec::with_capacity(rel.len() + 1 + name.len());
        child_rel.extend_from_slice(rel);
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(&name);
        walk_entry(&path, &child_rel, &child_meta, warn, visit)?;
    }
    Ok(())
}
