//! `lifeboat serve`: run the daemon.

use super::{exit, CliError, Context};
use crate::daemon::{self, Clock};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
    config: PathBuf,
    /// For tests and simulations: the instant the daemon's clock starts at.
    #[arg(long, env = "LIFEBOAT_CLOCK_START", hide = true)]
    clock_start: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// For tests and simulations: how much faster than real time the daemon's clock runs.
    #[arg(long, env = "LIFEBOAT_CLOCK_SPEED", hide = true, default_value_t = 1.0)]
    clock_speed: f64,
}

pub fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<i32> {
    let loaded = crate::config::load(&args.config)
        .map_err(|invalid| CliError::new(exit::FAILED, invalid.to_string().trim_end()))?;
    let data_dir = loaded
        .config
        .service
        .data_dir
        .clone()
        .unwrap_or_else(|| ctx.data_dir.clone());
    let clock = match args.clock_start {
        Some(start) => Clock::fake(start.with_timezone(&chrono::Utc), args.clock_speed),
        None if args.clock_speed != 1.0 => Clock::fake(chrono::Utc::now(), args.clock_speed),
        None => Clock::real(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let finished = runtime
        .block_on(daemon::serve(loaded, data_dir, clock, stop_signal()))
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    eprintln!("{finished} job(s) finished");
    Ok(exit::OK)
}

/// Completes on SIGTERM or Ctrl-C.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
