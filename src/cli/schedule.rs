//! `lifeboat schedule`: what a tier's schedule does.

use super::{exit, CliError};
use crate::schedule::tier::Tier;

#[derive(clap::Subcommand)]
pub enum ScheduleCommand {
    /// Print a tier's next runs in a time zone.
    Preview {
        /// A shipped tier (90/48, 90/4, 14/1, cold-vm-quarterly) or DAYS/PER_DAY.
        #[arg(long)]
        tier: String,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        next: usize,
        /// IANA time zone the schedule runs in.
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
            tier,
            next,
            tz,
            from,
        } => {
            let tier = Tier::named(&tier).map_err(|e| CliError::new(exit::USAGE, e))?;
            let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
                CliError::new(
                    exit::USAGE,
                    format!("'{tz}' is not an IANA time zone such as Europe/Berlin"),
                )
            })?;
            let from = from
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(chrono::Utc::now);
            println!(
                "{} ({}): cron '{}' in {zone}",
                tier.name, tier.description, tier.cron
            );
            for t in tier.runs(&zone, from, next) {
                println!(
                    "  {}",
                    t.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z")
                );
            }
            Ok(exit::OK)
        }
    }
}
