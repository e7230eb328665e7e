//! Where a bucket is and how to reach it: `s3://BUCKET/PREFIX` addresses and the options and
//! credentials a backend is opened with.

use std::fmt;
use std::time::Duration;

/// Where a bucket is and how to talk to it. Unset fields come from the standard AWS chain
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, profile files).
#[derive(Debug, Clone)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (most self-hosted stores).
    pub path_style: bool,
    /// Uploads in flight at once (whole objects in a backup, parts of one large object).
    pub uploads: usize,
    /// Objects larger than this go up in parts of this size.
    pub part_size: u64,
    /// How long to keep retrying a transient failure before giving up.
    pub retry_for: Duration,
    /// Where this machine records its multipart uploads under way (see `uploads`).
    pub uploads_dir: Option<std::path::PathBuf>,
    /// Credentials of this repository's own (a tenant's), instead of the standard chain.
    pub credentials: Option<S3Credentials>,
}

/// Credentials for one repository: a tenant's keys that reach only its prefix or bucket.
#[derive(Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// An access key given directly (read from the environment variables a target names).
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// A profile of the AWS shared config and credentials files.
    Profile(String),
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Credentials::Keys { access_key_id, .. } => {
                write!(f, "access key {access_key_id} (secret not shown)")
            }
            S3Credentials::Profile(p) => write!(f, "profile {p}"),
        }
    }
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            path_style: false,
            uploads: 4,
            part_size: 32 * 1024 * 1024,
            retry_for: Duration::from_secs(120),
            uploads_dir: crate::backend::uploads::default_dir(),
            credentials: None,
        }
    }
}

/// An `s3://BUCKET/PREFIX` address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing slashes; empty for the bucket's root.
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> std::result::Result<S3Url, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{url}' is not an s3:// address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!(
                "'{bucket}' in '{url}' is not a valid bucket name (3 to 63 characters: \
                 lower-case letters, digits, '-' and '.'); write s3://BUCKET/PREFIX"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(format!(
                "the prefix '{prefix}' in '{url}' has an empty, '.' or '..' component"
            ));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://my-bucket/a/b/").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("my-bucket", "a/b"));
        assert_eq!(u.to_string(), "s3://my-bucket/a/b");
        let u = S3Url::parse("s3://bkt").unwrap();
        assert_eq!(u.prefix, "");
        assert!(S3Url::parse("s3://ab/x").is_err());
        assert!(S3Url::parse("s3://Bad_Name/x").is_err());
        assert!(S3Url::parse("s3://bucket/a//b").is_err());
        assert!(S3Url::parse("s3://bucket/../b").is_err());
        assert!(S3Url::parse("/srv/repo").is_err());
    }
}
