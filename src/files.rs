//! Files written whole or not at all: a temporary file beside the target, synced, renamed
//! into place, and the folder synced, so a crash leaves the old file or the new one.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, replacing a file that exists; with `mode` (e.g.
/// 0o600 for a secret key) when given, else the temporary file's 0600.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
