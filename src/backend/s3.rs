//! A repository in an S3 bucket (AWS or any S3-compatible store), under an optional prefix.
//!
//! The trait is blocking; the SDK is async. The backend owns a small tokio runtime and every
//! call blocks the calling thread on it, so the backup's uploader threads each keep one request
//! in flight. Every upload carries a SHA-256 checksum the server verifies; objects larger than one
//! part go up as multipart uploads whose parts run concurrently. Transient failures (5xx,
//! throttling, timeouts, resets) are retried with exponential backoff and jitter until a time
//! budget is spent, then reported with the last error.

use super::{Backend, Error, ObjectKind, Result};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockEnabled, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode,
};
use aws_sdk_s3::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use backon::BackoffBuilder;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// The smallest part S3 accepts (all but the last part of a multipart upload).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

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
            uploads_dir: super::uploads::default_dir(),
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

pub struct S3Backend {
    runtime: tokio::runtime::Runtime,
    client: Client,
    url: S3Url,
    endpoint: String,
    options: S3Options,
    object_lock: bool,
    /// The retain-until date objects get when stored (Object Lock buckets only).
    new_objects_until: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// Whether this instance has aborted the uploads ended writers left, yet.
    swept: std::sync::Once,
}

/// How old an upload of unknown origin must be before a writer aborts it: no upload of ours
/// takes a day.
const STALE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// One failed attempt, classified.
struct Failure {
    transient: bool,
    not_found: bool,
    message: String,
}

impl Failure {
    fn permanent(message: String) -> Failure {
        Failure {
            transient: false,
            not_found: false,
            message,
        }
    }
}

impl Failure {
    /// For reads where a missing object is an answer, not an error.
    fn absent_as_none<T>(self) -> std::result::Result<Option<T>, Failure> {
        if self.not_found {
            Ok(None)
        } else {
            Err(self)
        }
    }
}

impl S3Backend {
    /// Opens the repository at `url`; fails when the bucket is unreachable or holds no
    /// repository there.
    pub fn open(url: &S3Url, options: S3Options) -> Result<Self> {
        let (backend, _) = Self::connect(url, options)?;
        let configs = backend.list(ObjectKind::Config)?;
        if configs.is_empty() {
            return Err(Error::NotFound {
                kind: ObjectKind::Config,
                name: String::new(),
                location: backend.location(),
            });
        }
        Ok(backend)
    }

    /// Prepares a new repository at `url`: the bucket must exist and hold nothing under the
    /// prefix.
    pub fn create(url: &S3Url, options: S3Options) -> Result<Self> {
        let (backend, prefix_used) = Self::connect(url, options)?;
        if prefix_used {
            return Err(backend.remote_error(
                "refusing to create a repository",
                "at that prefix".into(),
                "the prefix is not empty; choose another bucket or prefix".into(),
                false,
            ));
        }
        Ok(backend)
    }

    /// Reaches the bucket. Returns the backend and whether anything exists under the prefix.
    fn connect(url: &S3Url, options: S3Options) -> Result<(Self, bool)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lifeboat-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                action: "starting",
                what: "the S3 client's runtime".into(),
                location: url.to_string(),
                source: e,
            })?;
        let (client, endpoint) = runtime.block_on(build_client(&options));
        let mut backend = S3Backend {
            runtime,
            client,
            url: url.clone(),
            endpoint,
            options,
            object_lock: false,
            new_objects_until: std::sync::Mutex::new(None),
            swept: std::sync::Once::new(),
        };
        // A listing, not HeadBucket: its error body says which of credentials, permission
        // or bucket name is wrong.
        let this = &backend;
        let prefix = this.key("");
        let prefix_used = this.call("reaching", "the bucket", |client| {
            let prefix = prefix.clone();
            async move {
                let out = client
                    .list_objects_v2()
                    .bucket(&this.url.bucket)
                    .prefix(prefix)
                    .max_keys(1)
                    .send()
                    .await
                    .map_err(|e| this.classify(e))?;
                Ok(out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty())
            }
        })?;
        backend.object_lock = backend.probe_object_lock()?;
        Ok((backend, prefix_used))
    }

    /// Whether the bucket has Object Lock enabled. A store that does not implement the call,
    /// or a bucket without a lock configuration, has none; a failure that may pass is retried
    /// rather than taken for "no lock".
    fn probe_object_lock(&self) -> Result<bool> {
        self.call(
            "reading the Object Lock setting of",
            "the bucket",
            |client| async move {
                match client
                    .get_object_lock_configuration()
                    .bucket(&self.url.bucket)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out
                        .object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        == Some(&ObjectLockEnabled::Enabled)),
                    Err(e) => {
                        let failure = self.classify(e);
                        if failure.transient {
                            Err(failure)
                        } else {
                            Ok(false)
                        }
                    }
                }
            },
        )
    }

    fn key(&self, rel: &str) -> String {
        if self.url.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.url.prefix, rel)
        }
    }

    fn remote_error(
        &self,
        action: &'static str,
        what: String,
        message: String,
        transient: bool,
    ) -> Error {
        Error::Remote {
            action,
            what,
            location: self.location(),
            message,
            transient,
        }
    }

    /// Runs one S3 call, retrying transient failures (see `retrying`).
    fn call<'a, T, F, Fut>(&'a self, action: &'static str, what: &str, f: F) -> Result<T>
    where
        F: Fn(&'a Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>> + 'a,
    {
        self.runtime.block_on(self.retrying(action, what, f))
    }

    /// Runs one S3 call, retrying transient failures with exponential backoff and jitter
    /// until `retry_for` is spent; then the last failure is reported.
    async fn retrying<'a, T, F, Fut>(&'a self, action: &'static str, what: &str, f: F) -> Result<T>
    where
        F: Fn(&'a Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>> + 'a,
    {
        let started = Instant::now();
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let failure = match f(&self.client).await {
                Ok(v) => return Ok(v),
                Err(failure) => failure,
            };
            if failure.not_found || !failure.transient {
                return Err(self.remote_error(action, what.to_string(), failure.message, false));
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(10));
            if started.elapsed() + delay > self.options.retry_for {
                return Err(self.remote_error(
                    action,
                    what.to_string(),
                    format!(
                        "gave up after {attempts} attempts in {:.1} s: {}",
                        started.elapsed().as_secs_f64(),
                        failure.message
                    ),
                    true,
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Runs one call on the object `kind/name`, which it gets by key, with retries.
    fn on_object<'a, T, F, Fut>(
        &'a self,
        action: &'static str,
        kind: ObjectKind,
        name: &str,
        f: F,
    ) -> Result<T>
    where
        F: Fn(&'a Client, String) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>> + 'a,
    {
        let what = kind.path(name);
        let key = self.key(&what);
        self.call(action, &what, |client| f(client, key.clone()))
    }

    /// The object's metadata, or `None` when it does not exist.
    fn head(
        &self,
        action: &'static str,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        self.on_object(action, kind, name, |client, key| async move {
            match client
                .head_object()
                .bucket(&self.url.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out)),
                Err(e) => self.classify(e).absent_as_none(),
            }
        })
    }

    /// Turns an SDK error into a classified failure with a message that says what to check.
    fn classify<E>(&self, err: SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let bucket = &self.url.bucket;
        match &err {
            SdkError::TimeoutError(_) => Failure {
                transient: true,
                not_found: false,
                message: "the request timed out".into(),
            },
            SdkError::DispatchFailure(d) => {
                let transient = d.is_io() || d.is_timeout() || d.is_other();
                Failure {
                    transient: transient || !d.is_user(),
                    not_found: false,
                    message: format!(
                        "cannot reach the S3 endpoint {} ({}); check that the server is up and \
                         the endpoint is right",
                        self.endpoint,
                        error_chain(&err)
                    ),
                }
            }
            SdkError::ResponseError(_) => Failure {
                transient: true,
                not_found: false,
                message: format!("the response was cut off: {}", error_chain(&err)),
            },
            SdkError::ServiceError(s) => service_failure(
                s.raw().status().as_u16(),
                s.err().code().unwrap_or(""),
                s.err().message().unwrap_or(""),
                bucket,
                &self.endpoint,
            ),
            _ => Failure::permanent(format!("the request failed: {}", error_chain(&err))),
        }
    }

    async fn put_single(
        &self,
        kind: ObjectKind,
        key: &str,
        body: Bytes,
    ) -> std::result::Result<(), Failure> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.url.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64(&body))
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        if let Some(until) = self.lock_until(kind) {
            req = req
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(to_smithy(until));
        }
        req.send().await.map(|_| ()).map_err(|e| self.classify(e))
    }

    /// The store as upload records name it.
    fn store_id(&self) -> String {
        format!("{}/{}", self.endpoint, self.url.bucket)
    }

    /// Aborts one multipart upload; one the store no longer knows is gone already. A part
    /// still arriving may outlive an abort (S3 says to abort again until none is listed):
    /// the parts are listed afterwards, and the abort repeated while some are.
    fn abort_upload(&self, key: &str, upload_id: &str) -> bool {
        for _ in 0..3 {
            if !self.abort_once(key, upload_id) {
                return false;
            }
            let remaining = self.runtime.block_on(async {
                self.client
                    .list_parts()
                    .bucket(&self.url.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map(|o| o.parts().len())
            });
            // An error here is the store saying it no longer knows the upload.
            if !matches!(remaining, Ok(n) if n > 0) {
                return true;
            }
        }
        true
    }

    fn abort_once(&self, key: &str, upload_id: &str) -> bool {
        self.call("aborting the upload of", key, |client| async move {
            match client
                .abort_multipart_upload()
                .bucket(&self.url.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let failure = self.classify(e);
                    if failure.not_found {
                        Ok(())
                    } else {
                        Err(failure)
                    }
                }
            }
        })
        .is_ok()
    }

    /// The multipart uploads under way under the prefix, as the store lists them (key, id,
    /// when begun); empty where the store cannot list them.
    fn listed_uploads(&self) -> Vec<(String, String, Option<DateTime<Utc>>)> {
        let prefix = self.key("");
        let listed = self.runtime.block_on(async {
            self.client
                .list_multipart_uploads()
                .bucket(&self.url.bucket)
                .prefix(prefix)
                .send()
                .await
        });
        let Ok(out) = listed else {
            return Vec::new();
        };
        out.uploads()
            .iter()
            .filter_map(|u| {
                let initiated = u
                    .initiated()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), 0));
                Some((u.key()?.to_string(), u.upload_id()?.to_string(), initiated))
            })
            .collect()
    }

    /// Aborts, once per instance at its first write, the uploads this machine's ended writers
    /// left under the prefix, and any upload begun more than a day ago.
    fn sweep_leftovers(&self) {
        self.swept.call_once(|| {
            let prefix = self.key("");
            let listed = self.listed_uploads();
            if let Some(dir) = &self.options.uploads_dir {
                for u in super::uploads::recorded(dir, &self.store_id()) {
                    if !u.key.starts_with(&prefix) || !u.writer_ended() {
                        continue;
                    }
                    let aborted = if u.upload_id.is_empty() {
                        // Killed while the upload was being created: the store may know an
                        // upload of that key begun then, which only a listing shows.
                        let since = DateTime::from_timestamp(u.started as i64 - 60, 0);
                        listed
                            .iter()
                            .filter(|(key, _, at)| {
                                *key == u.key && since.zip(*at).is_some_and(|(s, t)| t >= s)
                            })
                            .all(|(key, id, _)| self.abort_upload(key, id))
                    } else {
                        self.abort_upload(&u.key, &u.upload_id)
                    };
                    if aborted {
                        u.forget(dir);
                    }
                }
            }
            let now = Utc::now();
            for (key, id, initiated) in listed {
                let stale = initiated
                    .is_some_and(|t| (now - t).to_std().is_ok_and(|age| age > STALE_UPLOAD));
                if stale {
                    self.abort_upload(&key, &id);
                }
            }
        });
    }

    /// Uploads `body` in parts, `uploads` at a time. A failed upload is aborted so no parts
    /// are left behind to be billed; one cut off by a crash is recorded locally, and the next
    /// writer aborts it (`sweep_leftovers`).
    fn put_multipart(&self, kind: ObjectKind, name: &str, body: Bytes) -> Result<()> {
        let what = &kind.path(name);
        let key = &self.key(what);
        // Recorded before the store is asked: a kill while it creates the upload leaves a
        // record the next writer follows up (`sweep_leftovers`).
        let pending = super::uploads::Upload::new(&self.store_id(), key, "");
        if let Some(dir) = &self.options.uploads_dir {
            pending.record(dir);
        }
        let upload_id = self.call("starting the upload of", what, |client| async move {
            let mut req = client
                .create_multipart_upload()
                .bucket(&self.url.bucket)
                .key(key)
                .checksum_algorithm(ChecksumAlgorithm::Sha256);
            if let Some(until) = self.lock_until(kind) {
                req = req
                    .object_lock_mode(ObjectLockMode::Compliance)
                    .object_lock_retain_until_date(to_smithy(until));
            }
            let out = req.send().await.map_err(|e| self.classify(e))?;
            out.upload_id()
                .map(str::to_string)
                .ok_or_else(|| Failure::permanent("the server gave no upload id".into()))
        });
        let upload_id = match upload_id {
            Ok(id) => id,
            Err(e) => {
                if let Some(dir) = &self.options.uploads_dir {
                    pending.forget(dir);
                }
                return Err(e);
            }
        };
        let record = super::uploads::Upload {
            upload_id: upload_id.clone(),
            ..pending.clone()
        };
        if let Some(dir) = &self.options.uploads_dir {
            record.record(dir);
            pending.forget(dir);
        }
        let forget = || {
            if let Some(dir) = &self.options.uploads_dir {
                record.forget(dir);
            }
        };
        let result = self
            .upload_parts(what, key, &upload_id, &body)
            .and_then(|parts| {
                self.call("completing the upload of", what, |client| {
                    let parts = parts.clone();
                    let upload_id = upload_id.clone();
                    async move {
                        client
                            .complete_multipart_upload()
                            .bucket(&self.url.bucket)
                            .key(key)
                            .upload_id(upload_id)
                            .multipart_upload(
                                CompletedMultipartUpload::builder()
                                    .set_parts(Some(parts))
                                    .build(),
                            )
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| self.classify(e))
                    }
                })
            });
        // A completion whose answer was lost on the way is retried, and the store then no
        // longer knows the upload: if the object is there, whole, the upload did complete
        // (names are content hashes, so same name and size means the same bytes were sent).
        let result = match result {
            Err(e) if !e.is_transient() => match self.head("looking for", kind, name) {
                Ok(Some(head)) if head.content_length() == Some(body.len() as i64) => {
                    forget();
                    return Ok(());
                }
                _ => Err(e),
            },
            other => other,
        };
        if result.is_ok() || self.abort_upload(key, &upload_id) {
            forget();
        }
        result
    }

    /// Uploads the parts, `uploads` at a time; each part retries on its own.
    fn upload_parts(
        &self,
        what: &str,
        key: &str,
        upload_id: &str,
        body: &Bytes,
    ) -> Result<Vec<CompletedPart>> {
        use futures_util::{StreamExt, TryStreamExt};
        let part_size = self.options.part_size.max(MIN_PART_SIZE) as usize;
        let parts = (0..body.len())
            .step_by(part_size)
            .enumerate()
            .map(|(i, start)| {
                let end = (start + part_size).min(body.len());
                (i as i32 + 1, body.slice(start..end))
            });
        let uploads = parts.map(|(number, part)| async move {
            let checksum = sha256_b64(&part);
            let what = format!("{what} (part {number})");
            let etag = self
                .retrying("uploading", &what, |client| {
                    let (checksum, part) = (checksum.clone(), part.clone());
                    async move {
                        let out = client
                            .upload_part()
                            .bucket(&self.url.bucket)
                            .key(key)
                            .upload_id(upload_id)
                            .part_number(number)
                            .checksum_algorithm(ChecksumAlgorithm::Sha256)
                            .checksum_sha256(checksum)
                            .content_length(part.len() as i64)
                            .body(ByteStream::from(part))
                            .send()
                            .await
                            .map_err(|e| self.classify(e))?;
                        Ok(out.e_tag().map(str::to_string))
                    }
                })
                .await?;
            Ok::<_, Error>(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(etag)
                    .checksum_sha256(checksum)
                    .build(),
            )
        });
        self.runtime.block_on(
            futures_util::stream::iter(uploads)
                .buffered(self.options.uploads.max(1))
                .try_collect(),
        )
    }

    /// The retain-until date new objects get, when the bucket has Object Lock.
    /// The lock date for a new object of `kind`, if new objects are being locked.
    fn lock_until(&self, kind: ObjectKind) -> Option<DateTime<Utc>> {
        if !self.object_lock || !kind.kept() {
            return None;
        }
        self.new_objects_until.lock().map(|u| *u).unwrap_or(None)
    }
}

/// What an error answer from the store means: whether to try again, whether the object is
/// simply absent, and a message naming the bucket and what to check.
fn service_failure(status: u16, code: &str, detail: &str, bucket: &str, endpoint: &str) -> Failure {
    let said = if code.is_empty() {
        format!("HTTP {status}")
    } else if detail.is_empty() {
        format!("{code} (HTTP {status})")
    } else {
        format!("{code}: {detail} (HTTP {status})")
    };
    let (transient, not_found, hint) = match (status, code) {
        (_, "NoSuchBucket") => (
            false,
            false,
            format!(
                "bucket '{bucket}' does not exist at {}; create it first, or check \
                 the bucket name, endpoint and region",
                endpoint
            ),
        ),
        (_, "NoSuchKey") | (404, "") | (404, "NotFound") => (false, true, "no such object".into()),
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "NotSignedUp"
            | "InvalidToken"
            | "ExpiredToken",
        ) => (
            false,
            false,
            format!(
                "the credentials were refused for bucket '{bucket}'; check \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ),
        ),
        (403, _) => (
            false,
            false,
            format!(
                "access to bucket '{bucket}' was denied; check that these \
                 credentials may list, read and write it (bucket policy or IAM \
                 permissions s3:ListBucket, s3:GetObject, s3:PutObject)"
            ),
        ),
        (301, _) | (_, "PermanentRedirect") | (_, "AuthorizationHeaderMalformed") => (
            false,
            false,
            format!(
                "bucket '{bucket}' is in another region or needs another endpoint; \
                 set --s3-region or --s3-endpoint"
            ),
        ),
        (_, "BadDigest") | (_, "InvalidDigest") | (_, "XAmzContentSHA256Mismatch") => {
            (true, false, "the upload was damaged on the way".into())
        }
        (501, _) | (_, "NotImplemented") => (
            false,
            false,
            "the server does not implement this request".into(),
        ),
        (429, _) | (500..=599, _) => (true, false, "the server is busy or failing".into()),
        (
            _,
            "SlowDown"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "Throttling"
            | "ThrottlingException"
            | "RequestTimeTooSkewed",
        ) => (true, false, "the server asked to try again".into()),
        _ => (false, false, "the server refused the request".into()),
    };
    Failure {
        transient,
        not_found,
        message: format!("{hint} [{said}]"),
    }
}

/// The client, and the endpoint it talks to (for messages).
async fn build_client(options: &S3Options) -> (Client, String) {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    match &options.credentials {
        Some(S3Credentials::Keys {
            access_key_id,
            secret_access_key,
            session_token,
        }) => {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key_id,
                secret_access_key,
                session_token.clone(),
                None,
                "lifeboat-target-tenant",
            ));
        }
        Some(S3Credentials::Profile(name)) => loader = loader.profile_name(name),
        None => {}
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(options.path_style)
        // Retries are ours (see `S3Backend::call`): bounded by time, not by a token bucket.
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        // We send SHA-256 checksums ourselves; the SDK adds none of its own.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    let region = match shared.region() {
        Some(r) => r.to_string(),
        None => {
            config = config.region(Region::new("us-east-1"));
            "us-east-1".to_string()
        }
    };
    let endpoint = shared
        .endpoint_url()
        .map(str::to_string)
        .unwrap_or_else(|| format!("AWS region {region}"));
    (Client::from_conf(config.build()), endpoint)
}

fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

/// The error and its causes on one line (the SDK's own Display says only "dispatch failure").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        format!("{} at {}", self.url, self.endpoint)
    }

    fn get(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
        let found = self.on_object("reading", kind, name, |client, key| {
            async move {
                let out = match client
                    .get_object()
                    .bucket(&self.url.bucket)
                    .key(key)
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => return self.classify(e).absent_as_none(),
                };
                // A connection cut while the body streams is retried like any other reset.
                let body = out.body.collect().await.map_err(|e| Failure {
                    transient: true,
                    not_found: false,
                    message: format!("the download was cut off: {}", error_chain(&e)),
                })?;
                Ok(Some(body.into_bytes().to_vec()))
            }
        })?;
        found.ok_or_else(|| Error::NotFound {
            kind,
            name: name.to_string(),
            location: self.location(),
        })
    }

    fn put(&self, kind: ObjectKind, name: &str, data: Vec<u8>) -> Result<()> {
        self.sweep_leftovers();
        let len = data.len() as u64;
        let body = Bytes::from(data);
        if len > self.options.part_size.max(MIN_PART_SIZE) {
            return self.put_multipart(kind, name, body);
        }
        self.on_object("storing", kind, name, |_, key| {
            let body = body.clone();
            async move { self.put_single(kind, &key, body).await }
        })
    }

    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        Ok(self.head("looking for", kind, name)?.is_some())
    }

    fn leftovers(&self) -> Result<Vec<super::Leftover>> {
        let prefix = self.key("");
        let now = Utc::now();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let parts_size = |key: &str, id: &str| {
            self.runtime.block_on(async {
                self.client
                    .list_parts()
                    .bucket(&self.url.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map(|o| {
                        o.parts()
                            .iter()
                            .map(|p| p.size().unwrap_or(0).max(0) as u64)
                            .sum::<u64>()
                    })
                    .unwrap_or(0)
            })
        };
        if let Some(dir) = &self.options.uploads_dir {
            for u in super::uploads::recorded(dir, &self.store_id()) {
                if !u.key.starts_with(&prefix) {
                    continue;
                }
                seen.insert(u.upload_id.clone());
                let started = DateTime::from_timestamp(u.started as i64, 0).unwrap_or(now);
                out.push(super::Leftover {
                    what: format!("upload of {} ({})", u.key, u.upload_id),
                    bytes: parts_size(&u.key, &u.upload_id),
                    age_seconds: Some((now - started).num_seconds().max(0) as u64),
                    writer_ended: u.writer_ended(),
                });
            }
        }
        for (key, id, initiated) in self.listed_uploads() {
            if seen.contains(&id) {
                continue;
            }
            out.push(super::Leftover {
                what: format!("upload of {key} ({id})"),
                bytes: parts_size(&key, &id),
                age_seconds: initiated.map(|t| (now - t).num_seconds().max(0) as u64),
                writer_ended: false,
            });
        }
        Ok(out)
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<(String, u64)>> {
        let prefix = self.key(&format!("{}/", kind.dir()));
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.call("listing", kind.dir(), |client| {
                let prefix = prefix.clone();
                let token = token.clone();
                async move {
                    client
                        .list_objects_v2()
                        .bucket(&self.url.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token)
                        .send()
                        .await
                        .map_err(|e| self.classify(e))
                }
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(name) = key.rsplit('/').next().filter(|n| !n.is_empty()) else {
                    continue;
                };
                out.push((name.to_string(), object.size().unwrap_or(0).max(0) as u64));
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Never asks the store to delete a locked object (on a versioned bucket that would hide
    /// it behind a delete marker): says until when it is locked instead.
    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        if let Some(until) = self.locked_until(kind, name)? {
            return Err(Error::Locked {
                kind,
                name: name.to_string(),
                location: self.location(),
                until,
            });
        }
        self.on_object("deleting", kind, name, |client, key| async move {
            client
                .delete_object()
                .bucket(&self.url.bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(e))
        })
    }

    fn uploads(&self) -> usize {
        self.options.uploads.max(1)
    }

    fn object_lock(&self) -> bool {
        self.object_lock
    }

    fn lock_new_objects_until(&self, until: Option<DateTime<Utc>>) {
        if let Ok(mut slot) = self.new_objects_until.lock() {
            *slot = until;
        }
    }

    fn locked_until(&self, kind: ObjectKind, name: &str) -> Result<Option<DateTime<Utc>>> {
        if !self.object_lock {
            return Ok(None);
        }
        // HeadObject carries the lock date for callers allowed to read it, and says plainly
        // when the object has none (GetObjectRetention answers that with store-specific errors).
        let until = self
            .head("reading the lock of", kind, name)?
            .and_then(|out| out.object_lock_retain_until_date().map(|d| d.secs()))
            .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
        Ok(until.filter(|u| *u > Utc::now()))
    }

    fn lock_until(&self, kind: ObjectKind, name: &str, until: DateTime<Utc>) -> Result<()> {
        if !self.object_lock {
            return Ok(());
        }
        self.on_object("locking", kind, name, |client, key| async move {
            client
                .put_object_retention()
                .bucket(&self.url.bucket)
                .key(key)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::Compliance)
                        .retain_until_date(to_smithy(until))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each answer a store gives maps to retry or not, and to a message that says what to do.
    #[test]
    fn error_answers() {
        let f = |status, code| service_failure(status, code, "", "acme-backups", "http://s3.dc2");
        let denied = f(403, "AccessDenied");
        assert!(!denied.transient && !denied.not_found);
        assert!(denied
            .message
            .contains("access to bucket 'acme-backups' was denied"));
        assert!(
            denied.message.contains("s3:PutObject"),
            "{}",
            denied.message
        );
        for code in ["InvalidAccessKeyId", "SignatureDoesNotMatch"] {
            let m = f(403, code);
            assert!(!m.transient);
            assert!(m.message.contains("AWS_SECRET_ACCESS_KEY"), "{}", m.message);
        }
        let missing = f(404, "NoSuchBucket");
        assert!(!missing.transient && !missing.not_found);
        assert!(missing
            .message
            .contains("bucket 'acme-backups' does not exist at http://s3.dc2"));
        assert!(f(404, "NoSuchKey").not_found);
        assert!(f(404, "").not_found);
        for (status, code) in [
            (503, "SlowDown"),
            (500, "InternalError"),
            (400, "RequestTimeout"),
            (400, "BadDigest"),
            (429, ""),
            (502, ""),
        ] {
            assert!(f(status, code).transient, "{status} {code}");
        }
        assert!(!f(501, "NotImplemented").transient);
        assert!(f(301, "PermanentRedirect").message.contains("--s3-region"));
        assert!(!f(400, "InvalidArgument").transient);
    }

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
