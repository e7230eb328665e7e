//! Multipart uploads: large objects go up in parts that run at once, each with its own
//! checksum; the uploads writers left when they ended are found and aborted.

use super::*;

impl S3Backend {
    /// Aborts one multipart upload; one the store no longer knows is gone already. A part
    /// still arriving may outlive an abort (S3 says to abort again until none is listed):
    /// the parts are listed afterwards, and the abort repeated while some are.
    pub(super) fn abort_upload(&self, key: &str, upload_id: &str) -> bool {
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
    pub(super) fn listed_uploads(&self) -> Vec<(String, String, Option<DateTime<Utc>>)> {
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
    pub(super) fn sweep_leftovers(&self) {
        self.swept.call_once(|| {
            let prefix = self.key("");
            let listed = self.listed_uploads();
            if let Some(dir) = &self.options.uploads_dir {
                for u in crate::backend::uploads::recorded(dir, &self.store_id()) {
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
    pub(super) fn put_multipart(&self, kind: ObjectKind, name: &str, body: Bytes) -> Result<()> {
        let what = &kind.path(name);
        let key = &self.key(what);
        // Recorded before the store is asked: a kill while it creates the upload leaves a
        // record the next writer follows up (`sweep_leftovers`).
        let pending = crate::backend::uploads::Upload::new(&self.store_id(), key, "");
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
        let record = crate::backend::uploads::Upload {
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
}
