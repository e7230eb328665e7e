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
                .map_err(|e| match e {
                    enroll::Error::Refused(m) => CliError::new(exit::FAILED, m).into(),
                    other => anyhow::Error::from(other),
                })?;
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
    }
}
