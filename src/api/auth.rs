//! Bearer tokens, roles and tenant scope, and the slow-down of repeated failed logins.
//!
//! A token reads `lb_<id>_<secret>`: a 12-hex-digit id (shown in lists and the audit log) and
//! 256 random bits. Only the secret's SHA-256 is stored, compared in constant time.

use crate::catalog::tokens::TokenRow;
use crate::catalog::Catalog;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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
const ID_LEN: usize = 12;

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new token: the row to store, and the token to hand out (once).
pub fn new_token(
    role: Role,
    tenant: Option<&str>,
    label: Option<&str>,
    now: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
) -> (TokenRow, String) {
    let id: [u8; ID_LEN / 2] = rand::random();
    let secret: [u8; 32] = rand::random();
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let row = TokenRow {
        id: id.clone(),
        secret_sha256: secret_hash(&secret),
        role: role.name().into(),
        tenant: tenant.map(str::to_string),
        label: label.map(str::to_string),
        created: crate::evidence::record::time(now),
        expires: expires.map(crate::evidence::record::time),
        revoked: None,
        last_used: None,
    };
    (row, format!("{PREFIX}{id}_{secret}"))
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

/// Checks a presented token against the catalog.
pub fn authenticate(
    catalog: &Catalog,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Result<Principal, Refused>, crate::catalog::Error> {
    let Some((id, secret)) = presented
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_at_checked(ID_LEN))
        .and_then(|(id, rest)| Some((id, rest.strip_prefix('_')?)))
    else {
        return Ok(Err(Refused::Malformed));
    };
    let Some(row) = catalog.token(id)? else {
        return Ok(Err(Refused::Unknown));
    };
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(secret_hash(secret).as_bytes(), row.secret_sha256.as_bytes())
            .into();
    if !matches {
        return Ok(Err(Refused::WrongSecret));
    }
    if row.revoked.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    if let Some(expires) = &row.expires {
        let expired = DateTime::parse_from_rfc3339(expires).map_or(true, |e| e <= now);
        if expired {
            return Ok(Err(Refused::Expired));
        }
    }
    let Some(role) = Role::parse(&row.role) else {
        return Ok(Err(Refused::Unknown));
    };
    Ok(Ok(Principal {
        token: row.id,
        role,
        tenant: row.tenant,
    }))
}

/// Failed logins per client address: each failure delays the next answer to that address a
/// little more, and past `LOCK_AFTER` failures within `WINDOW` it is refused outright (429)
/// until the window has passed.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, std::time::Instant)>>,
}

pub const LOCK_AFTER: u32 = 10;
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Throttle {
    /// How long to wait before answering this address, or `Err(retry_after)` when it is
    /// locked out.
    pub fn delay(&self, ip: IpAddr) -> Result<std::time::Duration, std::time::Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((_, since)) if since.elapsed() > WINDOW => {
                map.remove(&ip);
                Ok(std::time::Duration::ZERO)
            }
            Some((n, since)) if *n >= LOCK_AFTER => Err(WINDOW.saturating_sub(since.elapsed())),
            Some((n, _)) => Ok(std::time::Duration::from_millis(
                (50 * u64::from(*n)).min(1000),
            )),
            None => Ok(std::time::Duration::ZERO),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.entry(ip).or_insert((0, std::time::Instant::now()));
        e.0 += 1;
        // Keep memory bounded under a spray of addresses.
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() <= WINDOW);
        }
    }

    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&ip).is_some_and(|(n, _)| *n < LOCK_AFTER) {
            map.remove(&ip);
        }
    }
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
    fn failures_slow_down_then_lock_out() {
        let t = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(t.delay(ip), Ok(std::time::Duration::ZERO));
        t.failed(ip);
        t.failed(ip);
        assert_eq!(t.delay(ip), Ok(std::time::Duration::from_millis(100)));
        t.succeeded(ip);
        assert_eq!(t.delay(ip), Ok(std::time::Duration::ZERO));
        for _ in 0..LOCK_AFTER {
            t.failed(ip);
        }
        assert!(t.delay(ip).is_err());
        // A right token does not lift a lock-out.
        t.succeeded(ip);
        assert!(t.delay(ip).is_err());
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.delay(other), Ok(std::time::Duration::ZERO));
    }
}
