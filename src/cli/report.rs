//! `lifeboat report`: a contract's recovery report for a period, and the offline check of a
//! report bundle.

use super::{exit, load_config, load_secret, now, CliError, Context};
use crate::report::{self, bundle};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
    /// The contract.
    contract: Option<String>,
    /// A month (2026-11), a quarter (2026-Q3), a year (2026) or dates (2026-07-01..2026-09-30).
    #[arg(long)]
    period: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Html)]
    format: Format,
    /// Where to write it (default: standard output; a bundle needs a file).
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
    config: PathBuf,
}

#[derive(clap::Subcommand)]
enum ReportCommand {
    /// Check a report bundle offline: every signature, the evidence chain, and every figure
    /// recomputed from the records. Exits 3 when anything does not hold.
    Verify {
        bundle: PathBuf,
        /// The service certificate your provider gave you (default: the bundle's own, whose
        /// fingerprint you then compare).
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Html,
    Json,
    /// One row per source and day.
    Csv,
    /// A tar archive for auditors: the signed report, its evidence, the certificate, VERIFY.md.
    Bundle,
}

pub fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<i32> {
    if let Some(ReportCommand::Verify { bundle, cert, json }) = args.command {
        return verify(&bundle, cert, json);
    }
    let usage = |m: &str| CliError::new(exit::USAGE, m);
    let contract = args
        .contract
        .ok_or_else(|| usage("name the contract: lifeboat report CONTRACT --period 2026-Q3"))?;
    let period = args.period.ok_or_else(|| {
        usage("say which period: --period 2026-11, 2026-Q3, 2026 or 2026-07-01..2026-09-30")
    })?;
    let loaded = load_config(&args.config)?;
    let catalog = super::catalog_of(ctx, &loaded).open()?;
    let (report, stored) = report::from_catalog(&loaded, &catalog, &contract, &period, now()?)
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let bytes = match args.format {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&report)?;
            v.push(b'\n');
            v
        }
        Format::Csv => {
            report::render::days_csv(&report).map_err(|e| CliError::new(exit::FAILED, e))?
        }
        Format::Html => report::render::html(&report).into_bytes(),
        Format::Bundle => {
            let out = args
                .out
                .ok_or_else(|| usage("a bundle is an archive: say where with --out FILE.tar"))?;
            let signing = load_secret(&loaded.config.service.signing_key)?;
            let records = bundle::records_for(&report, &stored);
            bundle::write(&out, &report, &records, &signing)
                .map_err(|e| CliError::new(exit::FAILED, e))?;
            eprintln!(
                "wrote {} ({} evidence record(s)); check it with: lifeboat report verify {}",
                out.display(),
                records.len(),
                out.display()
            );
            return Ok(exit::OK);
        }
    };
    match args.out {
        Some(out) => crate::files::write_atomically(&out, &bytes, None)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(exit::OK)
}

fn verify(path: &std::path::Path, cert: Option<PathBuf>, json: bool) -> anyhow::Result<i32> {
    let cert = cert
        .map(|c| crate::repo::crypto::PublicCert::load(&c))
        .transpose()?;
    let verdict =
        bundle::verify(path, cert.as_ref()).map_err(|e| CliError::new(exit::DAMAGED, e))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&verdict)?);
    }
    eprintln!(
        "report of contract {} for {}: {} evidence record(s)",
        verdict.contract, verdict.period, verdict.records
    );
    for c in &verdict.checked {
        eprintln!("ok   {c}");
    }
    for p in &verdict.problems {
        eprintln!("BAD  {p}");
    }
    if verdict.certificate_from_bundle {
        eprintln!(
            "note: checked against the bundle's own certificate {}; compare its fingerprint with \
             the one your provider gave you, or pass --cert",
            verdict.certificate
        );
    }
    Ok(if verdict.problems.is_empty() {
        eprintln!("the report verifies");
        exit::OK
    } else {
        exit::DAMAGED
    })
}
