//! Repository commands that look after what is stored: check, export, copy (to a second
//! site), forget and prune.

use super::*;

pub fn check(ctx: &Context, args: CheckArgs) -> anyhow::Result<i32> {
    let backend = open_backend(&args.repo)?;
    let signer = match ctx.trusted_signer(backend.as_ref(), &args.signer) {
        Ok(cert) => Some(cert),
        Err(e) if args.key.is_none() => {
            eprintln!("note: signatures not checked: {e:#}");
            None
        }
        Err(e) => return Err(e),
    };
    let key = args.key.as_deref().map(load_secret).transpose()?;
    let progress = ctx.progress();
    let report = check::check(
        backend,
        &CheckOptions {
            signer,
            key: key.as_ref(),
            read_data: args.read_data,
        },
        &progress,
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            outln!("BAD {}: {}", p.object, p.reason);
        }
        eprintln!(
            "checked {} objects ({}), {} snapshots, {} packs{}{}: {}",
            report.objects,
            human_bytes(report.bytes),
            report.snapshots,
            report.packs,
            if report.chunks_read > 0 {
                format!(", {} chunks read", report.chunks_read)
            } else {
                String::new()
            },
            if report.unreferenced_packs > 0 {
                format!(
                    ", {} unreferenced packs (left by an interrupted writer, a backup or a \
                     copy; harmless, prune removes them)",
                    report.unreferenced_packs
                )
            } else {
                String::new()
            },
            if report.healthy() {
                "no problems found".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        );
        if let Some(line) = leftovers_line(&report.leftovers) {
            eprintln!("{line}");
        }
        if !report.vanished.is_empty() {
            eprintln!(
                "{} object(s) were listed but gone when read (deleted meanwhile, or a store's \
                 listing lagging behind; see docs/FORMAT.md): {}",
                report.vanished.len(),
                report.vanished.join(", ")
            );
        }
    }
    Ok(if report.healthy() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

/// What interrupted writers left, in one line: how much, how old, and what becomes of it.
fn leftovers_line(leftovers: &[crate::backend::Leftover]) -> Option<String> {
    if leftovers.is_empty() {
        return None;
    }
    let bytes: u64 = leftovers.iter().map(|l| l.bytes).sum();
    let oldest = leftovers.iter().filter_map(|l| l.age_seconds).max();
    let ended = leftovers.iter().filter(|l| l.writer_ended).count();
    Some(format!(
        "left behind by interrupted writers (harmless): {} temporary file(s) or upload(s), {}{}; \
         {ended} of them by writers of this host that have ended, removed at the next write \
         here; the rest belong to writers elsewhere or still running",
        leftovers.len(),
        human_bytes(bytes),
        oldest
            .map(|s| format!(
                ", the oldest {} old",
                crate::report::render::human_ms(s * 1000)
            ))
            .unwrap_or_default()
    ))
}

pub fn export(ctx: &Context, args: ExportArgs) -> anyhow::Result<i32> {
    let (repo, key, snapshot) =
        open_snapshot(ctx, &args.repo, &args.signer, &args.key, &args.snapshot)?;
    let progress = ctx.progress();
    let outcome = export_mod::export(&repo, &key, &snapshot, &args.out, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    eprintln!(
        "exported snapshot {} ({} entries, {}) to {} ({})",
        snapshot.id.short(),
        outcome.entries,
        human_bytes(outcome.bytes),
        args.out.display(),
        human_bytes(outcome.archive_bytes)
    );
    Ok(exit::OK)
}

pub fn copy(ctx: &Context, args: CopyArgs) -> anyhow::Result<i32> {
    let from = RepoArg {
        repo: args.from.clone(),
        s3: args.s3.clone(),
    };
    let source = open_trusted(ctx, &from, &args.signer)?;
    let snapshots = if args.snapshots.is_empty() {
        let (good, bad) = source.snapshots()?;
        if let Some(e) = bad.into_iter().next() {
            return Err(e.into());
        }
        good
    } else {
        args.snapshots
            .iter()
            .map(|s| source.find_snapshot(s))
            .collect::<Result<Vec<_>, _>>()?
    };
    let dest = target::open_or_create(&args.to, &args.s3)?;
    let progress = ctx.progress();
    let report = crate::repo::copy::copy(&source, &dest, &snapshots, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    // The copy must open as the same repository, authenticated by the same signer.
    let copied = Repository::open(dest.clone(), source.signer().clone())?;
    ctx.pin_signer(&copied.config.id, source.signer())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "copied {} snapshot(s) from {} to {}: {} pack(s) sent ({:.1} MiB), {} already there; {} snapshot(s) were there already",
            report.snapshots_copied.len(),
            source.backend().location(),
            dest.location(),
            report.packs_copied,
            report.bytes_copied as f64 / (1024.0 * 1024.0),
            report.packs_present,
            report.snapshots_present.len()
        );
    }
    Ok(exit::OK)
}

/// Opens a repository to delete from it: as its signer, with its catalog. No lock: forget
/// deletes only manifests, and prune deletes in two phases, safely beside running backups.
fn open_to_delete(
    ctx: &Context,
    repo: &RepoArg,
    signing_key: &std::path::Path,
) -> anyhow::Result<(SecretKey, Repository, Catalog)> {
    let signing = load_secret(signing_key)?;
    let repository = Repository::open(open_backend(repo)?, signing.public())?;
    ctx.pin_signer(&repository.config.id, &signing.public())?;
    Ok((signing, repository, ctx.catalog()?))
}

/// Opens a repository to change it: as its signer, holding its lock, with its catalog.
pub(in crate::cli) fn open_for_writing(
    ctx: &Context,
    repo: &RepoArg,
    signing_key: &std::path::Path,
) -> anyhow::Result<(SecretKey, Repository, std::fs::File, Catalog)> {
    let signing = load_secret(signing_key)?;
    let repository = Repository::open(open_backend(repo)?, signing.public())?;
    ctx.pin_signer(&repository.config.id, &signing.public())?;
    let lock = lock_repo(ctx, &repository)?;
    Ok((signing, repository, lock, ctx.catalog()?))
}

fn print_locked(locked: &[crate::repo::prune::Locked]) {
    if locked.is_empty() {
        return;
    }
    eprintln!(
        "kept {} object(s) still under Object Lock (they can be deleted once it ends):",
        locked.len()
    );
    for l in locked {
        eprintln!(
            "  {} locked until {}",
            l.object,
            l.until.format("%Y-%m-%d %H:%M UTC")
        );
    }
}

pub fn forget(ctx: &Context, args: ForgetArgs) -> anyhow::Result<i32> {
    let common = &args.common;
    let policy = args.policy();
    if policy.is_some() != args.snapshots.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "give either snapshots to forget or --keep-* options, not both and not neither",
        )
        .into());
    }
    let (_, repo, mut catalog) = open_to_delete(ctx, &common.repo, &common.signing_key)?;
    let mut plan: Vec<(String, Vec<retention::Decision>)> = Vec::new();
    let snapshots = match &policy {
        None => args
            .snapshots
            .iter()
            .map(|s| repo.find_snapshot(s))
            .collect::<Result<Vec<_>, _>>()?,
        Some(policy) => {
            let (all, bad) = repo.snapshots()?;
            if let Some(e) = bad.into_iter().next() {
                return Err(e.into());
            }
            let mut sources: BTreeMap<String, Vec<&crate::repo::snapshot::Snapshot>> =
                BTreeMap::new();
            for s in &all {
                sources.entry(source_of(s)).or_default().push(s);
            }
            let now = chrono::Utc::now();
            let pins = crate::repo::hold::pins(repo.backend().as_ref(), &repo.config.id)?;
            let mut doomed = Vec::new();
            for (source, group) in sources {
                let (decisions, forgotten) =
                    crate::repo::prune::by_policy(&group, policy, &chrono::Local, now, &pins);
                doomed.extend(forgotten);
                plan.push((source, decisions));
            }
            doomed
        }
    };
    let mut memory = catalog.for_repo(&repo)?;
    let report = crate::repo::prune::forget(&repo, &mut memory, &snapshots, common.dry_run)?;
    if common.json {
        let plan: Vec<serde_json::Value> = plan
            .iter()
            .map(
                |(source, decisions)| serde_json::json!({"source": source, "decisions": decisions}),
            )
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"plan": plan, "result": report}))?
        );
    } else {
        for (source, decisions) in &plan {
            outln!("{source}");
            for d in decisions {
                outln!(
                    "  {} {} {}  {}",
                    if d.keep { "keep  " } else { "forget" },
                    &d.id[..12],
                    d.time
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M"),
                    d.reasons.join("; ")
                );
            }
        }
        for id in &report.forgotten {
            outln!(
                "{}{id}",
                if common.dry_run {
                    "would forget "
                } else {
                    "forgot "
                }
            );
        }
        for h in &report.held {
            eprintln!("kept {} (held: {})", h.snapshot, h.reason);
        }
        print_locked(&report.still_locked);
        if !report.forgotten.is_empty() && !common.dry_run {
            eprintln!("run 'lifeboat prune' to delete the data only these snapshots used");
        }
    }
    Ok(exit::OK)
}

pub fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<i32> {
    let common = &args.common;
    let (_, repo, mut catalog) = open_to_delete(ctx, &common.repo, &common.signing_key)?;
    let mut memory = catalog.for_repo(&repo)?;
    let progress = ctx.progress();
    let options = crate::repo::prune::PruneOptions {
        dry_run: common.dry_run,
        ..Default::default()
    };
    let report = crate::repo::prune::prune(&repo, &mut memory, options, &progress)
        .inspect_err(|_| progress.finish_quietly())?;
    if common.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_prune(&report);
    }
    Ok(exit::OK)
}

fn print_prune(report: &crate::repo::prune::PruneReport) {
    let (would, marked) = if report.dry_run {
        ("would delete", "would mark")
    } else {
        ("deleted", "marked")
    };
    eprintln!(
        "{} pack(s) in use by {} snapshot(s); {marked} {} unused pack(s) for deletion",
        report.packs_kept, report.snapshots, report.packs_marked
    );
    eprintln!(
        "{would} {} pack(s) ({}) and {} index(es){}",
        report.packs_deleted,
        human_bytes(report.bytes_freed),
        report.indexes_deleted,
        if report.packs_spared > 0 {
            format!(
                "; kept {} marked pack(s) that new snapshots use",
                report.packs_spared
            )
        } else {
            String::new()
        }
    );
    for w in &report.waiting {
        eprintln!(
            "{} marked pack(s) wait for a later prune, once no running writer may use them: \
             {}",
            w.packs,
            w.sessions.join("; ")
        );
    }
    for s in &report.stale_sessions {
        eprintln!("removed the session of a {s}");
    }
    for p in &report.problems {
        eprintln!("ignored: {p}");
    }
    print_locked(&report.still_locked);
}
