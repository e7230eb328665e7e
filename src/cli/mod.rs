//! The command line: argument parsing, shared options, exit codes. Each command group lives in
//! its own file and is a thin layer over the library.

/// `println!` for a command's output: a reader that went away (`| head -1`, `| true`) ends
/// the command quietly, as with other tools, instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output_line(format_args!($($arg)*))
    };
}

mod agent;
mod catalog;
mod config;
mod demo;
mod drill;
mod evidence;
mod hold;
mod keys;
mod migrate;
mod repair;
mod repo;
mod report;
mod schedule;
mod serve;
mod site;
mod target;
mod tenant;
mod token;
mod vm;

use crate::repo::crypto::{CryptoError, PublicCert, SecretKey};
use crate::repo::Error as RepoError;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Exit codes (also in the README).
pub mod exit {
    pub const OK: i32 = 0;
    /// The command failed; the message says why.
    pub const FAILED: i32 = 1;
    /// The command line was wrong.
    pub const USAGE: i32 = 2;
    /// Damaged or unauthentic data was found (check, restore, export).
    pub const DAMAGED: i32 = 3;
    /// A key or certificate is wrong or unusable for this repository.
    pub const KEY: i32 = 4;
    /// A snapshot was written, but some source entries could not be read.
    pub const INCOMPLETE: i32 = 5;
}

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Backups you can prove: encrypted, deduplicated, verified"
)]
pub struct Cli {
    /// Where the local catalog and pinned certificates live.
    #[arg(long, env = "LIFEBOAT_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate and inspect OpenPGP keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create a new repository.
    Init(repo::InitArgs),
    /// Back up files and folders.
    Backup(repo::BackupArgs),
    /// List snapshots.
    Snapshots(repo::SnapshotsArgs),
    /// List the files of a snapshot.
    Ls(repo::LsArgs),
    /// Restore a snapshot, or part of it, into a folder.
    Restore(repo::RestoreArgs),
    /// Verify the repository's integrity.
    Check(repo::CheckArgs),
    /// Write a snapshot as one encrypted tar.zst archive readable with stock tools.
    Export(repo::ExportArgs),
    /// Delete snapshots (their manifests); 'prune' then frees the data only they used.
    Forget(repo::ForgetArgs),
    /// Delete the data no snapshot needs. Objects under Object Lock are kept and listed.
    Prune(repo::PruneArgs),
    /// Repair damage: rebuild indexes from the packs, save what remains of snapshots whose
    /// data is partly lost.
    #[command(subcommand)]
    Repair(repair::RepairCommand),
    /// Keep snapshots whatever retention says (legal holds).
    #[command(subcommand)]
    Hold(hold::HoldCommand),
    /// Copy snapshots to another repository (a second site), sending only what it lacks.
    Copy(repo::CopyArgs),
    /// The recorded runs: source, tier, slot, start, end, result, bytes, error.
    Runs(catalog::RunsArgs),
    /// Run the daemon: scheduled backups and retention, as lifeboat.toml says.
    Serve(serve::ServeArgs),
    /// The service's configuration file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Tier schedules.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Tier retention.
    #[command(subcommand)]
    Retention(schedule::RetentionCommand),
    /// The local catalog.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Restore drills: restore into a scratch environment, check, measure, write evidence.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
    /// Signed, hash-chained records of backups and drills: list, export, verify offline.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Recovery reports per contract and period (HTML, JSON, CSV, or a bundle for auditors),
    /// and 'report verify BUNDLE' to check one offline.
    Report(report::ReportArgs),
    /// One tenant's repositories on every target: rekey (to its current recipients), purge
    /// (offboarding).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Upgrades of what earlier versions stored: split-tenants (a shared repository into each
    /// tenant's own).
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Bearer tokens for the API and the dashboard: create, list, revoke.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Cold backups of whole VMs: shut down, copy the disks, start again, check it came back.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Customer sites: enrollment tokens for their agents, the agents, revoking one.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// The agent at a customer's site: enroll it with the centre, check in.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
}

/// Writes one line of output; see `outln!`.
pub(crate) fn output_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(exit::OK),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(exit::FAILED);
        }
    }
}

/// Options every repository command shares.
#[derive(clap::Args, Clone)]
struct RepoArg {
    /// The repository: a local folder, or s3://BUCKET/PREFIX.
    #[arg(long, env = "LIFEBOAT_REPO", value_name = "FOLDER|s3://BUCKET/PREFIX")]
    repo: String,
    #[command(flatten)]
    s3: target::S3Args,
}

/// The service certificate to trust instead of the one pinned at init.
#[derive(clap::Args, Clone)]
struct SignerArg {
    /// The service's public certificate to authenticate the repository against (default: the
    /// one pinned in the data directory when the repository was created or first used).
    #[arg(long, env = "LIFEBOAT_SIGNER")]
    signer: Option<PathBuf>,
}

pub struct Context {
    data_dir: PathBuf,
    quiet: bool,
}

impl Context {
    /// The catalog of a command without a configuration: `catalog.sqlite` in the data
    /// directory, or `LIFEBOAT_CATALOG`.
    fn catalog(&self) -> anyhow::Result<crate::catalog::Catalog> {
        let place = crate::catalog::Place::new(&self.data_dir, catalog_from_env()?.as_deref());
        Ok(place.open()?)
    }

    fn progress(&self) -> crate::progress::Terminal {
        crate::progress::Terminal::new(!self.quiet)
    }

    fn pin_path(&self, repo_id: &str) -> PathBuf {
        crate::catalog::pin_path(&self.data_dir, repo_id)
    }

    /// Pins the service certificate of a repository (first use), or checks it against the pin.
    fn pin_signer(&self, repo_id: &str, cert: &PublicCert) -> anyhow::Result<()> {
        pin_signer_in(&self.data_dir, repo_id, cert)
    }

    /// The trusted service certificate: `--signer`, or the pinned one.
    fn trusted_signer(
        &self,
        backend: &dyn crate::backend::Backend,
        signer: &SignerArg,
    ) -> anyhow::Result<PublicCert> {
        if let Some(path) = &signer.signer {
            return Ok(PublicCert::load(path)?);
        }
        let id = crate::repo::Repository::peek_id(backend)?;
        let path = self.pin_path(&id);
        if !path.exists() {
            return Err(CliError::new(
                exit::KEY,
                format!(
                    "no trusted service certificate for repository {id} in {}; give the service's public certificate with --signer CERT",
                    self.data_dir.display()
                ),
            )
            .into());
        }
        Ok(PublicCert::load(&path)?)
    }
}

/// An error with the exit code it should end the program with.
#[derive(Debug)]
pub struct CliError {
    code: i32,
    message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(c) = e.downcast_ref::<CliError>() {
        return c.code;
    }
    if let Some(r) = e.downcast_ref::<RepoError>() {
        return match r {
            RepoError::WrongKey { .. }
            | RepoError::Crypto(CryptoError::Key(_) | CryptoError::Load { .. }) => exit::KEY,
            e if e.is_integrity() => exit::DAMAGED,
            _ => exit::FAILED,
        };
    }
    if e.downcast_ref::<CryptoError>().is_some() {
        return exit::KEY;
    }
    exit::FAILED
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/lifeboat"),
        None => PathBuf::from(".lifeboat"),
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let ctx = Context {
        data_dir: cli.data_dir.unwrap_or_else(default_data_dir),
        quiet: cli.quiet,
    };
    let result = match cli.command {
        Command::Keys(c) => keys::run(&ctx, c),
        Command::Init(a) => repo::init(&ctx, a),
        Command::Backup(a) => repo::backup(&ctx, a),
        Command::Snapshots(a) => repo::snapshots(&ctx, a),
        Command::Ls(a) => repo::ls(&ctx, a),
        Command::Restore(a) => repo::restore(&ctx, a),
        Command::Check(a) => repo::check(&ctx, a),
        Command::Export(a) => repo::export(&ctx, a),
        Command::Copy(a) => repo::copy(&ctx, a),
        Command::Forget(a) => repo::forget(&ctx, a),
        Command::Prune(a) => repo::prune(&ctx, a),
        Command::Hold(c) => hold::run(&ctx, c),
        Command::Repair(c) => repair::run(&ctx, c),
        Command::Catalog(c) => catalog::run(&ctx, c),
        Command::Evidence(c) => evidence::run(&ctx, c),
        Command::Report(a) => report::run(&ctx, a),
        Command::Token(c) => token::run(&ctx, c),
        Command::Tenant(c) => tenant::run(&ctx, c),
        Command::Migrate(c) => migrate::run(&ctx, c),
        Command::Vm(c) => vm::run(&ctx, c),
        Command::Site(c) => site::run(&ctx, c),
        Command::Agent(c) => agent::run(&ctx, c),
        Command::Drill(c) => drill::run(&ctx, c),
        Command::Schedule(c) => schedule::run(c),
        Command::Config(c) => config::run(c),
        Command::Serve(a) => serve::serve(&ctx, a),
        Command::Runs(a) => catalog::runs(&ctx, a),
        Command::Retention(c) => schedule::run_retention(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(r) = e.downcast_ref::<RepoError>() {
                if r.is_transient() {
                    eprintln!("hint: this may be temporary; running the command again may succeed");
                }
            }
            exit_code(&e)
        }
    }
}

/// Opens a repository for reading, authenticated against the trusted service certificate.
fn repo_open_trusted(
    ctx: &Context,
    repo: &RepoArg,
    signer: &SignerArg,
) -> anyhow::Result<crate::repo::Repository> {
    repo::open_trusted(ctx, repo, signer)
}

pub(crate) fn load_config(config: &std::path::Path) -> anyhow::Result<crate::config::Loaded> {
    let mut loaded = crate::config::load(config)
        .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
    if let Some(url) = catalog_from_env()? {
        loaded.config.service.catalog = Some(toml::Spanned::new(0..0, url));
    }
    Ok(loaded)
}

/// `LIFEBOAT_CATALOG`: the catalog in PostgreSQL (as `[service] catalog`, which it overrides),
/// for the service and the commands beside it. An agent's catalog is always its own.
fn catalog_from_env() -> anyhow::Result<Option<String>> {
    match std::env::var("LIFEBOAT_CATALOG") {
        Ok(url) if !url.is_empty() => {
            crate::catalog::db::postgres::check_url(&url)
                .map_err(|e| CliError::new(exit::USAGE, format!("LIFEBOAT_CATALOG: {e}")))?;
            Ok(Some(url))
        }
        _ => Ok(None),
    }
}

/// The time drills are planned, run and cancelled at: now, or `LIFEBOAT_NOW` (RFC 3339) for
/// tests and simulations (a drill's clock then starts there and runs at normal speed).
pub(crate) fn now() -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    match std::env::var("LIFEBOAT_NOW") {
        Ok(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| {
                CliError::new(
                    exit::USAGE,
                    format!("LIFEBOAT_NOW '{text}' is not an RFC 3339 time: {e}"),
                )
                .into()
            }),
        Err(_) => Ok(chrono::Utc::now()),
    }
}

/// Pins the service certificate of a repository in `data_dir` (first use), or checks it
/// against the pin there.
pub(crate) fn pin_signer_in(
    data_dir: &Path,
    repo_id: &str,
    cert: &PublicCert,
) -> anyhow::Result<()> {
    match crate::catalog::pin_signer(data_dir, repo_id, cert)? {
        None => Ok(()),
        Some(pinned) => Err(CliError::new(
            exit::KEY,
            format!(
                "repository {repo_id} is pinned to service certificate {} ({}), not {}",
                pinned.describe(),
                crate::catalog::pin_path(data_dir, repo_id).display(),
                cert.describe()
            ),
        )
        .into()),
    }
}

pub(crate) fn data_dir(ctx: &Context, loaded: &crate::config::Loaded) -> PathBuf {
    loaded
        .config
        .service
        .data_dir
        .clone()
        .unwrap_or_else(|| ctx.data_dir.clone())
}

/// The catalog a command on a loaded configuration works on (`[service] catalog`).
pub(crate) fn catalog_of(ctx: &Context, loaded: &crate::config::Loaded) -> crate::catalog::Place {
    crate::catalog::Place::of(&data_dir(ctx, loaded), &loaded.config)
}

fn load_secret(path: &Path) -> anyhow::Result<SecretKey> {
    Ok(SecretKey::load(path)?)
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every command and argument (unique names and flags, defaults
    /// that parse), which otherwise run only when that command is first used.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
