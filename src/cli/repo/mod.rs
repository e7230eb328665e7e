//! Repository commands: init, backup, snapshots, ls, restore here; check, export, copy,
//! forget and prune in `upkeep`.

mod upkeep;
pub(in crate::cli) use upkeep::open_for_writing;
pub use upkeep::{check, copy, export, forget, prune};

use super::{exit, load_secret, target, CliError, Context, RepoArg, SignerArg};
use crate::backend::Backend;
use crate::catalog::Catalog;
use crate::repo::backup::{self, BackupOptions};
use crate::repo::check::{self, CheckOptions};
use crate::repo::crypto::{PublicCert, SecretKey};
use crate::repo::restore::{self, RestoreOptions};
use crate::repo::tree::EntryKind;
use crate::repo::{export as export_mod, ChunkReader, Repository};
use crate::schedule::retention;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// A recipient's public certificate; everything is encrypted to all recipients.
    #[arg(long = "recipient", required = true)]
    recipients: Vec<PathBuf>,
    /// The service's secret key, which signs the repository's manifests and indexes.
    #[arg(long, env = "LIFEBOAT_SIGNING_KEY")]
    signing_key: PathBuf,
}

#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[arg(long, env = "LIFEBOAT_SIGNING_KEY")]
    signing_key: PathBuf,
    /// A tag for the snapshot, KEY=VALUE (repeatable).
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Host name recorded in the snapshot (default: this machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// Keep the snapshot at least this many days; on an S3 bucket with Object Lock, its objects
    /// are locked (compliance mode) that long.
    #[arg(long, env = "LIFEBOAT_RETAIN_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    retain_days: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Files and folders to back up.
    #[arg(required_unless_present_any = ["postgres", "mysql", "sqlite"],
          conflicts_with_all = ["postgres", "mysql", "sqlite"])]
    paths: Vec<PathBuf>,
}

/// A database to dump instead of files.
#[derive(clap::Args, Clone)]
pub struct DatabaseArgs {
    /// Back up a PostgreSQL database: postgres://USER@HOST[:PORT]/DATABASE (no password here).
    #[arg(long, value_name = "ADDRESS")]
    postgres: Option<String>,
    /// Back up a MariaDB or MySQL database: mysql://USER@HOST[:PORT]/DATABASE (no password here).
    #[arg(
        long,
        alias = "mariadb",
        value_name = "ADDRESS",
        conflicts_with = "postgres"
    )]
    mysql: Option<String>,
    /// Back up an SQLite database file (a consistent copy, even while it is written to).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["postgres", "mysql"])]
    sqlite: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Where a database password comes from: never the command line.
#[derive(clap::Args, Clone)]
pub struct PasswordArgs {
    /// A file with the database password: a .pgpass file (PostgreSQL), or an option file with
    /// a [client] section and password=... (MariaDB/MySQL).
    #[arg(long, alias = "pg-passfile", value_name = "FILE")]
    passfile: Option<PathBuf>,
    /// The environment variable holding the database password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

impl PasswordArgs {
    /// The server at `address`, which must be a database of `engine`.
    fn connect(
        &self,
        engine: crate::source::connection::Engine,
        address: &str,
    ) -> anyhow::Result<crate::source::connection::Connection> {
        let mut c = crate::source::connection::Connection::parse_for(engine, address)
            .map_err(|e| CliError::new(exit::USAGE, e))?;
        c.passfile = self.passfile.clone();
        c.password_env = self.password_env.clone();
        Ok(c)
    }
}

impl DatabaseArgs {
    /// The database to dump, if one was given; a bad address is a usage error.
    fn database(&self) -> anyhow::Result<Option<crate::source::Database>> {
        use crate::source::{connection::Engine, Database};
        Ok(if let Some(a) = &self.postgres {
            Some(Database::Postgres(
                self.password.connect(Engine::Postgres, a)?,
            ))
        } else if let Some(a) = &self.mysql {
            Some(Database::Mysql(self.password.connect(Engine::Mysql, a)?))
        } else {
            self.sqlite.as_ref().map(|path| {
                Database::Sqlite(std::path::absolute(path).unwrap_or_else(|_| path.clone()))
            })
        })
    }
}

#[derive(clap::Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    signer: SignerArg,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    signer: SignerArg,
    /// A recipient's secret key.
    #[arg(long, env = "LIFEBOAT_KEY")]
    key: PathBuf,
    #[arg(long)]
    json: bool,
    /// Snapshot id (or a unique prefix), or `latest`.
    snapshot: String,
    /// Only this path and what is below it.
    path: Option<String>,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    signer: SignerArg,
    #[arg(long, env = "LIFEBOAT_KEY")]
    key: PathBuf,
    /// Snapshot id (or a unique prefix), or `latest`.
    snapshot: String,
    /// The folder to restore into (created if missing; existing entries are never overwritten).
    #[arg(long, required_unless_present_any = ["to_postgres", "to_mysql"])]
    target: Option<PathBuf>,
    /// Restore a PostgreSQL snapshot into this server and new database:
    /// postgres://USER@HOST[:PORT]/DATABASE (roles first, then the database, created).
    #[arg(long, value_name = "ADDRESS", conflicts_with_all = ["target", "to_mysql"])]
    to_postgres: Option<String>,
    /// Restore a MariaDB/MySQL snapshot into this server and new database:
    /// mysql://USER@HOST[:PORT]/DATABASE (accounts first, then the database, created).
    #[arg(
        long,
        alias = "to-mariadb",
        value_name = "ADDRESS",
        conflicts_with = "target"
    )]
    to_mysql: Option<String>,
    /// The password of the server restored into.
    #[command(flatten)]
    password: PasswordArgs,
    /// Parallel pg_restore jobs (PostgreSQL). Above 1 the dump is first written to a temporary
    /// file in TMPDIR, which needs room for it.
    #[arg(long, default_value_t = 1, requires = "to_postgres",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Restore only this path (a file or a folder) of the snapshot (repeatable).
    #[arg(long = "include")]
    includes: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    signer: SignerArg,
    /// A recipient's secret key: also check indexes and trees.
    #[arg(long, env = "LIFEBOAT_KEY")]
    key: Option<PathBuf>,
    /// Decrypt and verify every chunk (needs --key).
    #[arg(long, requires = "key")]
    read_data: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    signer: SignerArg,
    #[arg(long, env = "LIFEBOAT_KEY")]
    key: PathBuf,
    snapshot: String,
    /// The archive to write (OpenPGP-encrypted tar.zst).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct CopyArgs {
    /// The repository to copy from: a local folder, or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "FOLDER|s3://BUCKET/PREFIX")]
    from: String,
    /// The repository to copy to: an empty place (it becomes a copy of --from) or an earlier
    /// copy of --from.
    #[arg(long, value_name = "FOLDER|s3://BUCKET/PREFIX")]
    to: String,
    #[command(flatten)]
    s3: target::S3Args,
    #[command(flatten)]
    signer: SignerArg,
    #[arg(long)]
    json: bool,
    /// Snapshots to copy (ids, unique prefixes, or `latest`); all when none is given.
    snapshots: Vec<String>,
}

/// What `forget` and `prune` share: they change a repository as its signer.
#[derive(clap::Args)]
struct DeleteArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[arg(long, env = "LIFEBOAT_SIGNING_KEY")]
    signing_key: PathBuf,
    /// Show what would be deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    common: DeleteArgs,
    /// Keep every snapshot younger than this (90d, 36h, 2w).
    #[arg(long, value_parser = retention::parse_span, value_name = "SPAN")]
    keep_within: Option<chrono::Duration>,
    /// Keep the newest N snapshots of each source.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_hourly: u32,
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_daily: u32,
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_weekly: u32,
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_monthly: u32,
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_yearly: u32,
    /// Snapshots to forget (ids or unique prefixes); or none, with --keep-* options, to let the
    /// policy decide for each source (snapshots with the same `source` tag, or else the same
    /// host and paths). The newest snapshot of a source is always kept.
    snapshots: Vec<String>,
}

impl ForgetArgs {
    fn policy(&self) -> Option<retention::Policy> {
        let p = retention::Policy {
            within: self.keep_within,
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
        };
        (p != retention::Policy::default()).then_some(p)
    }
}

/// The source a snapshot belongs to, for retention: its `source` tag, or its host and paths.
fn source_of(s: &crate::repo::snapshot::Snapshot) -> String {
    match s.manifest.tags.get("source") {
        Some(source) => source.clone(),
        None => format!("{}:{}", s.manifest.hostname, s.manifest.paths.join(",")),
    }
}

#[derive(clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    common: DeleteArgs,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

fn open_backend(repo: &RepoArg) -> anyhow::Result<Arc<dyn Backend>> {
    target::open(&repo.repo, &repo.s3)
}

/// Opens a repository for reading, authenticated against the trusted service certificate.
pub(super) fn open_trusted(
    ctx: &Context,
    repo: &RepoArg,
    signer: &SignerArg,
) -> anyhow::Result<Repository> {
    let backend = open_backend(repo)?;
    let cert = ctx.trusted_signer(backend.as_ref(), signer)?;
    Ok(Repository::open(backend, cert)?)
}

/// Opens a repository for reading with a recipient's key and finds a snapshot in it.
fn open_snapshot(
    ctx: &Context,
    repo: &RepoArg,
    signer: &SignerArg,
    key: &std::path::Path,
    snapshot: &str,
) -> anyhow::Result<(
    Repository,
    crate::repo::crypto::SecretKey,
    crate::repo::snapshot::Snapshot,
)> {
    let repo = open_trusted(ctx, repo, signer)?;
    let key = load_secret(key)?;
    repo.check_key(&key)?;
    let snapshot = repo.find_snapshot(snapshot)?;
    Ok((repo, key, snapshot))
}

pub fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<i32> {
    let signing = load_secret(&args.signing_key)?;
    let recipients = args
        .recipients
        .iter()
        .map(|p| PublicCert::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let backend = target::create(&args.repo.repo, &args.repo.s3)?;
    let location = backend.location();
    let repo = Repository::init(backend, &recipients, &signing)?;
    ctx.pin_signer(&repo.config.id, &signing.public())?;
    outln!("{}", repo.config.id);
    eprintln!(
        "created repository {} at {}\n  signed by   {}\n  encrypted to {}",
        repo.config.id,
        location,
        signing.public().describe(),
        recipients
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(exit::OK)
}

/// Holds the repository's lock in the data directory for one writer at a time.
fn lock_repo(ctx: &Context, repo: &Repository) -> anyhow::Result<std::fs::File> {
    crate::catalog::lock_repository(&ctx.data_dir, &repo.config.id)?.ok_or_else(|| {
        CliError::new(
            exit::FAILED,
            format!(
                "another backup, forget or prune of repository {} is running; try again when it \
                 has finished",
                repo.config.id
            ),
        )
        .into()
    })
}

pub fn backup(ctx: &Context, args: BackupArgs) -> anyhow::Result<i32> {
    // Bad addresses are refused before anything is opened or recorded.
    let database = args.database.database()?;
    let (signing, repo, _lock, mut catalog) = open_for_writing(ctx, &args.repo, &args.signing_key)?;
    let mut cache = catalog.for_repo(&repo)?;
    let run = cache.start_run("backup", chrono::Utc::now())?;
    let options = BackupOptions {
        paths: args.paths.clone(),
        tags: args.tags.into_iter().collect::<BTreeMap<_, _>>(),
        hostname: args.hostname.unwrap_or_else(hostname),
        threads: 0,
        retain_until: args
            .retain_days
            .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
        time: None,
    };
    let progress = ctx.progress();
    let result = match database {
        Some(database) => backup::backup_streams(
            &repo,
            &signing,
            &mut cache,
            &options,
            database.source().as_mut(),
            &progress,
        ),
        None => backup::backup(&repo, &signing, &mut cache, &options, &progress),
    };
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            progress.finish_quietly();
            cache.finish_run(run, Err(&e.to_string()), chrono::Utc::now())?;
            return Err(e.into());
        }
    };
    let snapshot = &outcome.snapshot;
    cache.record_snapshot(snapshot)?;
    cache.save_file_cache(&outcome.paths_key, &snapshot.id, &outcome.file_cache)?;
    cache.finish_run(run, Ok(snapshot), chrono::Utc::now())?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    let s = &snapshot.manifest.stats;
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "id": snapshot.id.to_hex(),
                "time": snapshot.manifest.time,
                "files": s.files,
                "dirs": s.dirs,
                "bytes": s.bytes,
                "bytes_read": s.bytes_read,
                "bytes_added": s.bytes_added,
                "bytes_new": s.bytes_new,
                "packs_added": s.packs_added,
                "duration_ms": s.duration_ms,
                "retain_until": snapshot.manifest.retain_until,
                "objects_locked": outcome.locks.locked,
                "objects_already_locked": outcome.locks.already,
                "details": snapshot.manifest.details,
                "warnings": outcome.warnings,
            })
        );
    } else {
        outln!("{}", snapshot.id);
        eprintln!(
            "{} files, {} read, {} added in {:.1}s",
            s.files,
            human_bytes(s.bytes_read),
            human_bytes(s.bytes_added),
            s.duration_ms as f64 / 1000.0
        );
    }
    Ok(if outcome.incomplete() {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

fn hostname() -> String {
    crate::repo::session::this_host()
}

pub use crate::backend::human_bytes;

pub fn snapshots(ctx: &Context, args: SnapshotsArgs) -> anyhow::Result<i32> {
    let repo = open_trusted(ctx, &args.repo, &args.signer)?;
    let (snapshots, bad) = repo.snapshots()?;
    if args.json {
        let list: Vec<_> = snapshots
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id.to_hex(),
                    "time": s.manifest.time,
                    "hostname": s.manifest.hostname,
                    "paths": s.manifest.paths,
                    "tags": s.manifest.tags,
                    "details": s.manifest.details,
                    "parent": s.manifest.parent,
                    "stats": s.manifest.stats,
                    "retain_until": s.manifest.retain_until,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        outln!(
            "{:<10} {:<25} {:<16} {:>10}  paths",
            "id",
            "time",
            "host",
            "size"
        );
        for s in &snapshots {
            let m = &s.manifest;
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!(
                "{:<10} {:<25} {:<16} {:>10}  {}{}",
                s.id.short(),
                m.time.format("%Y-%m-%d %H:%M:%S UTC"),
                m.hostname,
                human_bytes(m.stats.bytes),
                m.paths.join(" "),
                if tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", tags.join(" "))
                }
            );
        }
    }
    for e in &bad {
        eprintln!("error: {e}");
    }
    Ok(if bad.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

pub fn ls(ctx: &Context, args: LsArgs) -> anyhow::Result<i32> {
    let (repo, key, snapshot) =
        open_snapshot(ctx, &args.repo, &args.signer, &args.key, &args.snapshot)?;
    let map = repo.chunk_map(&key, &snapshot.manifest.packs.iter().copied().collect())?;
    let mut reader = ChunkReader::new(&repo, &key, &map);
    let entries = repo.read_tree(&mut reader, &snapshot)?;
    let prefix = args
        .path
        .as_deref()
        .map(restore::normalize_include)
        .unwrap_or_default();
    let selected = entries.iter().filter(|e| {
        prefix.is_empty()
            || e.path == prefix
            || (e.path.starts_with(&prefix) && e.path.get(prefix.len()) == Some(&b'/'))
    });
    let mut any = false;
    for e in selected {
        any = true;
        let path = format!("/{}", e.path_lossy());
        let target = match &e.kind {
            EntryKind::Symlink { target } | EntryKind::Hardlink { target } => {
                Some(String::from_utf8_lossy(target).into_owned())
            }
            _ => None,
        };
        if args.json {
            outln!(
                "{}",
                serde_json::json!({
                    "path": path, "type": e.type_char().to_string(), "mode": format!("{:04o}", e.mode),
                    "uid": e.uid, "gid": e.gid, "size": e.size, "mtime": e.mtime_sec, "target": target,
                })
            );
        } else {
            let time = chrono::DateTime::from_timestamp(e.mtime_sec, e.mtime_nsec)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            let arrow = match (&e.kind, &target) {
                (EntryKind::Symlink { .. }, Some(t)) => format!(" -> {t}"),
                (EntryKind::Hardlink { .. }, Some(t)) => format!(" => /{t}"),
                _ => String::new(),
            };
            outln!(
                "{} {:04o} {:>5} {:>5} {:>12} {} {}{}",
                e.type_char(),
                e.mode,
                e.uid,
                e.gid,
                e.size,
                time,
                path,
                arrow
            );
        }
    }
    if !any && !prefix.is_empty() {
        return Err(CliError::new(
            exit::FAILED,
            format!(
                "nothing at /{} in snapshot {}",
                String::from_utf8_lossy(&prefix),
                snapshot.id.short()
            ),
        )
        .into());
    }
    Ok(exit::OK)
}

pub fn restore(ctx: &Context, args: RestoreArgs) -> anyhow::Result<i32> {
    let (repo, key, snapshot) =
        open_snapshot(ctx, &args.repo, &args.signer, &args.key, &args.snapshot)?;
    let progress = ctx.progress();
    use crate::source::connection::Engine;
    if let Some(address) = &args.to_postgres {
        let target = args.password.connect(Engine::Postgres, address)?;
        return restore_database(&args, target, &repo, &key, &snapshot, &progress);
    }
    if let Some(address) = &args.to_mysql {
        let target = args.password.connect(Engine::Mysql, address)?;
        return restore_database(&args, target, &repo, &key, &snapshot, &progress);
    }
    let target = args.target.clone().unwrap_or_default();
    let options = RestoreOptions {
        target: target.clone(),
        includes: args.includes,
        threads: 0,
    };
    let started = std::time::Instant::now();
    let outcome = restore::restore(&repo, &key, &snapshot, &options, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "snapshot": snapshot.id.to_hex(), "target": target, "files": outcome.files,
                "dirs": outcome.dirs, "symlinks": outcome.symlinks, "bytes": outcome.bytes,
                "duration_ms": started.elapsed().as_millis() as u64, "warnings": outcome.warnings,
            })
        );
    } else {
        eprintln!(
            "restored snapshot {} into {}: {} files, {} in {:.1}s",
            snapshot.id.short(),
            target.display(),
            outcome.files,
            human_bytes(outcome.bytes),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(exit::OK)
}

/// Restores a snapshot of a database source into a server: its roles or accounts, then its
/// database.
fn restore_database(
    args: &RestoreArgs,
    target: crate::source::connection::Connection,
    repo: &crate::repo::Repository,
    key: &SecretKey,
    snapshot: &crate::repo::snapshot::Snapshot,
    progress: &crate::progress::Terminal,
) -> anyhow::Result<i32> {
    use crate::progress::Progress;
    use crate::source::{connection::Engine, mariadb, postgres};
    let kind = target.engine.scheme();
    let database = snapshot.manifest.details.get("database");
    if snapshot.manifest.details.get("kind").map(String::as_str) != Some(kind) {
        return Err(CliError::new(
            exit::USAGE,
            format!(
                "snapshot {} is not of a {kind} source; restore it into a folder with --target",
                snapshot.id.short()
            ),
        )
        .into());
    }
    let database = database.map(String::as_str).unwrap_or("");
    let files = restore::SnapshotFiles::open(repo, key, snapshot)?;
    let started = std::time::Instant::now();
    let total = files.total();
    progress.phase("restoring", Some(total), true);
    let mut read = |name: &str, out: &mut dyn std::io::Write| files.write(name, out, progress);
    match target.engine {
        Engine::Postgres => postgres::restore(
            &target,
            &postgres::PostgresSource::dump_name(database),
            usize::from(args.jobs),
            &mut read,
        ),
        Engine::Mysql => mariadb::restore(&target, &snapshot.manifest.details, &mut read),
    }
    .inspect_err(|_| progress.finish_quietly())?;
    progress.finish();
    let elapsed = started.elapsed();
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "snapshot": snapshot.id.to_hex(), "database": target.describe(),
                "bytes": total, "duration_ms": elapsed.as_millis() as u64,
            })
        );
    } else {
        eprintln!(
            "restored snapshot {} into {} in {:.1}s",
            snapshot.id.short(),
            target.describe(),
            elapsed.as_secs_f64()
        );
    }
    Ok(exit::OK)
}
