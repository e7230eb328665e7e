//! Enrollment tokens: `lbe_<id>_<secret>` (see `credential`). Only the SHA-256 of the secret
//! is kept; a token enrolls one agent, once, before it expires.

use crate::catalog::sites::EnrollTokenRow;
use crate::credential;
use chrono::{DateTime, Utc};

const PREFIX: &str = "lbe_";

/// How long an enrollment token is valid when the admin does not say.
pub const DEFAULT_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// A new token for `site`: the row to store, and the token to hand out (once).
pub fn new_enroll_token(
    site: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> (EnrollTokenRow, String) {
    let minted = credential::mint(PREFIX);
    let row = EnrollTokenRow {
        id: minted.id,
        secret_sha256: minted.secret_sha256,
        site: site.to_string(),
        created: crate::evidence::record::time(now),
        expires: crate::evidence::record::time(expires),
        used: None,
        agent: None,
    };
    (row, minted.presented)
}

/// The id and secret of a presented token, if it has the shape of one.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    credential::split(presented, PREFIX)
}

/// Whether `secret` is the one whose hash `row` keeps (in constant time).
pub fn matches(row: &EnrollTokenRow, secret: &str) -> bool {
    credential::matches(&row.secret_sha256, secret)
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
