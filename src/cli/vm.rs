//! `lifeboat vm`: cold backups of VM sources, run at once from the command line.

use super::{data_dir, exit, load_config, CliError, Context};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum VmCommand {
    /// Shut a VM source down cleanly, back up its disk images to the source's targets, start it
    /// again and check that it came back. The steps and the downtime go into the evidence.
    /// Refused, with the VM left running, when it does not shut down in time (unless the source
    /// sets vm.force_off).
    ColdBackup {
        /// The source (kind vm) in the configuration.
        source: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
}

pub fn run(ctx: &Context, command: VmCommand) -> anyhow::Result<i32> {
    match command {
        VmCommand::ColdBackup { source, config } => {
            let loaded = load_config(&config)?;
            let data_dir = data_dir(ctx, &loaded);
            let place = super::catalog_of(ctx, &loaded);
            let outcome = crate::daemon::cold_backup_now(loaded, data_dir.clone(), &source);
            let mut catalog = place.open()?;
            let said = match &outcome {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("failed: {e}"),
            };
            catalog.audit(
                chrono::Utc::now(),
                &super::token::actor(),
                "cold backup",
                &source,
                &said,
            )?;
            match outcome {
                Ok(summary) => {
                    outln!("{summary}");
                    Ok(exit::OK)
                }
                Err(e) => Err(CliError::new(exit::FAILED, e).into()),
            }
        }
    }
}
