//! Where a repository lives: a local folder or `s3://BUCKET/PREFIX`, and the S3 settings.

use super::{exit, CliError};
use crate::backend::{Backend, LocalBackend, S3Backend, S3Options, S3Url};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach S3-compatible storage. Unset values come from the standard AWS chain
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, `~/.aws/config`); credentials always do.
#[derive(clap::Args, Clone, Debug)]
pub struct S3Args {
    /// S3 endpoint URL, for stores other than AWS (e.g. http://127.0.0.1:9000).
    #[arg(long, env = "LIFEBOAT_S3_ENDPOINT", value_name = "URL")]
    s3_endpoint: Option<String>,
    /// S3 region (default: from the AWS configuration, else us-east-1).
    #[arg(long, env = "LIFEBOAT_S3_REGION", value_name = "REGION")]
    s3_region: Option<String>,
    /// Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT (most self-hosted stores).
    #[arg(long, env = "LIFEBOAT_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Uploads to keep in flight at once.
    #[arg(long, env = "LIFEBOAT_S3_UPLOADS", default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    s3_uploads: u16,
    /// Objects larger than this many MiB go up as multipart uploads in parts of this size.
    #[arg(long, env = "LIFEBOAT_S3_PART_SIZE", default_value_t = 32, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(5..=5120))]
    s3_part_size: u64,
    /// Seconds to keep retrying a failing request (5xx, throttling, resets) before giving up.
    #[arg(
        long,
        env = "LIFEBOAT_S3_RETRY_FOR",
        default_value_t = 120,
        value_name = "SECONDS"
    )]
    s3_retry_for: u64,
}

impl S3Args {
    fn options(&self) -> S3Options {
        S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            path_style: self.s3_path_style,
            uploads: usize::from(self.s3_uploads),
            part_size: self.s3_part_size * 1024 * 1024,
            retry_for: Duration::from_secs(self.s3_retry_for),
            ..S3Options::default()
        }
    }
}

/// A repository address as given on the command line.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    S3(S3Url),
}

impl Location {
    pub fn parse(text: &str) -> Result<Location, CliError> {
        if text.starts_with("s3://") {
            S3Url::parse(text)
                .map(Location::S3)
                .map_err(|e| CliError::new(exit::USAGE, e))
        } else if let Some((scheme, _)) = text.split_once("://") {
            Err(CliError::new(
                exit::USAGE,
                format!(
                    "'{text}': {scheme}:// repositories are not supported; use a local folder \
                     or s3://BUCKET/PREFIX"
                ),
            ))
        } else if text.is_empty() {
            Err(CliError::new(
                exit::USAGE,
                "the repository address is empty",
            ))
        } else {
            Ok(Location::Local(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(u) => write!(f, "{u}"),
        }
    }
}

/// Opens an existing repository's storage.
pub fn open(text: &str, s3: &S3Args) -> anyhow::Result<Arc<dyn Backend>> {
    let location = Location::parse(text)?;
    let opened: crate::backend::Result<Arc<dyn Backend>> = match &location {
        Location::Local(path) => LocalBackend::open(path).map(|b| Arc::new(b) as _),
        Location::S3(url) => S3Backend::open(url, s3.options()).map(|b| Arc::new(b) as _),
    };
    opened.map_err(|e| {
        CliError::new(
            exit::FAILED,
            if e.is_not_found() {
                format!(
                    "{location} is not a Lifeboat repository (no config); create one with \
                     'lifeboat init'"
                )
            } else {
                e.to_string()
            },
        )
        .into()
    })
}

/// Prepares the storage of a new repository (the place must be empty).
pub fn create(text: &str, s3: &S3Args) -> anyhow::Result<Arc<dyn Backend>> {
    let created: crate::backend::Result<Arc<dyn Backend>> = match Location::parse(text)? {
        Location::Local(path) => LocalBackend::create(&path).map(|b| Arc::new(b) as _),
        Location::S3(url) => S3Backend::create(&url, s3.options()).map(|b| Arc::new(b) as _),
    };
    created.map_err(|e| CliError::new(exit::FAILED, e.to_string()).into())
}

/// Opens a repository's storage, or prepares an empty one when nothing is there yet (the
/// destination of a copy).
pub fn open_or_create(text: &str, s3: &S3Args) -> anyhow::Result<Arc<dyn Backend>> {
    let location = Location::parse(text)?;
    let opened: crate::backend::Result<Arc<dyn Backend>> = match &location {
        Location::Local(path) => LocalBackend::open(path).map(|b| Arc::new(b) as _),
        Location::S3(url) => S3Backend::open(url, s3.options()).map(|b| Arc::new(b) as _),
    };
    match opened {
        Ok(backend) => Ok(backend),
        Err(e) if e.is_not_found() => create(text, s3),
        Err(e) => Err(CliError::new(exit::FAILED, e.to_string()).into()),
    }
}
