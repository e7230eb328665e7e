//! `lifeboat site`: the customer sites of `[sites]`, their enrollment tokens and agents.

use super::{exit, load_config, now, CliError, Context};
use crate::agent::token;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum SiteCommand {
    /// Make a one-time enrollment token for a site and print it once (only a hash is kept).
    /// The agent at the site enrolls with it: 'lifeboat agent enroll --token TOKEN'.
    EnrollToken {
        /// The site's id, as in [sites.ID].
        site: String,
        /// How long it is valid (e.g. 24h, 7d).
        #[arg(long, default_value = "24h")]
        expires: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// The sites and their agents: id, tenant, agents enrolled (and revoked), last contact.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// Revoke an agent at once (by its id, as 'site list' shows it): it is refused from its
    /// next request on.
    RevokeAgent {
        agent: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
}

pub fn run(ctx: &Context, command: SiteCommand) -> anyhow::Result<i32> {
    match command {
        SiteCommand::EnrollToken {
            site,
            expires,
            config,
        } => {
            let loaded = load_config(&config)?;
            if !loaded.config.sites.contains_key(&site) {
                let known: Vec<&str> = loaded.config.sites.keys().map(String::as_str).collect();
                return Err(CliError::new(
                    exit::USAGE,
                    format!(
                        "there is no site '{site}' in {} (it has: {}); add [sites.{site}] with \
                         its tenant first",
                        config.display(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
                .into());
            }
            let now = now()?;
            let span = crate::schedule::retention::parse_span(&expires)
                .map_err(|e| CliError::new(exit::USAGE, format!("--expires: {e}")))?;
            let (row, token) = token::new_enroll_token(&site, now, now + span);
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            catalog.add_enroll_token(&row)?;
            let target = format!("{} (site {site})", row.id);
            catalog.audit(
                now,
                &super::token::actor(),
                "create enroll token",
                &target,
                "ok",
            )?;
            outln!("{token}");
            eprintln!(
                "enrollment token {} for site {site}, valid once until {}; it is shown only now. \
                 At the site: lifeboat agent enroll --server URL --token TOKEN --data-dir DIR",
                row.id, row.expires
            );
            Ok(exit::OK)
        }
        SiteCommand::List { json, config } => {
            let loaded = load_config(&config)?;
            let catalog = super::catalog_of(ctx, &loaded).open()?;
            let agents = catalog.agents()?;
            if json {
                let sites: Vec<serde_json::Value> = loaded
                    .config
                    .sites
                    .iter()
                    .map(|(id, s)| {
                        let mine: Vec<_> = agents.iter().filter(|a| &a.site == id).collect();
                        serde_json::json!({
                            "id": id,
                            "name": s.name.clone().unwrap_or_else(|| id.clone()),
                            "tenant": s.tenant.get_ref(),
                            "agents": mine.iter().map(|a| serde_json::json!({
                                "id": a.id, "enrolled": a.enrolled, "version": a.version,
                                "revoked": a.revoked, "last_contact": a.last_contact,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&sites)?);
            } else {
                for (id, s) in &loaded.config.sites {
                    outln!("{id}\ttenant {}", s.tenant.get_ref());
                    for a in agents.iter().filter(|a| &a.site == id) {
                        outln!(
                            "  agent {}\tenrolled {}\t{}",
                            a.id,
                            a.enrolled,
                            a.revoked
                                .as_ref()
                                .map(|r| format!("revoked {r}"))
                                .unwrap_or_else(|| "active".into())
                        );
                    }
                }
            }
            Ok(exit::OK)
        }
        SiteCommand::RevokeAgent { agent, config } => {
            let loaded = load_config(&config)?;
            let now = now()?;
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            let at = crate::evidence::record::time(now);
            if !catalog.revoke_agent(&agent, &at)? {
                let known = catalog.agent(&agent)?.is_some();
                return Err(CliError::new(
                    exit::FAILED,
                    if known {
                        format!("agent {agent} is revoked already")
                    } else {
                        format!("there is no agent {agent}; 'lifeboat site list' shows them")
                    },
                )
                .into());
            }
            catalog.audit(now, &super::token::actor(), "revoke agent", &agent, "ok")?;
            eprintln!("agent {agent} is revoked: it is refused from its next request on");
            Ok(exit::OK)
        }
    }
}
