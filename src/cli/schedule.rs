//! `lifeboat schedule` and `lifeboat retention`: what a tier's schedule and retention do.

use super::{exit, CliError};
use crate::schedule::simulate::simulate;
use crate::schedule::tier::Tier;

#[derive(clap::Subcommand)]
pub enum ScheduleCommand {
    /// Print the next runs of a configured source, or of a tier.
    Preview {
        /// A source of the configuration; its tier and the service's time zone are used.
        source: Option<String>,
        /// Instead of a source: a shipped tier (90/48, 90/4, 14/1, cold-vm-quarterly) or
        /// DAYS/PER_DAY.
        #[arg(long, conflicts_with = "source", required_unless_present = "source")]
        tier: Option<String>,
        /// The configuration file (with SOURCE).
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: std::path::PathBuf,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        next: usize,
        /// IANA time zone the schedule runs in (with --tier).
        #[arg(long, env = "LIFEBOAT_TZ", default_value = "UTC")]
        tz: String,
        /// Start from this time (RFC 3339) instead of now.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
}

pub fn run(command: ScheduleCommand) -> anyhow::Result<i32> {
    match command {
        ScheduleCommand::Preview {
            source,
            tier,
            config,
            next,
            tz,
            from,
        } => {
            let (tier, zone) = match (source, tier) {
                (Some(source), _) => {
                    let loaded = crate::config::load(&config).map_err(|invalid| {
                        CliError::new(exit::FAILED, invalid.to_string().trim_end())
                    })?;
                    let tier = loaded.tiers.get(&source).cloned().ok_or_else(|| {
                        CliError::new(
                            exit::USAGE,
                            format!(
                                "no source '{source}' in {} (sources: {})",
                                config.display(),
                                loaded.tiers.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?;
                    (tier, loaded.config.service.time_zone())
                }
                (None, Some(tier)) => (
                    Tier::named(&tier).map_err(|e| CliError::new(exit::USAGE, e))?,
                    zone(&tz)?,
                ),
                (None, None) => {
                    return Err(CliError::new(exit::USAGE, "give a SOURCE or --tier").into())
                }
            };
            let from = from
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(chrono::Utc::now);
            outln!(
                "{} ({}): cron '{}' in {zone}",
                tier.name,
                tier.description,
                tier.cron
            );
            for t in tier.runs(&zone, from, next) {
                outln!(
                    "  {}",
                    t.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z")
                );
            }
            Ok(exit::OK)
        }
    }
}

#[derive(clap::Subcommand)]
pub enum RetentionCommand {
    /// Print, day by day, how many snapshots a tier keeps and a storage projection.
    Simulate {
        /// A shipped tier (90/48, 90/4, 14/1, cold-vm-quarterly) or DAYS/PER_DAY.
        #[arg(long)]
        tier: String,
        /// How many days to simulate.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// Size of the data set, in GiB.
        #[arg(long, default_value_t = 10.0, value_name = "GIB")]
        size_gib: f64,
        /// Share of the data set that changes each day: `2%` or `0.02`.
        #[arg(long, default_value = "2%", value_parser = parse_rate)]
        change_rate: f64,
        /// IANA time zone the schedule runs in.
        #[arg(long, env = "LIFEBOAT_TZ", default_value = "UTC")]
        tz: String,
        /// Start from this time (RFC 3339) instead of now.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::FixedOffset>>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("'{text}' is not a rate such as 2% or 0.02"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("'{text}' is not between 0% and 100%"))
    }
}

fn zone(tz: &str) -> Result<chrono_tz::Tz, CliError> {
    tz.parse().map_err(|_| {
        CliError::new(
            exit::USAGE,
            format!("'{tz}' is not an IANA time zone such as Europe/Berlin"),
        )
    })
}

pub fn run_retention(command: RetentionCommand) -> anyhow::Result<i32> {
    match command {
        RetentionCommand::Simulate {
            tier,
            days,
            size_gib,
            change_rate,
            tz,
            from,
            json,
        } => {
            let tier = Tier::named(&tier).map_err(|e| CliError::new(exit::USAGE, e))?;
            if !(size_gib.is_finite() && size_gib > 0.0) {
                return Err(CliError::new(exit::USAGE, "--size-gib must be more than 0").into());
            }
            let zone = zone(&tz)?;
            let from = from
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(chrono::Utc::now);
            let size = (size_gib * (1u64 << 30) as f64) as u64;
            let result = simulate(&tier, &zone, from, days, size, change_rate);
            if json {
                outln!("{}", serde_json::to_string_pretty(&result)?);
                return Ok(exit::OK);
            }
            outln!(
                "{} ({}), {size_gib} GiB changing {:.1}% a day, in {zone}",
                tier.name,
                tier.description,
                change_rate * 100.0
            );
            outln!(
                "{:>5}  {:<10}  {:>5}  {:>6}  {:>12}",
                "day",
                "date",
                "runs",
                "kept",
                "stored GiB"
            );
            for d in &result {
                outln!(
                    "{:>5}  {:<10}  {:>5}  {:>6}  {:>12.1}",
                    d.day,
                    d.date,
                    d.runs,
                    d.kept,
                    d.stored_bytes as f64 / (1u64 << 30) as f64
                );
            }
            Ok(exit::OK)
        }
    }
}
