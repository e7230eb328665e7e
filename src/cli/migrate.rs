//! `lifeboat migrate`: upgrades of what earlier versions stored. `split-tenants` carries a
//! shared repository (every tenant's snapshots in one, per target) over into each tenant's
//! own repository, checks each with `--read-data`, and leaves the shared one for the
//! operator to delete.

use super::tenant::{check_every_byte, lock_tenant_repository, remember_rewrite};
use super::{exit, load_config, CliError, Context};
use crate::repo::snapshot::Snapshot;
use crate::repo::split::{split_into, SplitReport};
use crate::repo::{transfer, Repository};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum MigrateCommand {
    /// Copy each tenant's snapshots, holds and evidence out of the shared repository that
    /// earlier versions kept on each target into the tenant's own repository there,
    /// re-encrypted to its recipients; then check every tenant repository with --read-data.
    /// Only reads the shared repository and deletes nothing: delete it yourself once the
    /// tenants' repositories are checked. Resumable: run it again after an interruption.
    SplitTenants {
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
        /// A secret key that decrypts the shared repository (the service's recovery key).
        #[arg(long, env = "LIFEBOAT_KEY")]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, command: MigrateCommand) -> anyhow::Result<i32> {
    match command {
        MigrateCommand::SplitTenants { config, key, json } => split(ctx, &config, &key, json),
    }
}

/// What the split did on one target.
#[derive(serde::Serialize)]
struct TargetSplit {
    /// The shared repository, left as it was.
    shared: String,
    tenants: BTreeMap<String, TenantSplit>,
    /// Snapshots of no tenant the configuration has (by their `tenant` tag, or their
    /// `source`'s): left in the shared repository.
    unassigned: Vec<String>,
}

#[derive(serde::Serialize)]
struct TenantSplit {
    repository: String,
    #[serde(flatten)]
    split: SplitReport,
    evidence_copied: usize,
    check: crate::repo::check::CheckReport,
}

/// Which tenant a snapshot of a shared repository belongs to: its `tenant` tag, else the
/// tenant of the source its `source` tag names (`tenant_of_source`).
fn tenant_of(s: &Snapshot, tenant_of_source: &BTreeMap<String, String>) -> Option<String> {
    if let Some(t) = s.manifest.tags.get("tenant").filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    s.manifest
        .tags
        .get("source")
        .and_then(|source| tenant_of_source.get(source))
        .cloned()
}

fn split(ctx: &Context, config: &Path, key: &Path, json: bool) -> anyhow::Result<i32> {
    let loaded = load_config(config)?;
    let signing = super::load_secret(&loaded.config.service.signing_key)?;
    let key = super::load_secret(key)?;
    if loaded.config.service.recipients.is_empty() {
        return Err(CliError::new(
            exit::FAILED,
            "[service] lists no recipients to create the tenants' repositories for",
        )
        .into());
    }
    let data_dir = super::data_dir(ctx, &loaded);
    let progress = ctx.progress();
    let tenant_of_source: BTreeMap<String, String> = loaded
        .config
        .sources
        .iter()
        .map(|(name, s)| (name.clone(), s.tenant.get_ref().clone()))
        .collect();
    let mut results: BTreeMap<String, TargetSplit> = BTreeMap::new();
    for (name, target) in &loaded.config.targets {
        let Some(shared) = target.open_shared()? else {
            continue;
        };
        if Repository::is_blank(shared.as_ref())? {
            continue;
        }
        let src = Repository::open(shared.clone(), signing.public())?;
        super::pin_signer_in(&data_dir, &src.config.id, &signing.public())?;
        src.check_key(&key)?;
        let (snapshots, _) = src.snapshots()?;
        let mut by_tenant: BTreeMap<String, Vec<&Snapshot>> = BTreeMap::new();
        let mut unassigned = Vec::new();
        for s in &snapshots {
            match tenant_of(s, &tenant_of_source) {
                Some(t) if loaded.config.tenants.contains_key(&t) => {
                    by_tenant.entry(t).or_default().push(s)
                }
                _ => unassigned.push(s.id.to_hex()),
            }
        }
        let all: Vec<_> = by_tenant.values().flatten().copied().collect();
        let map = transfer::source_map(&src, &key, &all)?;
        let mut tenants = BTreeMap::new();
        for (tenant, mine) in &by_tenant {
            let recipients = super::tenant::recipients_of(&loaded, tenant)?;
            let (backend, fresh) = target.open_or_create(tenant)?;
            let mut dst = if fresh || Repository::is_blank(backend.as_ref())? {
                Repository::init(backend.clone(), &recipients, &signing)?
            } else {
                Repository::open(backend.clone(), signing.public())?
            };
            super::pin_signer_in(&data_dir, &dst.config.id, &signing.public())?;
            let _lock = lock_tenant_repository(&data_dir, &dst, tenant, name)?;
            if !dst.encrypts_to(&recipients) {
                dst.set_recipients(&signing, &recipients)?;
            }
            let split = split_into(&src, &key, &dst, &signing, mine, &map, &progress)
                .inspect_err(|_| progress.finish_quietly())?;
            let evidence_copied = crate::evidence::chain::copy_between(
                shared.as_ref(),
                backend.as_ref(),
                tenant,
                &signing.public(),
            )?;
            remember(&data_dir, &dst, &split)?;
            let check = check_every_byte(backend.clone(), &signing, &key, &progress)?;
            tenants.insert(
                tenant.clone(),
                TenantSplit {
                    repository: target.location_for(tenant),
                    split,
                    evidence_copied,
                    check,
                },
            );
        }
        results.insert(
            name.clone(),
            TargetSplit {
                shared: shared.location(),
                tenants,
                unassigned,
            },
        );
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    }
    say(&results, &loaded, config);
    let healthy = results
        .values()
        .flat_map(|t| t.tenants.values())
        .all(|t| t.check.healthy());
    let complete = results.values().all(|t| t.unassigned.is_empty());
    Ok(if !healthy {
        exit::DAMAGED
    } else if !complete {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// The catalog learns the tenant repository's new indexes and snapshots.
fn remember(data_dir: &Path, dst: &Repository, split: &SplitReport) -> anyhow::Result<()> {
    let mut catalog = crate::catalog::Catalog::open(data_dir)?;
    let mut memory = catalog.for_repo(dst)?;
    remember_rewrite(&mut memory, dst, &split.indexes)
}

fn say(results: &BTreeMap<String, TargetSplit>, loaded: &crate::config::Loaded, config: &Path) {
    if results.is_empty() {
        eprintln!(
            "no target in {} holds a shared repository: nothing to split",
            config.display()
        );
    }
    for (name, t) in results {
        for (tenant, s) in &t.tenants {
            eprintln!(
                "{name}: {tenant}: {} snapshot(s) copied now, {} by an earlier run, {} hold(s), \
                 {} evidence record(s), {} written, into {}; check --read-data: {}",
                s.split.migrated,
                s.split.already,
                s.split.holds_placed,
                s.evidence_copied,
                crate::backend::human_bytes(s.split.bytes_written),
                s.repository,
                if s.check.healthy() {
                    "no problems".to_string()
                } else {
                    format!("{} problem(s)", s.check.problems.len())
                }
            );
            for p in &s.check.problems {
                eprintln!("  BAD {}: {}", p.object, p.reason);
            }
            for (old, new) in &s.split.renamed {
                eprintln!("  snapshot {old} is now {new}");
            }
        }
        for id in &t.unassigned {
            eprintln!(
                "{name}: snapshot {id} belongs to no tenant of {} (by its tenant tag or its \
                 source's): left in the shared repository; add the tenant and run this again",
                config.display()
            );
        }
        let target = &loaded.config.targets[name];
        eprintln!(
            "{name}: the shared repository at {} is left as it was. Once the tenants' \
             repositories are checked, delete it: {}",
            t.shared,
            delete_hint(target)
        );
    }
}

/// How the operator deletes a target's shared repository (and nothing of the tenants').
fn delete_hint(target: &crate::config::Target) -> String {
    let folders = "config data index snapshots sessions marks holds evidence tmp";
    match target.kind.get_ref() {
        crate::config::TargetKind::S3 => {
            let base = target.url.as_ref().map_or("", |u| u.get_ref().as_str());
            let base = base.trim_end_matches('/');
            format!(
                "for f in {folders}; do aws s3 rm --recursive {base}/$f/; done (the tenants' \
                 repositories are the other prefixes)"
            )
        }
        crate::config::TargetKind::Local => {
            let root = target
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
            format!(
                "cd {root} && rm -r {folders} (the tenants' repositories are the other folders)"
            )
        }
    }
}
