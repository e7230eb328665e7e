//! `lifeboat repair index` and `lifeboat repair snapshots`: what to reach for when part of a
//! repository is damaged (see `repo::repair`).

use super::repo::{human_bytes, open_for_writing};
use super::{exit, Context, RepoArg};
use crate::repo::ids::SnapshotId;
use crate::repo::repair::{self, RepairSnapshotsOptions};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum RepairCommand {
    /// Rebuild the indexes of the packs no readable index covers (all of them, if every
    /// index is gone), from the packs themselves; then remove the damaged indexes.
    Index(IndexArgs),
    /// For each snapshot whose data is partly gone, write a new snapshot with what remains
    /// (tagged repaired-from=ID) and list what was lost. The original stays unless --forget.
    Snapshots(SnapshotsArgs),
}

/// What both repairs need: the repository as its signer, and a recipient's key.
#[derive(clap::Args)]
pub struct Common {
    #[command(flatten)]
    repo: RepoArg,
    /// A recipient's secret key: packs are read to see what they hold.
    #[arg(long, env = "LIFEBOAT_KEY")]
    key: PathBuf,
    /// The service's secret key: new indexes and snapshots are signed with it.
    #[arg(long, env = "LIFEBOAT_SIGNING_KEY")]
    signing_key: PathBuf,
    /// Say what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    common: Common,
    /// Forget each original once its repaired snapshot is stored (holds and Object Lock
    /// still keep it).
    #[arg(long)]
    forget: bool,
    /// The snapshots to look at (ids or unique prefixes); all when none are given.
    snapshots: Vec<String>,
}

pub fn run(ctx: &Context, command: RepairCommand) -> anyhow::Result<i32> {
    match command {
        RepairCommand::Index(a) => index(ctx, a),
        RepairCommand::Snapshots(a) => snapshots(ctx, a),
    }
}

fn index(ctx: &Context, args: IndexArgs) -> anyhow::Result<i32> {
    let c = &args.common;
    let (signing, repo, _lock, mut catalog) = open_for_writing(ctx, &c.repo, &c.signing_key)?;
    let key = super::load_secret(&c.key)?;
    let progress = ctx.progress();
    let report = repair::repair_index(&repo, &key, &signing, c.dry_run, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    let mut cache = catalog.for_repo(&repo)?;
    for (id, packs) in &report.written {
        cache.record_indexed(id, packs)?;
    }
    if c.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.damaged {
            eprintln!("damaged: {d}");
        }
        for p in &report.packs_unreadable {
            eprintln!("unreadable pack (its data is lost; see 'repair snapshots'): {p}");
        }
        let (wrote, removed) = if report.dry_run {
            ("would write", "would remove")
        } else {
            ("wrote", "removed")
        };
        eprintln!(
            "{} readable index(es) kept; {} pack(s) without one scanned ({} chunks); {wrote} {} \
             new index(es), {removed} {} damaged one(s)",
            report.indexes_kept,
            report.packs_scanned,
            report.chunks_found,
            report.indexes_written,
            report.indexes_removed
        );
        for l in &report.still_locked {
            eprintln!("kept, under Object Lock: {l}");
        }
    }
    Ok(if report.packs_unreadable.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

fn snapshots(ctx: &Context, args: SnapshotsArgs) -> anyhow::Result<i32> {
    let c = &args.common;
    let (signing, repo, _lock, mut catalog) = open_for_writing(ctx, &c.repo, &c.signing_key)?;
    let key = super::load_secret(&c.key)?;
    let mut ids: Vec<SnapshotId> = Vec::new();
    for spec in &args.snapshots {
        ids.push(repo.find_snapshot(spec)?.id);
    }
    let progress = ctx.progress();
    let options = RepairSnapshotsOptions {
        snapshots: ids,
        dry_run: c.dry_run,
    };
    let mut report = repair::repair_snapshots(&repo, &key, &signing, &options, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    let mut cache = catalog.for_repo(&repo)?;
    for (snapshot, index) in &report.written {
        if let Some((id, packs)) = index {
            cache.record_indexed(id, packs)?;
        }
        cache.record_snapshot(snapshot)?;
    }
    if args.forget && !c.dry_run {
        let originals: Vec<_> = report
            .repairs
            .iter()
            .filter(|r| r.repaired.is_some())
            .filter_map(|r| r.snapshot.parse::<SnapshotId>().ok())
            .filter_map(|id| repo.load_snapshot(&id).ok())
            .collect();
        let forgotten = crate::repo::prune::forget(&repo, &mut cache, &originals, false)?;
        for r in &mut report.repairs {
            r.forgotten = forgotten
                .forgotten
                .iter()
                .any(|id| id.to_hex() == r.snapshot);
        }
    }
    if c.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.repairs {
            let short = &r.snapshot[..12.min(r.snapshot.len())];
            eprintln!(
                "snapshot {short}: {} entr(ies) lost, because: {}",
                r.lost.len(),
                r.causes.join("; ")
            );
            for path in &r.lost {
                eprintln!("  lost: {path}");
            }
            match &r.repaired {
                Some(id) => eprintln!(
                    "  saved what remains as snapshot {} (tag repaired-from={short}){}",
                    &id[..12],
                    if r.forgotten {
                        "; the original is forgotten"
                    } else {
                        "; the original stays (--forget to forget it)"
                    }
                ),
                None if report.dry_run => eprintln!("  would save what remains"),
                None => eprintln!("  nothing could be saved"),
            }
        }
        eprintln!(
            "{} snapshot(s) checked: {} intact, {} with lost data{}",
            report.checked,
            report.intact,
            report.repairs.len(),
            if report.written.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} repaired snapshot(s) written ({})",
                    report.written.len(),
                    human_bytes(
                        report
                            .written
                            .iter()
                            .map(|(s, _)| s.manifest.stats.bytes_added)
                            .sum()
                    )
                )
            }
        );
    }
    Ok(if report.repairs.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
