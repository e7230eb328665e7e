//! Bearer tokens, dashboard sessions, roles and tenant scope.
//!
//! A token reads `lb_<id>_<secret>`: a 12-hex-digit id (shown in lists and the audit log) and
//! 256 random bits. Only the secret's SHA-256 is stored, compared in constant time.
//!
//! Logging in to the dashboard with a token makes a session: 256 random bits in an HttpOnly
//! cookie, of which the catalog keeps only the SHA-256. The cookie never holds the token. A
//! session lasts `SESSION_LIFETIME` at most, never longer than its token, ends at logout, and
//! ends with its token when that is revoked or expires.

use crate::catalog::tokens::{SessionRow, TokenRow};
use crate::catalog::Catalog;
use crate::credential::{self, secret_hash};
use chrono::{DateTime, Utc};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including cold VM backups and configuration.
    Admin,
    /// All tenants: reads, immediate backups, drills.
    Operator,
    /// One tenant: reads, drill requests and cancellations.
    Customer,
    /// One tenant: reads and reports.
    Auditor,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Customer => "customer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::Operator, Role::Customer, Role::Auditor]
            .into_iter()
            .find(|r| r.name() == text)
    }

    /// Whether the role is bound to one tenant.
    pub fn scoped(self) -> bool {
        matches!(self, Role::Customer | Role::Auditor)
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token: String,
    pub role: Role,
    /// The one tenant a customer or auditor sees.
    pub tenant: Option<String>,
    /// Whether it came through the dashboard's session cookie (which a browser sends on its
    /// own, so changes made with it must come from our own pages) rather than a bearer token.
    pub session: bool,
}

impl Principal {
    /// Whether this principal may see `tenant`'s objects.
    pub fn sees(&self, tenant: &str) -> bool {
        !self.role.scoped() || self.tenant.as_deref() == Some(tenant)
    }

    /// How the audit log names it.
    pub fn actor(&self) -> String {
        match &self.tenant {
            Some(t) => format!("token {} ({}, tenant {t})", self.token, self.role.name()),
            None => format!("token {} ({})", self.token, self.role.name()),
        }
    }
}

const PREFIX: &str = "lb_";

/// A new token: the row to store, and the token to hand out (once).
pub fn new_token(
    role: Role,
    tenant: Option<&str>,
    label: Option<&str>,
    now: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
) -> (TokenRow, String) {
    let minted = credential::mint(PREFIX);
    let row = TokenRow {
        id: minted.id,
        secret_sha256: minted.secret_sha256,
        role: role.name().into(),
        tenant: tenant.map(str::to_string),
        label: label.map(str::to_string),
        created: crate::evidence::record::time(now),
        expires: expires.map(crate::evidence::record::time),
        revoked: None,
        last_used: None,
    };
    (row, minted.presented)
}

/// Why a token was not accepted (the client is told only "invalid or expired token").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    WrongSecret,
    Revoked,
    Expired,
}

/// The id a presented token names, if it has the shape of one.
pub fn token_id(presented: &str) -> Option<&str> {
    split(presented).map(|(id, _)| id)
}

fn split(presented: &str) -> Option<(&str, &str)> {
    credential::split(presented, PREFIX)
}

/// Whether a stored token may be used at `now`.
fn usable(row: &TokenRow, now: DateTime<Utc>) -> Result<Role, Refused> {
    if row.revoked.is_some() {
        return Err(Refused::Revoked);
    }
    if let Some(expires) = &row.expires {
        let expired = DateTime::parse_from_rfc3339(expires).map_or(true, |e| e <= now);
        if expired {
            return Err(Refused::Expired);
        }
    }
    Role::parse(&row.role).ok_or(Refused::Unknown)
}

/// Checks a presented token against the catalog.
pub fn authenticate(
    catalog: &Catalog,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Result<Principal, Refused>, crate::catalog::Error> {
    let Some((id, secret)) = split(presented) else {
        return Ok(Err(Refused::Malformed));
    };
    let Some(row) = catalog.token(id)? else {
        return Ok(Err(Refused::Unknown));
    };
    if !credential::matches(&row.secret_sha256, secret) {
        return Ok(Err(Refused::WrongSecret));
    }
    Ok(usable(&row, now).map(|role| Principal {
        token: row.id,
        role,
        tenant: row.tenant,
        session: false,
    }))
}

/// How long a dashboard session lasts at most.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);

/// A new session for `who` (just authenticated with its token): the row to store and the
/// cookie's value (handed out once).
pub fn new_session(
    catalog: &Catalog,
    who: &Principal,
    now: DateTime<Utc>,
) -> Result<(SessionRow, String), crate::catalog::Error> {
    let secret = credential::new_secret();
    let token_expires = catalog
        .token(&who.token)?
        .and_then(|t| t.expires)
        .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
        .map(|e| e.with_timezone(&Utc));
    let expires = match token_expires {
        Some(t) => t.min(now + SESSION_LIFETIME),
        None => now + SESSION_LIFETIME,
    };
    let row = SessionRow {
        id_sha256: secret_hash(&secret),
        token: who.token.clone(),
        created: crate::evidence::record::time(now),
        expires: crate::evidence::record::time(expires),
    };
    Ok((row, secret))
}

/// The hash a session's cookie value is stored under.
pub fn session_key(cookie: &str) -> String {
    secret_hash(cookie)
}

/// Checks a dashboard session's cookie value: the session must exist and be unexpired, and
/// its token still usable.
pub fn authenticate_session(
    catalog: &Catalog,
    cookie: &str,
    now: DateTime<Utc>,
) -> Result<Result<Principal, Refused>, crate::catalog::Error> {
    let Some(session) = catalog.session(&secret_hash(cookie))? else {
        return Ok(Err(Refused::Unknown));
    };
    let expired = DateTime::parse_from_rfc3339(&session.expires).map_or(true, |e| e <= now);
    if expired {
        return Ok(Err(Refused::Expired));
    }
    let Some(row) = catalog.token(&session.token)? else {
        return Ok(Err(Refused::Unknown));
    };
    Ok(usable(&row, now).map(|role| Principal {
        token: row.id,
        role,
        tenant: row.tenant,
        session: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_out_and_fail_for_the_right_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(dir.path()).unwrap();
        let now = Utc::now();
        let (row, token) = new_token(Role::Customer, Some("acme"), None, now, None);
        catalog.add_token(&row).unwrap();
        assert!(!catalog.tokens().unwrap()[0]
            .secret_sha256
            .contains(&token[16..]));
        let p = authenticate(&catalog, &token, now).unwrap().unwrap();
        assert_eq!(p.role, Role::Customer);
        assert!(p.sees("acme") && !p.sees("bakery"));

        let mut wrong = token.clone();
        wrong.pop();
        wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            authenticate(&catalog, &wrong, now).unwrap(),
            Err(Refused::WrongSecret)
        );
        assert_eq!(
            authenticate(&catalog, "lb_nope", now).unwrap(),
            Err(Refused::Malformed)
        );
        assert_eq!(
            authenticate(&catalog, "lb_000000000000_x", now).unwrap(),
            Err(Refused::Unknown)
        );

        let (row, short) = new_token(
            Role::Admin,
            None,
            None,
            now,
            Some(now + chrono::Duration::hours(1)),
        );
        catalog.add_token(&row).unwrap();
        assert!(authenticate(&catalog, &short, now).unwrap().is_ok());
        assert_eq!(
            authenticate(&catalog, &short, now + chrono::Duration::hours(2)).unwrap(),
            Err(Refused::Expired)
        );
        assert!(catalog.revoke_token(&row.id, now).unwrap());
        assert_eq!(
            authenticate(&catalog, &short, now).unwrap(),
            Err(Refused::Revoked)
        );
    }

    #[test]
    fn sessions_end_at_logout_with_their_token_or_after_their_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(dir.path()).unwrap();
        let now = Utc::now();
        let (row, token) = new_token(Role::Customer, Some("acme"), None, now, None);
        catalog.add_token(&row).unwrap();
        let who = authenticate(&catalog, &token, now).unwrap().unwrap();
        let (session, cookie) = new_session(&catalog, &who, now).unwrap();
        assert!(!cookie.contains(&token) && session.id_sha256 != cookie);
        catalog.add_session(&session, now).unwrap();
        let p = authenticate_session(&catalog, &cookie, now)
            .unwrap()
            .unwrap();
        assert!(p.session && p.role == Role::Customer && p.tenant.as_deref() == Some("acme"));
        // The token is not a session, and a session is not a token.
        assert_eq!(
            authenticate_session(&catalog, &token, now).unwrap(),
            Err(Refused::Unknown)
        );
        assert!(authenticate(&catalog, &cookie, now).unwrap().is_err());
        // Past its lifetime; then ended by logout.
        let later = now + SESSION_LIFETIME + chrono::Duration::seconds(1);
        assert_eq!(
            authenticate_session(&catalog, &cookie, later).unwrap(),
            Err(Refused::Expired)
        );
        assert!(catalog.end_session(&session_key(&cookie)).unwrap());
        assert_eq!(
            authenticate_session(&catalog, &cookie, now).unwrap(),
            Err(Refused::Unknown)
        );
        // A session ends with its token: an hour-long token, revoked.
        let (short_row, short) = new_token(
            Role::Admin,
            None,
            None,
            now,
            Some(now + chrono::Duration::hours(1)),
        );
        catalog.add_token(&short_row).unwrap();
        let admin = authenticate(&catalog, &short, now).unwrap().unwrap();
        let (s2, c2) = new_session(&catalog, &admin, now).unwrap();
        assert_eq!(
            s2.expires,
            crate::evidence::record::time(now + chrono::Duration::hours(1))
        );
        catalog.add_session(&s2, now).unwrap();
        catalog.revoke_token(&short_row.id, now).unwrap();
        assert_eq!(
            authenticate_session(&catalog, &c2, now).unwrap(),
            Err(Refused::Revoked)
        );
    }
}
