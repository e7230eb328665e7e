//! `lifeboat catalog`: the local catalog.

use super::{exit, load_secret, Context, RepoArg, SignerArg};
use crate::catalog::Catalog;

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
            let mut catalog = Catalog::open(&ctx.data_dir)?;
            let mut view = catalog.for_repo(&repository)?;
            let summary = view.rebuild(&repository, &key)?;
            ctx.pin_signer(&repository.config.id, repository.signer())?;
            eprintln!(
                "catalog rebuilt for repository {}: {} snapshots, {} indexes, {} packs, {} chunks",
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
