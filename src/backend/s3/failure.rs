//! What a failed request means: whether trying again can help, whether the object is simply
//! absent, and a message that names the bucket and what to check.

/// One failed attempt, classified.
pub(super) struct Failure {
    pub(super) transient: bool,
    pub(super) not_found: bool,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn permanent(message: String) -> Failure {
        Failure {
            transient: false,
            not_found: false,
            message,
        }
    }
}

impl Failure {
    /// For reads where a missing object is an answer, not an error.
    pub(super) fn absent_as_none<T>(self) -> std::result::Result<Option<T>, Failure> {
        if self.not_found {
            Ok(None)
        } else {
            Err(self)
        }
    }
}

/// What an error answer from the store means: whether to try again, whether the object is
/// simply absent, and a message naming the bucket and what to check.
pub(super) fn service_failure(
    status: u16,
    code: &str,
    detail: &str,
    bucket: &str,
    endpoint: &str,
) -> Failure {
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

/// The error and its causes on one line (the SDK's own Display says only "dispatch failure").
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
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
}
