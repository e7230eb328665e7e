//! `lifeboat keys`: OpenPGP keys for the service (signing) and for recipients (decryption).

use super::{exit, CliError, Context};
use crate::repo::crypto::SecretKey;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Generate a key: NAME.key (secret, mode 0600) and NAME.cert (public) in a folder.
    Generate {
        /// The key's name; also its OpenPGP user id.
        #[arg(long)]
        name: String,
        /// The folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(_ctx: &Context, command: KeysCommand) -> anyhow::Result<i32> {
    match command {
        KeysCommand::Generate { name, out } => {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(CliError::new(
                    exit::USAGE,
                    format!("'{name}' is not usable as a key name (no '/', not starting with '.')"),
                )
                .into());
            }
            let (key, key_path, cert_path) = write_pair(&name, &out)?;
            outln!("{}", key.fingerprint().to_hex());
            eprintln!("secret key:  {}", key_path.display());
            eprintln!("certificate: {}", cert_path.display());
            Ok(exit::OK)
        }
    }
}

/// Generates a key and writes NAME.key (mode 0600) and NAME.cert into `out`, refusing to
/// overwrite either.
pub(crate) fn write_pair(
    name: &str,
    out: &std::path::Path,
) -> anyhow::Result<(SecretKey, PathBuf, PathBuf)> {
    std::fs::create_dir_all(out)?;
    let key_path = out.join(format!("{name}.key"));
    let cert_path = out.join(format!("{name}.cert"));
    for p in [&key_path, &cert_path] {
        if p.exists() {
            return Err(CliError::new(
                exit::FAILED,
                format!(
                    "{} exists already; refusing to overwrite a key",
                    p.display()
                ),
            )
            .into());
        }
    }
    let key = SecretKey::generate(name)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)?;
    f.write_all(key.armored()?.as_bytes())?;
    f.sync_all()?;
    let mut c = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&cert_path)?;
    c.write_all(key.public().armored()?.as_bytes())?;
    c.sync_all()?;
    Ok((key, key_path, cert_path))
}
