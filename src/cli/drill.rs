//! `lifeboat drill`: run restore drills from their specs (`restore-tests/*.toml`).

use super::{exit, load_config as load, load_secret, now, CliError, Context};
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
    /// Plan a drill for a later time, as a customer's request: refused when the contract's
    /// test restores for that year are used up, saying how many.
    Request {
        spec: PathBuf,
        /// When it is to run (RFC 3339, e.g. 2026-12-10T08:00:00+01:00).
        #[arg(long)]
        at: chrono::DateTime<chrono::FixedOffset>,
        /// Who asked (recorded).
        #[arg(long)]
        by: Option<String>,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// Cancel a planned drill: possible until the contract's notice period before it.
    Cancel {
        /// The drill's id (see 'drill list').
        id: i64,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// Planned, running and past drills, with each contract's test restores left this year.
    List {
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
        /// Only this contract's.
        #[arg(long)]
        contract: Option<String>,
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

pub fn run(ctx: &Context, command: DrillCommand) -> anyhow::Result<i32> {
    match command {
        DrillCommand::Request {
            spec: path,
            at,
            by,
            config,
        } => {
            let loaded = load(&config)?;
            let d = spec::load(&path, &loaded)
                .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
            let tz = loaded.config.service.time_zone();
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            let at = at.with_timezone(&chrono::Utc);
            let (id, left) =
                drill::requests::request(&mut catalog, &loaded, &d, at, now()?, by.as_deref())
                    .map_err(|e| match e {
                        drill::requests::RequestError::Refused(why) => {
                            CliError::new(exit::FAILED, format!("request refused: {why}")).into()
                        }
                        other => anyhow::Error::from(other),
                    })?;
            outln!("{id}");
            eprintln!(
                "drill {id} ({}) planned for {}; {left} test restore(s) left in its year",
                d.name,
                at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
            );
            Ok(exit::OK)
        }
        DrillCommand::Cancel { id, config } => {
            let loaded = load(&config)?;
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            drill::requests::cancel(&mut catalog, &loaded, id, now()?).map_err(|e| match e {
                drill::requests::RequestError::Refused(why) => {
                    CliError::new(exit::FAILED, format!("cannot cancel: {why}")).into()
                }
                drill::requests::RequestError::NoSuchDrill(_) => {
                    CliError::new(exit::FAILED, e.to_string()).into()
                }
                other => anyhow::Error::from(other),
            })?;
            eprintln!("drill {id} cancelled; it no longer counts against the quota");
            Ok(exit::OK)
        }
        DrillCommand::List {
            config,
            contract,
            json,
        } => {
            let loaded = load(&config)?;
            let tz = loaded.config.service.time_zone();
            let catalog = super::catalog_of(ctx, &loaded).open()?;
            let drills = catalog.drills(contract.as_deref())?;
            let now = now()?;
            let mut quotas = serde_json::Map::new();
            for (name, c) in &loaded.config.contracts {
                if contract.as_ref().is_some_and(|only| only != name) {
                    continue;
                }
                let used = drill::quota::used_in_year(&drills, name, now, tz).len() as u32;
                quotas.insert(
                    name.clone(),
                    serde_json::json!({
                        "per_year": c.test_restores_per_year,
                        "used": used,
                        "left": c.test_restores_per_year.saturating_sub(used),
                    }),
                );
            }
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "drills": drills, "quotas": quotas })
                    )?
                );
            } else {
                for d in &drills {
                    outln!(
                        "{:>4} {} {:<10} {:<9} {} {} {}",
                        d.id,
                        d.planned_for.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                        d.reason,
                        d.state,
                        d.contract,
                        d.spec,
                        d.outcome.as_deref().unwrap_or("")
                    );
                }
                for (name, q) in &quotas {
                    eprintln!(
                        "contract {name}: {} of {} test restore(s) used this year, {} left",
                        q["used"], q["per_year"], q["left"]
                    );
                }
            }
            Ok(exit::OK)
        }
        DrillCommand::Check { spec: path, config } => {
            let loaded = load(&config)?;
            let d = spec::load(&path, &loaded)
                .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
            outln!(
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
            let clock = match std::env::var("LIFEBOAT_NOW") {
                Ok(_) => crate::daemon::Clock::fake(now()?, 1.0),
                Err(_) => crate::daemon::Clock::real(),
            };
            let now = || clock.now();
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
                outln!("{}", serde_json::to_string_pretty(r)?);
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
            for p in &outcome.problems {
                eprintln!("warning: {p}");
            }
            Ok(match r.outcome {
                Outcome::Success => exit::OK,
                Outcome::Failure => exit::FAILED,
            })
        }
    }
}
