//! `lifeboat agent`: the agent at a customer's site, which works for the central service.

use super::{exit, CliError, Context};
use crate::agent::enroll;
use std::path::PathBuf;

/// The agent's data directory.
#[derive(clap::Args)]
pub struct AgentDir {
    /// Where the agent keeps its key, the centre's certificate and its work.
    #[arg(
        long,
        env = "LIFEBOAT_AGENT_DIR",
        default_value = "/var/lib/lifeboat-agent"
    )]
    data_dir: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum AgentCommand {
    /// Enroll this machine's agent with the centre, with a one-time token an admin made for
    /// its site ('lifeboat site enroll-token SITE'). Makes the agent's key in the data
    /// directory and pins the centre's certificate.
    Enroll {
        /// The centre's address (https://HOST; plain http:// only to this machine).
        #[arg(long, env = "LIFEBOAT_SERVER")]
        server: String,
        /// The enrollment token (lbe_…).
        #[arg(long, env = "LIFEBOAT_ENROLL_TOKEN")]
        token: String,
        #[command(flatten)]
        dir: AgentDir,
        /// The fingerprint of the centre's service key, to check the answer against (as
        /// 'lifeboat keys' or the MSP's contract gives it).
        #[arg(long)]
        centre_fingerprint: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the agent: check in with the centre every --every (so it knows the site is alive)
    /// until SIGTERM or Ctrl-C. A revoked agent stops with an error.
    Run {
        #[command(flatten)]
        dir: AgentDir,
        /// How often it checks in and pushes its evidence (well within the centre's
        /// site_silence).
        #[arg(long, default_value = "1m")]
        every: String,
        #[command(flatten)]
        clock: super::serve::TestClock,
    },
    /// Say to the centre that this agent is alive: shows what the centre knows it as and how
    /// far this machine's clock is from the centre's.
    CheckIn {
        #[command(flatten)]
        dir: AgentDir,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(_ctx: &Context, command: AgentCommand) -> anyhow::Result<i32> {
    match command {
        AgentCommand::Enroll {
            server,
            token,
            dir: AgentDir { data_dir },
            centre_fingerprint,
            json,
        } => {
            let done = enroll::enroll(&server, &token, &data_dir, centre_fingerprint.as_deref())
                .map_err(refused)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&done)?);
            }
            eprintln!(
                "enrolled: agent {} of site {} (tenant {}) at {}; the centre signs with {} \
                 (pinned in {})",
                done.agent,
                done.site,
                done.tenant,
                done.server,
                done.centre,
                data_dir.join(enroll::CENTRE_CERT_FILE).display()
            );
            Ok(exit::OK)
        }
        AgentCommand::Run {
            dir: AgentDir { data_dir },
            every,
            clock,
        } => {
            let every = crate::schedule::retention::parse_span(&every)
                .ok()
                .and_then(|d| d.to_std().ok())
                .filter(|d| *d >= std::time::Duration::from_secs(1))
                .ok_or_else(|| {
                    CliError::new(exit::USAGE, format!("--every {every}: a span such as 5m"))
                })?;
            let Some(enrolled) = crate::agent::enroll::enrolled(&data_dir).map_err(refused)? else {
                return Err(CliError::new(
                    exit::FAILED,
                    format!(
                        "{} holds no enrolled agent: run 'lifeboat agent enroll' first",
                        data_dir.display()
                    ),
                )
                .into());
            };
            eprintln!(
                "agent {} of site {} at {}: checking in every {}",
                enrolled.agent,
                enrolled.site,
                enrolled.server,
                humantime::format_duration(every)
            );
            let runtime = tokio::runtime::Runtime::new()?;
            let say = |line: &str| {
                eprintln!("{} {line}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))
            };
            runtime
                .block_on(crate::agent::run::run(
                    &data_dir,
                    crate::agent::run::Options {
                        every,
                        clock: clock.clock(),
                    },
                    super::serve::stop_signal(),
                    say,
                ))
                .map_err(refused)?;
            eprintln!("agent stopped");
            Ok(exit::OK)
        }
        AgentCommand::CheckIn {
            dir: AgentDir { data_dir },
            json,
        } => {
            let answer =
                crate::agent::check_in::check_in(&data_dir, super::now()?).map_err(refused)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&answer)?);
            }
            eprintln!(
                "the centre knows this agent as {} of site {} (tenant {}); its clock is {:.1} s \
                 from the centre's",
                answer.agent,
                answer.site,
                answer.tenant,
                answer.clock_skew_ms as f64 / 1000.0
            );
            Ok(exit::OK)
        }
    }
}

/// A refusal is the command failing with the centre's (or the check's) reason.
fn refused(e: crate::agent::Error) -> anyhow::Error {
    match e {
        crate::agent::Error::Refused(m) => CliError::new(exit::FAILED, m).into(),
        crate::agent::Error::Centre { status, message } => CliError::new(
            exit::FAILED,
            format!("the centre refused: {message} ({status})"),
        )
        .into(),
        other => anyhow::Error::from(other),
    }
}
