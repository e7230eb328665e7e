//! `lifeboat config`: the service's configuration file.

use super::{exit, CliError};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration without running anything; report every problem at once.
    Check {
        /// The configuration file.
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<i32> {
    match command {
        ConfigCommand::Check { config } => {
            let loaded = crate::config::load(&config)
                .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
            let drills = super::serve::load_drills(&config, &loaded)?;
            let c = &loaded.config;
            outln!(
                "{} is valid: {} target(s), {} tenant(s), {} contract(s), {} source(s)",
                config.display(),
                c.targets.len(),
                c.tenants.len(),
                c.contracts.len(),
                c.sources.len()
            );
            for (name, tier) in &loaded.tiers {
                let place = match loaded.config.sources.get(name).and_then(|s| s.site()) {
                    Some(site) => format!(", at site {site} (its agent runs it)"),
                    None => String::new(),
                };
                outln!(
                    "  {name}: tier {} ({}), cron '{}'{place}",
                    tier.name,
                    tier.description,
                    tier.cron
                );
            }
            for d in &drills {
                outln!(
                    "  drill {}: source {}, {} environment, {}",
                    d.name,
                    d.spec.source.get_ref(),
                    d.spec.environment.kind.get_ref().name(),
                    d.spec
                        .schedule
                        .as_ref()
                        .map(|s| format!("cron '{}'", s.get_ref()))
                        .unwrap_or_else(|| "on request".into())
                );
            }
            Ok(exit::OK)
        }
    }
}
