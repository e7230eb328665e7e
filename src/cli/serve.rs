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
    let drills = load_drills(&args.config, &loaded)?;
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
        .block_on(daemon::serve(
            loaded,
            drills,
            data_dir,
            clock,
            stop_signal(),
        ))
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    eprintln!("{finished} job(s) finished");
    Ok(exit::OK)
}

/// The drill specs `[service] drills` names, relative to the configuration's folder; every
/// problem of every spec is reported before the daemon starts.
pub fn load_drills(
    config: &std::path::Path,
    loaded: &crate::config::Loaded,
) -> anyhow::Result<Vec<crate::drill::spec::Drill>> {
    let base = config.parent().unwrap_or(std::path::Path::new("."));
    let mut drills = Vec::new();
    let mut problems = Vec::new();
    for path in &loaded.config.service.drills {
        match crate::drill::spec::load(&base.join(path), loaded) {
            Ok(d) => drills.push(d),
            Err(invalid) => problems.push(invalid.to_string().trim_end().to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::new(exit::FAILED, problems.join("\n")).into());
    }
    if !drills.is_empty() && loaded.config.service.drill_key.is_none() {
        return Err(CliError::new(
            exit::FAILED,
            "[service] drills are configured, but no drill_key: drills decrypt what they \
             restore and need a recipient's secret key",
        )
        .into());
    }
    Ok(drills)
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
