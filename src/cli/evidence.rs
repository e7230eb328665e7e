//! `lifeboat evidence`: list, export and verify the signed, hash-chained records of backups and
//! drills.

use super::{exit, CliError, Context};
use crate::evidence::{chain, Record};
use crate::repo::crypto::PublicCert;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum EvidenceCommand {
    /// List the records in the catalog.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write records and their signatures into a folder (TENANT/NNNNNNNN.json and .json.asc).
    Export {
        /// The folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Check exported records offline: signatures, canonical form, and each tenant's chain.
    /// Names the first bad record and exits 3 if anything is wrong.
    Verify {
        /// A tenant's folder of records, or a folder of tenant folders.
        #[arg(required_unless_present = "repo")]
        path: Option<PathBuf>,
        /// Or the records a repository holds (`evidence/`): a folder, or s3://BUCKET/PREFIX.
        /// A customer needs only read access to their repository and the certificate.
        #[arg(long, conflicts_with = "path")]
        repo: Option<String>,
        #[command(flatten)]
        s3: super::target::S3Args,
        /// The service's public certificate.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, command: EvidenceCommand) -> anyhow::Result<i32> {
    match command {
        EvidenceCommand::List { tenant, json } => {
            let catalog = ctx.catalog()?;
            let records = catalog.evidence(tenant.as_deref())?;
            let mut rows = Vec::new();
            for e in &records {
                let r = Record::parse(&e.record).map_err(|why| {
                    CliError::new(
                        exit::DAMAGED,
                        format!(
                            "record {} of {} in the catalog: {why}",
                            e.sequence, e.tenant
                        ),
                    )
                })?;
                rows.push(r);
            }
            if json {
                let list: Vec<_> = records
                    .iter()
                    .zip(&rows)
                    .map(|(e, r)| serde_json::json!({ "sha256": e.sha256, "record": r }))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in &rows {
                    outln!(
                        "{} #{} {} {:?} {} {} {:?}{}",
                        r.tenant,
                        r.sequence,
                        r.recorded,
                        r.kind,
                        r.source.as_deref().unwrap_or("-"),
                        r.snapshot
                            .as_ref()
                            .map(|s| &s.id[..12.min(s.id.len())])
                            .unwrap_or("-"),
                        r.outcome,
                        r.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(exit::OK)
        }
        EvidenceCommand::Export { out, tenant } => {
            let catalog = ctx.catalog()?;
            let records = catalog.evidence(tenant.as_deref())?;
            let n = chain::export(&records, &out)?;
            eprintln!(
                "exported {n} record(s) into {}; check them with: lifeboat evidence verify {} --cert SERVICE.cert",
                out.display(),
                out.display()
            );
            Ok(exit::OK)
        }
        EvidenceCommand::Verify {
            path,
            repo,
            s3,
            cert,
            json,
        } => {
            let cert = PublicCert::load(&cert)?;
            // A repository's records are checked one by one as they are read, then as a
            // chain like an export.
            let scratch;
            let path = match (path, repo) {
                (Some(p), _) => p,
                (None, Some(repo)) => {
                    let backend = super::target::open(&repo, &s3)?;
                    let records = chain::read_from(backend.as_ref(), &cert)
                        .map_err(|e| CliError::new(exit::DAMAGED, format!("{repo}: {e}")))?;
                    if records.is_empty() {
                        return Err(CliError::new(
                            exit::FAILED,
                            format!("{repo} holds no evidence records"),
                        )
                        .into());
                    }
                    scratch = tempfile::tempdir()?;
                    chain::export(&records, scratch.path())?;
                    scratch.path().to_path_buf()
                }
                (None, None) => {
                    return Err(CliError::new(
                        exit::USAGE,
                        "give a folder of exported records, or --repo REPOSITORY",
                    )
                    .into())
                }
            };
            let verified = chain::verify(&path, &cert)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&verified)?);
            }
            for c in &verified.chains {
                eprintln!(
                    "{}: {} record(s), {} to {}{}, all signed by {} and chained; newest {}",
                    c.tenant,
                    c.records,
                    c.first,
                    c.last,
                    if c.partial {
                        " (the chain's earlier records are not here)"
                    } else {
                        ""
                    },
                    cert.describe(),
                    c.head
                );
            }
            for p in &verified.problems {
                eprintln!("BAD {}: {}", p.file, p.message);
            }
            Ok(if verified.problems.is_empty() {
                exit::OK
            } else {
                exit::DAMAGED
            })
        }
    }
}
