//! `[targets.NAME]`: where repositories live, a local folder or an S3 bucket and prefix. Each
//! tenant has a repository of its own on every target: `PATH/TENANT/` on a folder,
//! `s3://BUCKET/PREFIX/TENANT/` on S3. Nothing is shared between tenants.
//!
//! An S3 target may give a tenant settings of its own (`[targets.NAME.tenants.ID]`):
//! credentials that reach only that tenant's prefix (`credentials_env`, `profile`), or a
//! bucket of its own (`url`).
//!
//! A repository at the target's root is the shared layout of earlier versions (every tenant's
//! data in one repository): `open_shared` finds it, for the upgrade (`migrate split-tenants`).

use crate::backend::{Backend, LocalBackend, S3Backend, S3Credentials, S3Options, S3Url};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;

/// Names a tenant cannot have: the folders of a repository, which a tenant's folder would
/// collide with on a target that still holds the shared layout.
pub const RESERVED_TENANT_IDS: &[&str] = crate::backend::REPOSITORY_FOLDERS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Repositories in a local folder (`path`).
    Local,
    /// Repositories in an S3 bucket (`url`, and optionally `endpoint`, `region`, `path_style`).
    S3,
}

#[derive(Debug, Deserialize)]
pub struct Target {
    pub kind: Spanned<TargetKind>,
    pub path: Option<PathBuf>,
    pub url: Option<Spanned<String>>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    /// Per tenant, what its repository uses instead of the target's defaults (S3 only).
    #[serde(default)]
    pub tenants: BTreeMap<String, TargetTenant>,
}

/// `[targets.NAME.tenants.ID]`: one tenant's repository on an S3 target.
#[derive(Debug, Default, Deserialize)]
pub struct TargetTenant {
    /// Credentials from the service's environment: `NAME_ACCESS_KEY_ID`,
    /// `NAME_SECRET_ACCESS_KEY` and, when set, `NAME_SESSION_TOKEN`.
    pub credentials_env: Option<Spanned<String>>,
    /// A profile of the AWS shared config and credentials files.
    pub profile: Option<Spanned<String>>,
    /// The tenant's repository at this address (a bucket of its own) instead of
    /// `URL/TENANT`.
    pub url: Option<Spanned<String>>,
}

impl TargetTenant {
    /// The credentials it names, read now.
    fn credentials(&self) -> Result<Option<S3Credentials>, String> {
        if let Some(profile) = &self.profile {
            return Ok(Some(S3Credentials::Profile(profile.get_ref().clone())));
        }
        let Some(name) = &self.credentials_env else {
            return Ok(None);
        };
        let name = name.get_ref();
        let var = |suffix: &str| {
            std::env::var(format!("{name}_{suffix}"))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let missing = |suffix: &str| {
            format!(
                "credentials_env = \"{name}\": {name}_{suffix} is not set in the service's \
                 environment (set {name}_ACCESS_KEY_ID and {name}_SECRET_ACCESS_KEY)"
            )
        };
        Ok(Some(S3Credentials::Keys {
            access_key_id: var("ACCESS_KEY_ID").ok_or_else(|| missing("ACCESS_KEY_ID"))?,
            secret_access_key: var("SECRET_ACCESS_KEY")
                .ok_or_else(|| missing("SECRET_ACCESS_KEY"))?,
            session_token: var("SESSION_TOKEN"),
        }))
    }
}

/// Where one repository of a target is.
enum Place {
    Local(PathBuf),
    S3(S3Url, Box<S3Options>),
}

impl Target {
    fn root_url(&self) -> crate::backend::Result<S3Url> {
        self.url
            .as_ref()
            .and_then(|u| S3Url::parse(u.get_ref()).ok())
            .ok_or_else(|| crate::backend::Error::Remote {
                action: "opening",
                what: "the target".into(),
                location: "s3".into(),
                message: "no valid url".into(),
                transient: false,
            })
    }

    fn unusable(&self, message: String) -> crate::backend::Error {
        crate::backend::Error::Remote {
            action: "opening",
            what: "a tenant's repository".into(),
            location: self.url.as_ref().map_or("s3", |u| u.get_ref()).to_string(),
            message,
            transient: false,
        }
    }

    /// What is wrong with the per-tenant settings, with where (`tenants`: the configuration's
    /// tenant ids).
    pub(super) fn tenant_problems(
        &self,
        name: &str,
        tenants: &[&String],
    ) -> Vec<(Option<Range<usize>>, String)> {
        let mut out = Vec::new();
        for (id, own) in &self.tenants {
            let span = own
                .credentials_env
                .as_ref()
                .or(own.profile.as_ref())
                .or(own.url.as_ref())
                .map(|s| s.span());
            let mut say = |m: String| out.push((span.clone(), format!("target '{name}': {m}")));
            if *self.kind.get_ref() != TargetKind::S3 {
                say(format!(
                    "tenant '{id}': per-tenant settings are for s3 targets (a local target's \
                     folders are protected by their owners and modes)"
                ));
                continue;
            }
            if !tenants.contains(&id) {
                say(format!("tenants.{id}: there is no [tenants.{id}]"));
            }
            if own.credentials_env.is_some() && own.profile.is_some() {
                say(format!(
                    "tenant '{id}': give credentials_env or profile, not both"
                ));
            }
            if let Some(env) = &own.credentials_env {
                let n = env.get_ref();
                if n.is_empty()
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    say(format!(
                        "tenant '{id}': credentials_env '{n}' is a prefix of environment \
                         variables: use capitals, digits and '_' (ACME_S3 reads \
                         ACME_S3_ACCESS_KEY_ID and ACME_S3_SECRET_ACCESS_KEY)"
                    ));
                }
            }
            if let Some(url) = &own.url {
                if let Err(e) = S3Url::parse(url.get_ref()) {
                    say(format!("tenant '{id}': url: {e}"));
                }
            }
            if own.credentials_env.is_none() && own.profile.is_none() && own.url.is_none() {
                say(format!(
                    "tenant '{id}': give credentials_env, profile or url (or remove the table)"
                ));
            }
        }
        out
    }

    /// An S3 target's root address and settings (validated when the config was loaded).
    pub fn s3_settings(&self) -> crate::backend::Result<(S3Url, S3Options)> {
        let options = S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            ..S3Options::default()
        };
        Ok((self.root_url()?, options))
    }

    /// The place of `tenant`'s repository, or of the root (the shared layout) for `None`.
    fn place(&self, tenant: Option<&str>) -> crate::backend::Result<Place> {
        Ok(match self.kind.get_ref() {
            TargetKind::Local => {
                let root = self.path.clone().unwrap_or_default();
                Place::Local(match tenant {
                    Some(t) => root.join(t),
                    None => root,
                })
            }
            TargetKind::S3 => {
                let (mut url, mut options) = self.s3_settings()?;
                let own = tenant.and_then(|t| self.tenants.get(t));
                match (tenant, own.and_then(|o| o.url.as_ref())) {
                    (Some(_), Some(own_url)) => {
                        url = S3Url::parse(own_url.get_ref()).map_err(|e| self.unusable(e))?;
                    }
                    (Some(t), None) => {
                        url.prefix = if url.prefix.is_empty() {
                            t.to_string()
                        } else {
                            format!("{}/{t}", url.prefix)
                        };
                    }
                    (None, _) => {}
                }
                if let Some(own) = own {
                    options.credentials = own.credentials().map_err(|e| self.unusable(e))?;
                }
                Place::S3(url, Box::new(options))
            }
        })
    }

    /// Where `tenant`'s repository on this target is, as commands take it (`--repo`).
    pub fn location_for(&self, tenant: &str) -> String {
        match self.place(Some(tenant)) {
            Ok(Place::Local(p)) => p.display().to_string(),
            Ok(Place::S3(url, _)) => url.to_string(),
            Err(_) => format!("(target without a valid url)/{tenant}"),
        }
    }

    /// Opens `tenant`'s repository store, creating it when it does not exist yet; says
    /// whether it is new.
    pub fn open_or_create(&self, tenant: &str) -> crate::backend::Result<(Arc<dyn Backend>, bool)> {
        match self.place(Some(tenant))? {
            Place::Local(path) => match LocalBackend::open(&path) {
                Ok(b) => Ok((Arc::new(b), false)),
                Err(e) if e.is_not_found() => Ok((Arc::new(LocalBackend::create(&path)?), true)),
                Err(e) => Err(e),
            },
            Place::S3(url, options) => match S3Backend::open(&url, (*options).clone()) {
                Ok(b) => Ok((Arc::new(b), false)),
                Err(e) if e.is_not_found() => {
                    Ok((Arc::new(S3Backend::create(&url, *options)?), true))
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Opens `tenant`'s repository store if it holds one; never creates anything.
    pub fn open_existing(&self, tenant: &str) -> crate::backend::Result<Option<Arc<dyn Backend>>> {
        self.open_at(Some(tenant))
    }

    /// The shared repository of earlier versions at the target's root, if there is one.
    pub fn open_shared(&self) -> crate::backend::Result<Option<Arc<dyn Backend>>> {
        self.open_at(None)
    }

    fn open_at(&self, tenant: Option<&str>) -> crate::backend::Result<Option<Arc<dyn Backend>>> {
        let opened: crate::backend::Result<Arc<dyn Backend>> = match self.place(tenant)? {
            Place::Local(path) => LocalBackend::open(&path).map(|b| Arc::new(b) as _),
            Place::S3(url, options) => S3Backend::open(&url, *options).map(|b| Arc::new(b) as _),
        };
        match opened {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
