//! `lifeboat hold`: keep snapshots whatever retention says (legal holds).

use super::{exit, repo_open_trusted, CliError, Context, RepoArg, SignerArg};
use crate::repo::hold;

#[derive(clap::Subcommand)]
pub enum HoldCommand {
    /// Hold a snapshot: neither retention nor 'forget' deletes it until it is released.
    Place {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        signer: SignerArg,
        /// The snapshot: its id, a unique prefix of it, or "latest".
        snapshot: String,
        /// Why (shown wherever the hold keeps the snapshot), e.g. "legal hold case 2026-17".
        #[arg(long)]
        reason: String,
    },
    /// List the holds.
    List {
        #[command(flatten)]
        repo: RepoArg,
        #[arg(long)]
        json: bool,
    },
    /// Release the holds on a snapshot (only those with --reason, when given).
    Release {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        signer: SignerArg,
        snapshot: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

pub fn run(ctx: &Context, command: HoldCommand) -> anyhow::Result<i32> {
    match command {
        HoldCommand::Place {
            repo,
            signer,
            snapshot,
            reason,
        } => {
            if reason.trim().is_empty() {
                return Err(CliError::new(exit::USAGE, "give the hold a --reason").into());
            }
            let repository = repo_open_trusted(ctx, &repo, &signer)?;
            let s = repository.find_snapshot(&snapshot)?;
            hold::place(
                repository.backend().as_ref(),
                &repository.config.id,
                s.id,
                &reason,
                chrono::Utc::now(),
            )?;
            eprintln!("held snapshot {} ({reason})", s.id);
            Ok(exit::OK)
        }
        HoldCommand::List { repo, json } => {
            let backend = super::target::open(&repo.repo, &repo.s3)?;
            let id = crate::repo::Repository::peek_id(backend.as_ref())?;
            let found = hold::list(backend.as_ref(), &id)?;
            if json {
                let holds: Vec<_> = found.objects.iter().map(|(_, h)| h).collect();
                outln!("{}", serde_json::to_string_pretty(&holds)?);
            } else {
                for (_, h) in &found.objects {
                    outln!(
                        "{}  {}  {}  {}",
                        h.snapshot,
                        h.placed.format("%Y-%m-%d %H:%M UTC"),
                        h.host,
                        h.reason
                    );
                }
            }
            for p in &found.problems {
                eprintln!("ignored: {p}");
            }
            Ok(exit::OK)
        }
        HoldCommand::Release {
            repo,
            signer,
            snapshot,
            reason,
        } => {
            let repository = repo_open_trusted(ctx, &repo, &signer)?;
            // A full id needs no manifest: a hold can be released after its snapshot is gone.
            let id = match snapshot.parse::<crate::repo::ids::SnapshotId>() {
                Ok(id) => id,
                Err(_) => repository.find_snapshot(&snapshot)?.id,
            };
            let released = hold::release(
                repository.backend().as_ref(),
                &repository.config.id,
                &id,
                reason.as_deref(),
            )?;
            if released.is_empty() {
                return Err(CliError::new(
                    exit::FAILED,
                    format!("snapshot {id} has no such hold ('lifeboat hold list')"),
                )
                .into());
            }
            for h in &released {
                eprintln!("released the hold on {} ({})", h.snapshot, h.reason);
            }
            Ok(exit::OK)
        }
    }
}
