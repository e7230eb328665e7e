//! `lifeboat tenant`: what concerns one tenant's repositories on every target. `rekey`
//! re-encrypts them to the tenant's current recipients; `purge` erases them (offboarding),
//! with a signed evidence record of the erasure.

use super::{exit, load_config, CliError, Context};
use crate::evidence::{chain, Check, Event, Outcome, Record, RecordKind};
use crate::repo::purge::{purge, PurgeReport};
use crate::repo::Repository;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum TenantCommand {
    /// Re-encrypt a tenant's repositories to its current recipients ([service] recipients
    /// and the tenant's own): new data follows the change at once; this re-encrypts what is
    /// already stored. Snapshot ids change (old → new are listed, and recorded in a signed
    /// evidence record). Crash-safe and resumable: run it again after an interruption. Ends
    /// with every byte read back and checked.
    Rekey {
        /// The tenant's id.
        tenant: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
        /// A secret key that decrypts the repositories now (the service's recovery key).
        #[arg(long, env = "LIFEBOAT_KEY")]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
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
        TenantCommand::Rekey {
            tenant,
            config,
            key,
            json,
        } => rekey_tenant(ctx, &tenant, &config, &key, json),
    }
}

/// The recipients a tenant's repositories are encrypted to: the service's and its own.
pub(super) fn recipients_of(
    loaded: &crate::config::Loaded,
    tenant: &str,
) -> anyhow::Result<Vec<crate::repo::crypto::PublicCert>> {
    use crate::repo::crypto::PublicCert;
    let mut out = Vec::new();
    for p in &loaded.config.service.recipients {
        out.push(PublicCert::load(p)?);
    }
    if let Some(t) = loaded.config.tenants.get(tenant) {
        for p in &t.recipients {
            out.push(PublicCert::load(p.get_ref())?);
        }
    }
    Ok(out)
}

/// Takes the writer's lock of a tenant's repository on target `target`, or says who holds it.
pub(super) fn lock_tenant_repository(
    data_dir: &std::path::Path,
    repo: &Repository,
    tenant: &str,
    target: &str,
) -> anyhow::Result<std::fs::File> {
    let lock = crate::catalog::lock_repository(data_dir, &repo.config.id)?;
    Ok(lock.ok_or_else(|| {
        CliError::new(
            exit::FAILED,
            format!("another writer holds {tenant}'s repository on {target}; try again later"),
        )
    })?)
}

/// `check --read-data` of a repository just rewritten: every byte read back, with the service's
/// signer and the recovery key.
pub(super) fn check_every_byte(
    backend: std::sync::Arc<dyn crate::backend::Backend>,
    signing: &crate::repo::crypto::SecretKey,
    key: &crate::repo::crypto::SecretKey,
    progress: &dyn crate::progress::Progress,
) -> anyhow::Result<crate::repo::check::CheckReport> {
    Ok(crate::repo::check::check(
        backend,
        &crate::repo::check::CheckOptions {
            signer: Some(signing.public()),
            key: Some(key),
            read_data: true,
        },
        progress,
    )?)
}

/// Tells the catalog about the indexes just written to `repo` and the snapshots it now holds.
pub(super) fn remember_rewrite(
    memory: &mut crate::catalog::RepoCatalog<'_>,
    repo: &Repository,
    indexes: &[(crate::repo::ids::IndexId, Vec<crate::repo::index::PackInfo>)],
) -> anyhow::Result<()> {
    for (id, packs) in indexes {
        memory.record_indexed(id, packs)?;
    }
    for s in &repo.snapshots()?.0 {
        memory.record_snapshot(s)?;
    }
    Ok(())
}

fn rekey_tenant(
    ctx: &Context,
    tenant: &str,
    config: &std::path::Path,
    key: &std::path::Path,
    json: bool,
) -> anyhow::Result<i32> {
    let loaded = load_config(config)?;
    if !loaded.config.tenants.contains_key(tenant) {
        return Err(CliError::new(
            exit::FAILED,
            format!("no tenant '{tenant}' in {}", config.display()),
        )
        .into());
    }
    let signing = super::load_secret(&loaded.config.service.signing_key)?;
    let key = super::load_secret(key)?;
    let recipients = recipients_of(&loaded, tenant)?;
    let data_dir = super::data_dir(ctx, &loaded);
    let progress = ctx.progress();
    let mut results = serde_json::Map::new();
    let mut healthy = true;
    let mut locked = false;
    let mut done: Vec<Rekeyed> = Vec::new();
    for (name, target) in &loaded.config.targets {
        let Some(backend) = target.open_existing(tenant)? else {
            continue;
        };
        if Repository::is_blank(backend.as_ref())? {
            continue;
        }
        let mut repo = Repository::open(backend.clone(), signing.public())?;
        super::pin_signer_in(&data_dir, &repo.config.id, &signing.public())?;
        let _lock = lock_tenant_repository(&data_dir, &repo, tenant, name)?;
        let mut catalog = super::catalog_of(ctx, &loaded).open()?;
        let mut memory = catalog.for_repo(&repo)?;
        let report = crate::repo::rekey::rekey(
            &mut repo,
            &key,
            &signing,
            &recipients,
            &mut memory,
            &progress,
        )
        .inspect_err(|_| progress.finish_quietly())?;
        remember_rewrite(&mut memory, &repo, &report.indexes)?;
        // It ends with every byte read back and checked.
        let check = check_every_byte(backend.clone(), &signing, &key, &progress)?;
        healthy &= check.healthy();
        locked |= !report.still_locked.is_empty();
        if !json {
            eprintln!(
                "{name}: {tenant}'s repository is encrypted to {} recipient(s) (config revision \
                 {}{}); {} snapshot(s) re-encrypted now, {} by an earlier run; {} written; \
                 check --read-data: {}",
                recipients.len(),
                report.revision,
                if report.recipients_changed {
                    ", changed now"
                } else {
                    ""
                },
                report.rekeyed,
                report.already,
                crate::backend::human_bytes(report.bytes_written),
                if check.healthy() {
                    "no problems".to_string()
                } else {
                    format!("{} problem(s)", check.problems.len())
                }
            );
            for p in &check.problems {
                eprintln!("  BAD {}: {}", p.object, p.reason);
            }
            for (old, new) in &report.renamed {
                eprintln!("  snapshot {old} is now {new}");
            }
            for l in &report.still_locked {
                eprintln!(
                    "  kept by Object Lock until {}: {} (readable with the old recipients' \
                     keys until then; run the rekey again after that date to delete it)",
                    crate::evidence::record::time(l.until),
                    l.object
                );
            }
        }
        results.insert(
            name.clone(),
            serde_json::json!({"rekey": report, "check": check}),
        );
        done.push(Rekeyed {
            target: name.clone(),
            backend,
            recipients: repo.config.recipients.len(),
            report,
            problems: check.problems.len(),
        });
    }
    if !done.is_empty() {
        let mut catalog = super::catalog_of(ctx, &loaded).open()?;
        let now = super::now()?;
        for d in &done {
            catalog.audit(
                now,
                &super::token::actor(),
                "rekey tenant",
                &format!("{tenant} on {}", d.target),
                &format!("{} snapshot(s) re-encrypted", d.report.rekeyed),
            )?;
        }
        chain::append(&mut catalog, &signing, rekey_record(tenant, &done, now))?;
        // The record goes where the tenant reads its evidence: into each repository.
        for d in &done {
            chain::copy_to(&catalog, d.backend.as_ref(), Some(tenant))?;
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    }
    if results.is_empty() {
        eprintln!("tenant '{tenant}' has no repository on any target yet");
    }
    if locked {
        eprintln!(
            "old snapshots are kept by Object Lock: run 'lifeboat tenant rekey {tenant}' again \
             once their locks end to delete them"
        );
    }
    Ok(if !healthy {
        exit::DAMAGED
    } else if locked {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// What a rekey did on one target.
struct Rekeyed {
    target: String,
    backend: std::sync::Arc<dyn crate::backend::Backend>,
    recipients: usize,
    report: crate::repo::rekey::RekeyReport,
    problems: usize,
}

/// The signed record of a rekey: per target what it is encrypted to now and how the check
/// went, then each snapshot's new id (the evidence of backups names the old ones).
fn rekey_record(tenant: &str, done: &[Rekeyed], now: chrono::DateTime<chrono::Utc>) -> Record {
    use crate::evidence::record::time;
    let mut record = Record::new(RecordKind::Rekey, tenant, now);
    record.timeline.push(Event {
        event: "rekeyed".into(),
        time: time(now),
    });
    let (mut rekeyed, mut bytes) = (0, 0);
    for d in done {
        let r = &d.report;
        rekeyed += r.rekeyed;
        bytes += r.bytes_written;
        record.checks.push(Check {
            name: format!("target {}", d.target),
            method: "rekey".into(),
            expected: format!(
                "every snapshot encrypted to the {} current recipient(s) (config revision {}), \
                 check --read-data clean",
                d.recipients, r.revision
            ),
            actual: format!(
                "{} snapshot(s) re-encrypted now, {} earlier; {} problem(s); {} old manifest(s) \
                 kept by Object Lock",
                r.rekeyed,
                r.already,
                d.problems,
                r.still_locked.len()
            ),
            passed: d.problems == 0 && r.still_locked.is_empty(),
        });
        for (old, new) in &r.renamed {
            record.checks.push(Check {
                name: format!("snapshot {old}"),
                method: "rekey".into(),
                expected: "re-encrypted under a new id".into(),
                actual: new.clone(),
                passed: true,
            });
        }
    }
    record.measured.insert("snapshots_rekeyed".into(), rekeyed);
    record.measured.insert("bytes_written".into(), bytes);
    if record.checks.iter().any(|c| !c.passed) {
        record.outcome = Outcome::Failure;
        record.error =
            Some("not every target ended clean: see the checks, and run the rekey again".into());
    }
    record
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
    let mut catalog = super::catalog_of(ctx, &loaded).open()?;
    let now = super::now()?;
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
