//! `[targets.NAME]`: where repositories live, a local folder or an S3 bucket and prefix. Each
//! tenant has a repository of its own on every target: `PATH/TENANT/` on a folder,
//! `s3://BUCKET/PREFIX/TENANT/` on S3. Nothing is shared between tenants.
//!
//! A repository at the target's root is the shared layout of earlier versions (every tenant's
//! data in one repository): `open_shared` finds it, for the upgrade (`migrate split-tenants`).

use crate::backend::{Backend, LocalBackend, S3Backend, S3Options, S3Url};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;

/// Names a tenant cannot have: the folders of a repository, which a tenant's folder would
/// collide with on a target that still holds the shared layout.
pub const RESERVED_TENANT_IDS: &[&str] = &[
    "config",
    "data",
    "index",
    "snapshots",
    "sessions",
    "marks",
    "holds",
    "evidence",
    "tmp",
];

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
}

/// Where one repository of a target is.
enum Place {
    Local(PathBuf),
    S3(S3Url, S3Options),
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
                let (mut url, options) = self.s3_settings()?;
                if let Some(t) = tenant {
                    url.prefix = if url.prefix.is_empty() {
                        t.to_string()
                    } else {
                        format!("{}/{t}", url.prefix)
                    };
                }
                Place::S3(url, options)
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
            Place::S3(url, options) => match S3Backend::open(&url, options.clone()) {
                Ok(b) => Ok((Arc::new(b), false)),
                Err(e) if e.is_not_found() => {
                    Ok((Arc::new(S3Backend::create(&url, options)?), true))
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
            Place::S3(url, options) => S3Backend::open(&url, options).map(|b| Arc::new(b) as _),
        };
        match opened {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
