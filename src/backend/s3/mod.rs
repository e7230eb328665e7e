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
use std::future::Future;
use std::time::{Duration, Instant};

mod failure;
mod multipart;
mod options;

use failure::{error_chain, service_failure, Failure};
pub use options::{S3Credentials, S3Options, S3Url};

/// The smallest part S3 accepts (all but the last part of a multipart upload).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

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

    /// The lock date for a new object of `kind`, if new objects are being locked.
    fn lock_until(&self, kind: ObjectKind) -> Option<DateTime<Utc>> {
        if !self.object_lock || !kind.kept() {
            return None;
        }
        self.new_objects_until.lock().map(|u| *u).unwrap_or(None)
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
