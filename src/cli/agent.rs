//! `lifeboat agent`: the agent at a customer's site, which works for the central service.

use super::{exit, CliError, Context};
use crate::agent::enroll;
use std::path::PathBuf;

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
        /// Where the agent keeps its key, the centre's certificate and its work.
        #[arg(
            long,
            env = "LIFEBOAT_AGENT_DIR",
            default_value = "/var/lib/lifeboat-agent"
        )]
        data_dir: PathBuf,
        /// The fingerprint of the centre's service key, to check the answer against (as
        /// 'lifeboat keys' or the MSP's contract gives it).
        #[arg(long)]
        centre_fingerprint: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Say to the centre that this agent is alive: shows what the centre knows it as and how
    /// far this machine's clock is from the centre's.
    CheckIn {
        #[arg(
            long,
            env = "LIFEBOAT_AGENT_DIR",
            default_value = "/var/lib/lifeboat-agent"
        )]
        data_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(_ctx: &Context, command: AgentCommand) -> anyhow::Result<i32> {
    match command {
        AgentCommand::Enroll {
            server,
            token,
            data_dir,
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
        AgentCommand::CheckIn { data_dir, json } => {
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
        other => anyhow::Error::from(other),
    }
}
