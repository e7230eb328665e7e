//! `lifeboat serve`: run the daemon, with the API and the dashboard beside it.

use super::{exit, CliError, Context};
use crate::daemon::{self, Clock};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
    config: PathBuf,
    #[command(flatten)]
    clock: TestClock,
    /// Where the API and dashboard listen (default: [service] listen); port 0 picks a free one.
    #[arg(long)]
    listen: Option<String>,
    /// Make (on first use) and serve a self-contained demo in --demo-dir: keys, a local
    /// repository, a tenant whose folder is backed up every 15 minutes, a drill; prints the
    /// dashboard's address and a customer token.
    #[arg(long)]
    demo: bool,
    /// Where the demo lives.
    #[arg(long, default_value = "lifeboat-demo", requires = "demo")]
    demo_dir: PathBuf,
}

pub fn serve(ctx: &Context, mut args: ServeArgs) -> anyhow::Result<i32> {
    if args.demo {
        let listen = args
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        args.config = super::demo::prepare(&args.demo_dir, &listen)?;
    }
    let loaded = super::load_config(&args.config)?;
    let drills = load_drills(&args.config, &loaded)?;
    let data_dir = loaded
        .config
        .service
        .data_dir
        .clone()
        .unwrap_or_else(|| ctx.data_dir.clone());
    // Before anything else: a second daemon on the same data says so, not "address in use".
    let lock = daemon::lock(&data_dir).map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let clock = args.clock.clock();
    let signing = crate::repo::crypto::SecretKey::load(&loaded.config.service.signing_key)
        .map_err(|e| CliError::new(exit::KEY, format!("signing key: {e}")))?;
    let listen = args
        .listen
        .unwrap_or_else(|| loaded.config.service.listen.clone());
    // The API reads the same configuration; the daemon owns its copy.
    let api = crate::api::Api::new(
        super::load_config(&args.config)?,
        load_drills(&args.config, &loaded)?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect(),
        data_dir.clone(),
        clock.clone(),
        signing,
    )
    .map_err(|e| CliError::new(exit::FAILED, format!("sites' assignments: {e}")))?;
    let api = std::sync::Arc::new(api);
    let stop_timeout = loaded.config.service.stop_timeout();
    let mut banner = None;
    let branch = (args.demo && super::demo::has_branch(&loaded))
        .then(|| (args.demo_dir.clone(), data_dir.clone(), clock.clone()));
    if args.demo {
        let (customer, admin) = super::demo::start(&loaded, &drills, &data_dir, clock.now())?;
        let dir = args.config.parent().map(PathBuf::from).unwrap_or_default();
        banner = Some(move |address| super::demo::banner(address, &dir, &customer, &admin));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let finished = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            CliError::new(
                exit::FAILED,
                format!("cannot listen on {listen}: {e} (set [service] listen or --listen)"),
            )
        })?;
        let address = listener.local_addr()?;
        if let Some(banner) = banner {
            eprintln!("{}", banner(address));
        }
        // The last line of start-up: once it is out, the API answers.
        eprintln!("dashboard and API on http://{address}/ (API under /api/v1)");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stop_signal().await;
            let _ = stop_tx.send(true);
        });
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let branch = branch.map(|(demo_dir, data_dir, clock)| {
            let stop = wait(stop_rx.clone());
            tokio::spawn(async move {
                super::demo::run_branch(&demo_dir, &data_dir, address, clock, stop).await
            })
        });
        let server = tokio::spawn(crate::api::serve(
            listener,
            api,
            wait(stop_rx.clone()),
            stop_timeout,
        ));
        let work = daemon::Work {
            loaded,
            drills,
            data_dir,
            clock,
            site: None,
        };
        let finished = daemon::serve(lock, work, wait(stop_rx), stop_timeout)
            .await
            .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
        if let Some(branch) = branch {
            let _ = branch.await;
        }
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the API server stopped: {e}"),
            Err(e) => eprintln!("the API server stopped: {e}"),
        }
        Ok::<u64, anyhow::Error>(finished)
    });
    // Work still running on the blocking threads (a job past the stop timeout, a report
    // whose client is gone) does not hold the process: it is cut off here, as by a crash,
    // which every write path survives.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    let finished = finished?;
    eprintln!("{finished} job(s) finished");
    Ok(exit::OK)
}

/// The clock tests and simulations ask for (hidden options of `serve` and `agent run`).
#[derive(clap::Args)]
pub(super) struct TestClock {
    /// For tests and simulations: the instant the daemon's clock starts at.
    #[arg(long, env = "LIFEBOAT_CLOCK_START", hide = true)]
    clock_start: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// For tests and simulations: how much faster than real time the daemon's clock runs.
    #[arg(long, env = "LIFEBOAT_CLOCK_SPEED", hide = true, default_value_t = 1.0)]
    clock_speed: f64,
    /// For tests and simulations: the real moment the clock read --clock-start (so that
    /// processes started one after another share one timeline).
    #[arg(long, env = "LIFEBOAT_CLOCK_AT", hide = true, requires = "clock_start")]
    clock_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl TestClock {
    /// The clock asked for, or the real one.
    pub(super) fn clock(&self) -> Clock {
        let utc = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&chrono::Utc);
        match (self.clock_start, self.clock_at) {
            (Some(start), Some(at)) => Clock::shared(utc(start), self.clock_speed, utc(at)),
            (Some(start), None) => Clock::fake(utc(start), self.clock_speed),
            (None, _) if self.clock_speed != 1.0 => {
                Clock::fake(chrono::Utc::now(), self.clock_speed)
            }
            (None, _) => Clock::real(),
        }
    }
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
pub(super) async fn stop_signal() {
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
