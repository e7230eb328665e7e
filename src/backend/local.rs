//! A repository in a local directory: the embedded default target.
//!
//! Writes go to `tmp/` first, are flushed to disk, then renamed into place and the folder is
//! flushed too, so an object is either complete or absent after a crash.
//!
//! A temporary file's name says who writes it (`lb-BOOT.NS-PID-…`, see `writer`), so that the
//! first write of a later writer removes what this machine's ended writers left. Files of
//! older versions (`.tmp…`) go once they are a day old; those of other machines stay, and
//! `check` lists them.

use super::{Backend, Error, Leftover, ObjectKind, Result};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

pub struct LocalBackend {
    root: PathBuf,
    /// Whether this instance has removed the leftovers of ended writers yet.
    swept: std::sync::Once,
}

/// How old a temporary file of unknown origin must be before a writer removes it.
const LEGACY_TMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl LocalBackend {
    /// Opens an existing repository folder (it must hold a `config` folder).
    pub fn open(root: &Path) -> Result<Self> {
        let backend = LocalBackend {
            root: root.to_path_buf(),
            swept: std::sync::Once::new(),
        };
        if !root.join(ObjectKind::Config.dir()).is_dir() {
            return Err(Error::NotFound {
                kind: ObjectKind::Config,
                name: String::new(),
                location: backend.location(),
            });
        }
        if !root.join("tmp").is_dir() {
            // A creation was cut off (or a sync tool dropped empty folders): finish it. On a
            // read-only copy this fails, which is fine: reading needs none of these folders,
            // and a write says what it cannot create.
            let _ = make_layout(root);
        }
        Ok(backend)
    }

    /// Creates the folder layout of a new repository. The folder must be absent or empty.
    pub fn create(root: &Path) -> Result<Self> {
        let backend = LocalBackend {
            root: root.to_path_buf(),
            swept: std::sync::Once::new(),
        };
        let io = |action, source| Error::Io {
            action,
            what: "repository folder".into(),
            location: root.display().to_string(),
            source,
        };
        match fs::read_dir(root) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(io(
                        "refusing to create a repository",
                        std::io::Error::new(
                            ErrorKind::AlreadyExists,
                            "the folder is not empty; choose an empty or new folder",
                        ),
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(|e| io("creating", e))?
            }
            Err(e) => return Err(io("reading", e)),
        }
        make_layout(root).map_err(|e| io("creating", e))?;
        sync_dir(root).map_err(|e| io("flushing", e))?;
        Ok(backend)
    }

    fn object_path(&self, kind: ObjectKind, name: &str) -> PathBuf {
        self.root.join(kind.path(name))
    }

    /// The temporary files in `tmp/`, each with who left it (if its name says) and its age.
    fn temporaries(&self) -> Vec<(PathBuf, Leftover)> {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return Vec::new();
        };
        let now = std::time::SystemTime::now();
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let modified = meta.modified().unwrap_or(now);
            let age = now.duration_since(modified).unwrap_or_default();
            let ended = match writer_of(&name) {
                Some((place, pid)) => super::writer::ended(&place, pid, modified),
                None => age > LEGACY_TMP_AGE && !name.starts_with("lb-"),
            };
            out.push((
                entry.path(),
                Leftover {
                    what: format!("tmp/{name}"),
                    bytes: meta.len(),
                    age_seconds: Some(age.as_secs()),
                    writer_ended: ended,
                },
            ));
        }
        out
    }

    /// Removes what ended writers of this machine left in `tmp/`; once per instance, at its
    /// first write.
    fn sweep_leftovers(&self) {
        self.swept.call_once(|| {
            for (path, leftover) in self.temporaries() {
                if leftover.writer_ended {
                    // Gone meanwhile, or not ours to remove: the next writer tries again.
                    let _ = fs::remove_file(path);
                }
            }
        });
    }

    fn io_err(&self, action: &'static str, what: String, source: std::io::Error) -> Error {
        if source.kind() == ErrorKind::StorageFull || source.raw_os_error() == Some(libc::EDQUOT) {
            return Error::Full {
                action,
                what,
                location: self.location(),
                free: free_bytes(&self.root),
            };
        }
        Error::Io {
            action,
            what,
            location: self.location(),
            source,
        }
    }
}

/// The bytes free for this user on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a valid buffer for statvfs to fill.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// The prefix of this writer's temporary files.
fn tmp_prefix() -> String {
    match super::writer::here() {
        Some(place) => format!("lb-{}-{}-", place.tag(), std::process::id()),
        None => format!("lb-unknown-{}-", std::process::id()),
    }
}

/// Who left a temporary file, from its name (`lb-BOOT.NS-PID-RANDOM`).
fn writer_of(name: &str) -> Option<(super::writer::Place, u32)> {
    let mut parts = name.strip_prefix("lb-")?.splitn(3, '-');
    let place = super::writer::Place::parse(parts.next()?)?;
    let pid = parts.next()?.parse().ok()?;
    Some((place, pid))
}

/// The folders of a repository on a local target, `tmp/` last (see `make_layout`).
pub const REPOSITORY_FOLDERS: &[&str] = &[
    "config",
    "data",
    "index",
    "snapshots",
    "sessions",
    "marks",
    "holds",
    "evidence",
    "tmp",
];

/// The folders of a repository, `tmp/` last: a creation cut off before it is finished when
/// the repository is next opened.
fn make_layout(root: &Path) -> std::io::Result<()> {
    for dir in REPOSITORY_FOLDERS.iter().filter(|d| **d != "tmp") {
        fs::create_dir_all(root.join(dir))?;
    }
    for byte in 0..=255u8 {
        fs::create_dir_all(root.join("data").join(format!("{byte:02x}")))?;
    }
    fs::create_dir_all(root.join("tmp"))?;
    sync_dir(root)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
        fs::read(self.object_path(kind, name)).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::NotFound {
                    kind,
                    name: name.to_string(),
                    location: self.location(),
                }
            } else {
                self.io_err("reading", kind.path(name), e)
            }
        })
    }

    fn put(&self, kind: ObjectKind, name: &str, data: Vec<u8>) -> Result<()> {
        let path = self.object_path(kind, name);
        if path.exists() {
            return Ok(());
        }
        self.sweep_leftovers();
        let what = kind.path(name);
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::Builder::new()
            .prefix(&tmp_prefix())
            .tempfile_in(&tmp_dir)
            .map_err(|e| self.io_err("creating a temporary file for", what.clone(), e))?;
        tmp.write_all(&data)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| self.io_err("writing", what.clone(), e))?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        if !kind.kept() {
            // Repositories made before sessions, marks, holds and evidence lack their folders.
            fs::create_dir_all(&parent)
                .map_err(|e| self.io_err("creating the folder of", what.clone(), e))?;
        }
        tmp.persist(&path)
            .map_err(|e| self.io_err("moving into place", what.clone(), e.error))?;
        sync_dir(&parent).map_err(|e| self.io_err("flushing the folder of", what, e))
    }

    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        match fs::symlink_metadata(self.object_path(kind, name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err("looking up", kind.path(name), e)),
        }
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<(String, u64)>> {
        let base = self.root.join(kind.dir());
        if !kind.kept() && !base.exists() {
            return Ok(Vec::new()); // a repository made before these folders existed
        }
        let mut dirs = vec![base.clone()];
        if kind.fanned_out() {
            dirs = fs::read_dir(&base)
                .map_err(|e| self.io_err("listing", kind.dir().into(), e))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect();
        }
        let mut out = Vec::new();
        for dir in dirs {
            let entries =
                fs::read_dir(&dir).map_err(|e| self.io_err("listing", kind.dir().into(), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| self.io_err("listing", kind.dir().into(), e))?;
                let meta = entry
                    .metadata()
                    .map_err(|e| self.io_err("listing", kind.dir().into(), e))?;
                if meta.is_file() {
                    out.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
                }
            }
        }
        Ok(out)
    }

    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        match fs::remove_file(self.object_path(kind, name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err("deleting", kind.path(name), e)),
        }
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(self.temporaries().into_iter().map(|(_, l)| l).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_write_removes_what_ended_writers_of_this_machine_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        LocalBackend::create(&root).expect("create");
        let tmp = root.join("tmp");
        let place = super::super::writer::here().expect("/proc").tag();
        // A writer that ran and ended, this process (alive), another machine, an old-style
        // name written just now.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let ended = format!("lb-{place}-{dead}-abc");
        let alive = format!("lb-{place}-{}-abc", std::process::id());
        let other = format!("lb-{}.1-{dead}-abc", "f".repeat(32));
        for name in [&ended, &alive, &other, &".tmpXYZ".to_string()] {
            fs::write(tmp.join(name), b"partial").unwrap();
        }
        let backend = LocalBackend::open(&root).expect("open");
        let seen = backend.leftovers().unwrap();
        assert_eq!(seen.len(), 4);
        assert_eq!(
            seen.iter().filter(|l| l.writer_ended).count(),
            1,
            "{seen:?}"
        );
        backend
            .put(ObjectKind::Data, &"ab".repeat(32), b"pack".to_vec())
            .unwrap();
        let mut left: Vec<String> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![alive, other, ".tmpXYZ".to_string()];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn opening_finishes_a_creation_that_was_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        LocalBackend::create(&root).expect("create");
        // As if the creation had stopped after the first folders.
        fs::remove_dir(root.join("tmp")).expect("rm tmp");
        fs::remove_dir(root.join("data/ff")).expect("rm data/ff");
        let backend = LocalBackend::open(&root).expect("open");
        let name = format!("ff{}", "0".repeat(62));
        backend
            .put(ObjectKind::Data, &name, b"pack".to_vec())
            .expect("put after repair");
        assert_eq!(backend.get(ObjectKind::Data, &name).expect("get"), b"pack");
    }
}
