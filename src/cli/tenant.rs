//! `lifeboat tenant`: what concerns one tenant's repositories on every target. `purge`
//! erases them (offboarding), with a signed evidence record of the erasure.

use super::{exit, load_config, CliError, Context};
use crate::evidence::{chain, Check, Event, Outcome, Record, RecordKind};
use crate::repo::purge::{purge, PurgeReport};
use crate::repo::Repository;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum TenantCommand {
    /// Erase everything of a tenant on every target: snapshots, data, indexes, evidence,
    /// holds, the repository itself. Objects under Object Lock or a legal hold stay, listed
    /// with their dates; run it again later to finish. Writes a signed evidence record of
    /// what was erased and what is still kept. The tenant's sources must be gone from the
    /// configuration first.
    Purge {
        /// The tenant's id.
        tenant: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
        /// Say what would be erased; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, command: TenantCommand) -> anyhow::Result<i32> {
    match command {
        TenantCommand::Purge {
            tenant,
            config,
            dry_run,
            json,
        } => purge_tenant(ctx, &tenant, &config, dry_run, json),
    }
}

fn purge_tenant(
    ctx: &Context,
    tenant: &str,
    config: &std::path::Path,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let loaded = load_config(config)?;
    let sources: Vec<&String> = loaded
        .config
        .sources
        .iter()
        .filter(|(_, s)| s.tenant.get_ref() == tenant)
        .map(|(n, _)| n)
        .collect();
    if !sources.is_empty() {
        return Err(CliError::new(
            exit::FAILED,
            format!(
                "tenant '{tenant}' still has sources in {} ({}): remove them first, or the next \
                 backup makes its repositories again",
                config.display(),
                sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into());
    }
    let signing = super::load_secret(&loaded.config.service.signing_key)?;
    let data_dir = super::data_dir(ctx, &loaded);
    let mut catalog = crate::catalog::Catalog::open(&data_dir)?;
    let now = chrono::Utc::now();
    let mut reports: Vec<(String, PurgeReport)> = Vec::new();
    for (name, target) in &loaded.config.targets {
        let Some(backend) = target.open_existing(tenant)? else {
            continue;
        };
        if Repository::is_blank(backend.as_ref())? {
            continue;
        }
        let repo = Repository::open(backend, signing.public())?;
        let report = purge(&repo, dry_run)?;
        if !dry_run {
            if report.complete() {
                catalog.forget_repository(&repo.config.id)?;
                catalog.forget_usage(tenant, name)?;
            }
            catalog.audit(
                now,
                &super::token::actor(),
                "purge tenant",
                &format!("{tenant} on {name}"),
                &if report.complete() {
                    "ok".to_string()
                } else {
                    format!("{} object(s) kept", report.objects_left)
                },
            )?;
        }
        reports.push((name.clone(), report));
    }
    let complete = reports.iter().all(|(_, r)| r.complete());
    let mut evidence = None;
    if !dry_run {
        evidence = Some(chain::append(
            &mut catalog,
            &signing,
            erasure_record(tenant, &reports, now),
        )?);
    }
    if json {
        let targets: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|(n, r)| Ok((n.clone(), serde_json::to_value(r)?)))
            .collect::<anyhow::Result<_>>()?;
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tenant": tenant,
                "targets": targets,
                "complete": complete,
                "dry_run": dry_run,
                "evidence": evidence.as_ref().map(|e| e.sequence),
            }))?
        );
    }
    let verb = if dry_run { "would erase" } else { "erased" };
    if reports.is_empty() {
        eprintln!("tenant '{tenant}' has no repository on any target: nothing to erase");
    }
    for (name, r) in &reports {
        eprintln!(
            "{name}: {verb} {} object(s) ({}){}",
            r.objects_deleted(),
            crate::backend::human_bytes(r.bytes_deleted),
            if r.complete() {
                "; nothing is left".to_string()
            } else {
                format!("; {} object(s) kept", r.objects_left)
            }
        );
        for h in &r.held {
            eprintln!(
                "  kept by a legal hold: snapshot {} ({})",
                h.snapshot.short(),
                h.reason
            );
        }
        for l in &r.still_locked {
            eprintln!(
                "  kept by Object Lock until {}: {}",
                l.until.format("%Y-%m-%d %H:%M UTC"),
                l.object
            );
        }
    }
    if let Some(e) = &evidence {
        eprintln!(
            "the erasure is evidence record {} of tenant '{tenant}' (SHA-256 {})",
            e.sequence, e.sha256
        );
    }
    if !complete && !dry_run {
        eprintln!(
            "not all erased yet: run 'lifeboat tenant purge {tenant}' again once the locks \
             end and the holds are released"
        );
        return Ok(exit::FAILED);
    }
    Ok(exit::OK)
}

/// The signed record of an erasure: per target what went and what is still kept.
fn erasure_record(
    tenant: &str,
    reports: &[(String, PurgeReport)],
    now: chrono::DateTime<chrono::Utc>,
) -> Record {
    use crate::evidence::record::time;
    let mut record = Record::new(RecordKind::Erasure, tenant, now);
    record.timeline.push(Event {
        event: "erased".into(),
        time: time(now),
    });
    let (mut deleted, mut bytes, mut left) = (0, 0, 0);
    for (name, r) in reports {
        deleted += r.objects_deleted();
        bytes += r.bytes_deleted;
        left += r.objects_left;
        let mut kept: Vec<String> = r
            .still_locked
            .iter()
            .map(|l| format!("{} locked until {}", l.object, time(l.until)))
            .collect();
        kept.extend(
            r.held
                .iter()
                .map(|h| format!("snapshot {} held: {}", h.snapshot, h.reason)),
        );
        record.checks.push(Check {
            name: format!("target {name}"),
            method: "erase".into(),
            expected: "nothing left".into(),
            actual: if kept.is_empty() {
                format!("{} object(s) deleted, nothing left", r.objects_deleted())
            } else {
                format!(
                    "{} object(s) deleted; kept: {}",
                    r.objects_deleted(),
                    kept.join("; ")
                )
            },
            passed: r.complete(),
        });
    }
    record.measured.insert("objects_deleted".into(), deleted);
    record.measured.insert("bytes_deleted".into(), bytes);
    record.measured.insert("objects_left".into(), left);
    if left > 0 {
        record.outcome = Outcome::Failure;
        record.error = Some(format!(
            "{left} object(s) are kept by Object Lock or a legal hold; a later purge erases them"
        ));
    }
    record
}
