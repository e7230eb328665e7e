//! Enrollment tokens: `lbe_<id>_<secret>`, a 12-hex-digit id and 256 random bits. Only the
//! SHA-256 of the secret is kept; a token enrolls one agent, once, before it expires.

use crate::catalog::sites::EnrollTokenRow;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

const PREFIX: &str = "lbe_";
const ID_LEN: usize = 12;

/// How long an enrollment token is valid when the admin does not say.
pub const DEFAULT_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new token for `site`: the row to store, and the token to hand out (once).
pub fn new_enroll_token(
    site: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> (EnrollTokenRow, String) {
    let id: [u8; ID_LEN / 2] = rand::random();
    let secret: [u8; 32] = rand::random();
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let row = EnrollTokenRow {
        id: id.clone(),
        secret_sha256: secret_hash(&secret),
        site: site.to_string(),
        created: crate::evidence::record::time(now),
        expires: crate::evidence::record::time(expires),
        used: None,
        agent: None,
    };
    (row, format!("{PREFIX}{id}_{secret}"))
}

/// The id and secret of a presented token, if it has the shape of one.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    presented
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_at_checked(ID_LEN))
        .and_then(|(id, rest)| Some((id, rest.strip_prefix('_')?)))
        .filter(|(id, secret)| id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
}

/// Whether `secret` is the one whose hash `row` keeps (in constant time).
pub fn matches(row: &EnrollTokenRow, secret: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(secret_hash(secret).as_bytes(), row.secret_sha256.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_splits_into_what_was_stored_and_nothing_else_does() {
        let now = Utc::now();
        let (row, token) = new_enroll_token("acme-office", now, now + DEFAULT_LIFETIME);
        let (id, secret) = split(&token).unwrap();
        assert_eq!(id, row.id);
        assert!(matches(&row, secret));
        assert!(!matches(&row, "x"));
        for bad in [
            "",
            "lbe_",
            "lbe_zzzzzzzzzzzz_s",
            "lb_0123456789ab_s",
            "lbe_0123456789ab_",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
