//! `lifeboat catalog`: the local catalog.

use super::{exit, load_secret, Context, RepoArg, SignerArg};
use crate::evidence::chain;

#[derive(clap::Subcommand)]
pub enum CatalogCommand {
    /// Recreate the catalog's view of a repository from the repository alone.
    Rebuild {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        signer: SignerArg,
        /// A recipient's secret key (indexes are encrypted).
        #[arg(long, env = "LIFEBOAT_KEY")]
        key: std::path::PathBuf,
    },
}

pub fn run(ctx: &Context, command: CatalogCommand) -> anyhow::Result<i32> {
    match command {
        CatalogCommand::Rebuild { repo, signer, key } => {
            let repository = super::repo_open_trusted(ctx, &repo, &signer)?;
            let key = load_secret(&key)?;
            let mut catalog = ctx.catalog()?;
            let mut view = catalog.for_repo(&repository)?;
            let summary = view.rebuild(&repository, &key)?;
            drop(view);
            // Evidence records the repository holds, each checked against the service key.
            let mut recovered = 0;
            for e in chain::read_from(repository.backend().as_ref(), repository.signer())? {
                if catalog.restore_evidence(&e)? {
                    recovered += 1;
                }
            }
            ctx.pin_signer(&repository.config.id, repository.signer())?;
            eprintln!(
                "catalog rebuilt for repository {}: {} snapshots, {} indexes, {} packs, {} chunks, \
                 {recovered} evidence record(s) recovered",
                repository.config.id,
                summary.snapshots,
                summary.indexes,
                summary.packs,
                summary.chunks
            );
            Ok(exit::OK)
        }
    }
}

#[derive(clap::Args)]
pub struct RunsArgs {
    /// Only the runs of this source (the daemon's).
    #[arg(long)]
    source: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `lifeboat runs`: every recorded run, from the catalog.
pub fn runs(ctx: &Context, args: RunsArgs) -> anyhow::Result<i32> {
    let catalog = ctx.catalog()?;
    let runs: Vec<_> = catalog
        .runs(None)?
        .into_iter()
        .filter(|r| args.source.is_none() || r.source == args.source)
        .collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(exit::OK);
    }
    for r in &runs {
        outln!(
            "{:>5} {} {:<6} {:<8} {:<16} {:<7} {:<25} {}",
            r.id,
            r.started,
            r.kind,
            r.result,
            r.source.as_deref().unwrap_or("-"),
            r.tier.as_deref().unwrap_or("-"),
            r.scheduled.as_deref().unwrap_or("-"),
            match (&r.snapshot, &r.error) {
                (_, Some(e)) => e.clone(),
                (Some(s), None) => format!(
                    "snapshot {} ({} bytes read, {} added)",
                    &s[..s.len().min(12)],
                    r.bytes_read.unwrap_or(0),
                    r.bytes_added.unwrap_or(0)
                ),
                (None, None) => r.summary.clone().unwrap_or_default(),
            }
        );
    }
    Ok(exit::OK)
}
