//! `lifeboat drill`: run restore drills from their specs (`restore-tests/*.toml`).

use super::{exit, load_secret, CliError, Context};
use crate::drill::{self, spec, Reason, Services};
use crate::evidence::Outcome;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DrillCommand {
    /// Run a drill now: restore into a scratch environment, check, measure, tear down, and
    /// write the evidence. Exits 0 when it passed, 1 when it failed.
    Run {
        /// The drill's spec (e.g. restore-tests/postgres-erp.toml).
        spec: PathBuf,
        /// The configuration file.
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
        /// A recipient's secret key to decrypt with (default: [service] drill_key).
        #[arg(long, env = "LIFEBOAT_KEY")]
        key: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Check a spec against the configuration without running it.
    Check {
        spec: PathBuf,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
}

fn load(config: &std::path::Path) -> anyhow::Result<crate::config::Loaded> {
    crate::config::load(config)
        .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()).into())
}

pub fn run(ctx: &Context, command: DrillCommand) -> anyhow::Result<i32> {
    match command {
        DrillCommand::Check { spec: path, config } => {
            let loaded = load(&config)?;
            let d = spec::load(&path, &loaded)
                .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
            println!(
                "{} is valid: source {} from target {}, {} environment, {} check(s){}",
                path.display(),
                d.spec.source.get_ref(),
                d.target,
                d.spec.environment.kind.get_ref().name(),
                d.checks.len(),
                d.spec
                    .schedule
                    .as_ref()
                    .map(|s| format!(", scheduled '{}'", s.get_ref()))
                    .unwrap_or_default()
            );
            Ok(exit::OK)
        }
        DrillCommand::Run {
            spec: path,
            config,
            key,
            json,
        } => {
            let loaded = load(&config)?;
            let d = spec::load(&path, &loaded)
                .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
            let service = &loaded.config.service;
            let key_path = key.or_else(|| service.drill_key.clone()).ok_or_else(|| {
                CliError::new(
                    exit::USAGE,
                    "a drill decrypts what it restores: give a recipient's secret key with --key \
                     or [service] drill_key",
                )
            })?;
            let key = load_secret(&key_path)?;
            let signing = load_secret(&service.signing_key)?;
            let data_dir = service
                .data_dir
                .clone()
                .unwrap_or_else(|| ctx.data_dir.clone());
            let now = || chrono::Utc::now();
            let services = Services {
                loaded: &loaded,
                data_dir: &data_dir,
                signing: &signing,
                key: &key,
                now: &now,
            };
            let progress = ctx.progress();
            let outcome = drill::run(&services, &d, Reason::Manual, None, &progress)?;
            progress.finish_quietly();
            let r = &outcome.record;
            if json {
                println!("{}", serde_json::to_string_pretty(r)?);
            } else {
                for c in &r.checks {
                    eprintln!(
                        "  {} {}: expected {}, got {}",
                        if c.passed { "ok  " } else { "FAIL" },
                        c.name,
                        c.expected,
                        c.actual
                    );
                }
                eprintln!(
                    "drill {} of {}: {} (snapshot {}, {}); evidence #{} of tenant {}",
                    d.name,
                    d.spec.source.get_ref(),
                    match r.outcome {
                        Outcome::Success => "passed".to_string(),
                        Outcome::Failure => format!(
                            "FAILED, {} incident: {}",
                            r.incident.as_ref().map_or("", |i| i.severity.as_str()),
                            r.error.as_deref().unwrap_or("")
                        ),
                    },
                    r.snapshot.as_ref().map_or("-", |s| &s.id[..12]),
                    r.pick.as_deref().unwrap_or("-"),
                    outcome.evidence.sequence,
                    r.tenant
                );
            }
            if let Some(p) = &outcome.copy_problem {
                eprintln!("warning: the evidence is not yet copied into the repository: {p}");
            }
            Ok(match r.outcome {
                Outcome::Success => exit::OK,
                Outcome::Failure => exit::FAILED,
            })
        }
    }
}
