//! `lifeboat token`: bearer tokens for the API and the dashboard.

use super::{exit, load_config, now, CliError, Context};
use crate::api::auth::{self, Role};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it once (only a hash is kept). Customers and auditors are bound
    /// to one tenant.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant a customer or auditor token sees.
        #[arg(long)]
        tenant: Option<String>,
        /// How long it is valid (e.g. 90d, 12h), or "never".
        #[arg(long, default_value = "365d")]
        expires: String,
        /// A note for the token list (e.g. who holds it).
        #[arg(long)]
        label: Option<String>,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// The tokens: id, role, tenant, label, created, expires, revoked, last used.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
    /// Revoke a token at once (by its id, as 'token list' shows it).
    Revoke {
        id: String,
        #[arg(long, env = "LIFEBOAT_CONFIG", default_value = "lifeboat.toml")]
        config: PathBuf,
    },
}

pub(crate) fn actor() -> String {
    format!(
        "cli ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    )
}

pub fn run(ctx: &Context, command: TokenCommand) -> anyhow::Result<i32> {
    match command {
        TokenCommand::Create {
            role,
            tenant,
            expires,
            label,
            config,
        } => {
            let loaded = load_config(&config)?;
            match (&tenant, role.scoped()) {
                (None, true) => {
                    return Err(CliError::new(
                        exit::USAGE,
                        format!(
                            "a {} token sees one tenant: name it with --tenant",
                            role.name()
                        ),
                    )
                    .into())
                }
                (Some(_), false) => {
                    return Err(CliError::new(
                        exit::USAGE,
                        format!(
                        "a {} token sees every tenant; --tenant is for customer and auditor tokens",
                        role.name()
                    ),
                    )
                    .into())
                }
                (Some(t), true) if !loaded.config.tenants.contains_key(t) => {
                    return Err(CliError::new(
                        exit::USAGE,
                        format!(
                            "there is no tenant '{t}' in {} (it has: {})",
                            config.display(),
                            loaded
                                .config
                                .tenants
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .into())
                }
                _ => {}
            }
            let now = now()?;
            let expiry = if expires == "never" {
                None
            } else {
                let span = crate::schedule::retention::parse_span(&expires).map_err(|e| {
                    CliError::new(exit::USAGE, format!("--expires: {e} (or \"never\")"))
                })?;
                Some(now + span)
            };
            let (row, token) =
                auth::new_token(role, tenant.as_deref(), label.as_deref(), now, expiry);
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            catalog.add_token(&row)?;
            catalog.audit(
                now,
                &actor(),
                "create token",
                &format!(
                    "{} ({}{})",
                    row.id,
                    role.name(),
                    tenant
                        .as_deref()
                        .map(|t| format!(", tenant {t}"))
                        .unwrap_or_default()
                ),
                "ok",
            )?;
            outln!("{token}");
            eprintln!(
                "token {} ({}{}), valid {}; it is shown only now",
                row.id,
                role.name(),
                tenant
                    .map(|t| format!(" of tenant {t}"))
                    .unwrap_or_default(),
                row.expires
                    .map(|e| format!("until {e}"))
                    .unwrap_or_else(|| "until revoked".into())
            );
            Ok(exit::OK)
        }
        TokenCommand::List { json, config } => {
            let loaded = load_config(&config)?;
            let catalog = super::catalog_of(ctx, &loaded).open()?;
            let tokens = catalog.tokens()?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                for t in &tokens {
                    outln!(
                        "{} {:<8} {:<10} created {} {} {}{}",
                        t.id,
                        t.role,
                        t.tenant.as_deref().unwrap_or("-"),
                        t.created,
                        t.expires
                            .as_deref()
                            .map(|e| format!("expires {e}"))
                            .unwrap_or_else(|| "no expiry".into()),
                        t.revoked
                            .as_deref()
                            .map(|r| format!("REVOKED {r}"))
                            .unwrap_or_default(),
                        t.label
                            .as_deref()
                            .map(|l| format!(" ({l})"))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(exit::OK)
        }
        TokenCommand::Revoke { id, config } => {
            let loaded = load_config(&config)?;
            let mut catalog = super::catalog_of(ctx, &loaded).open()?;
            let now = now()?;
            if !catalog.revoke_token(&id, now)? {
                return Err(CliError::new(
                    exit::FAILED,
                    format!("there is no token '{id}' that is not already revoked (see 'lifeboat token list')"),
                )
                .into());
            }
            catalog.audit(now, &actor(), "revoke token", &id, "ok")?;
            eprintln!("token {id} revoked");
            Ok(exit::OK)
        }
    }
}
