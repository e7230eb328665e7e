//! API tokens, dashboard sessions and the audit log, in the catalog. A token's or a
//! session's secret is never stored: only its SHA-256, which is enough for secrets of 256
//! random bits.

use super::db::{DbResult, Row};
use super::{Catalog, Result};
use crate::args;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub role: String,
    pub tenant: Option<String>,
    pub label: Option<String>,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
    pub last_used: Option<String>,
}

/// A dashboard session: made at login, ended at logout or when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_sha256: String,
    /// The token it was made with.
    pub token: String,
    pub created: String,
    pub expires: String,
}

/// One change made through the API or the token commands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub time: String,
    /// Who: `token ID (ROLE[, tenant T])`, or `cli (USER)`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `ok`, or why it was refused or failed.
    pub outcome: String,
}

fn token(r: &Row) -> DbResult<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        secret_sha256: r.get(1)?,
        role: r.get(2)?,
        tenant: r.get(3)?,
        label: r.get(4)?,
        created: r.get(5)?,
        expires: r.get(6)?,
        revoked: r.get(7)?,
        last_used: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, secret_sha256, role, tenant, label, created, expires, revoked, last_used";

impl Catalog {
    pub fn add_token(&mut self, t: &TokenRow) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO tokens (id, secret_sha256, role, tenant, label, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                &t.id,
                &t.secret_sha256,
                &t.role,
                &t.tenant,
                &t.label,
                &t.created,
                &t.expires
            ],
        );
        self.sql(r).map(|_| ())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let r = self.db.query_row(
            &format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"),
            args![id],
            token,
        );
        self.sql(r)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = self.db.query_map(
            &format!("SELECT {COLUMNS} FROM tokens ORDER BY created, id"),
            &[],
            token,
        );
        self.sql(rows)
    }

    /// Revokes a token; false if there is no such token or it was revoked before.
    pub fn revoke_token(&mut self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = self.db.execute(
            "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            args![id, now.to_rfc3339()],
        );
        Ok(self.sql(r)? == 1)
    }

    pub fn touch_token(&mut self, id: &str, now: DateTime<Utc>) -> Result<()> {
        let r = self.db.execute(
            "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
            args![id, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    /// Stores a new session, and forgets sessions that expired before `now`.
    pub fn add_session(&mut self, s: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        let r = self.db.execute(
            "DELETE FROM sessions WHERE expires <= ?1",
            args![crate::evidence::record::time(now)],
        );
        self.sql(r)?;
        let r = self.db.execute(
            "INSERT INTO sessions (id_sha256, token, created, expires) VALUES (?1, ?2, ?3, ?4)",
            args![&s.id_sha256, &s.token, &s.created, &s.expires],
        );
        self.sql(r).map(|_| ())
    }

    pub fn session(&self, id_sha256: &str) -> Result<Option<SessionRow>> {
        let r = self.db.query_row(
            "SELECT id_sha256, token, created, expires FROM sessions WHERE id_sha256 = ?1",
            args![id_sha256],
            |r| {
                Ok(SessionRow {
                    id_sha256: r.get(0)?,
                    token: r.get(1)?,
                    created: r.get(2)?,
                    expires: r.get(3)?,
                })
            },
        );
        self.sql(r)
    }

    /// Ends a session (logout); false if there was none.
    pub fn end_session(&mut self, id_sha256: &str) -> Result<bool> {
        let r = self.db.execute(
            "DELETE FROM sessions WHERE id_sha256 = ?1",
            args![id_sha256],
        );
        Ok(self.sql(r)? == 1)
    }

    pub fn audit(
        &mut self,
        now: DateTime<Utc>,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO audit (time, actor, action, target, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![
                crate::evidence::record::time(now),
                actor,
                action,
                target,
                outcome
            ],
        );
        self.sql(r).map(|_| ())
    }

    /// The newest `limit` entries of the audit log, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>> {
        let rows = self.db.query_map(
            "SELECT id, time, actor, action, target, outcome FROM audit ORDER BY id DESC LIMIT ?1",
            args![limit],
            |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    outcome: r.get(5)?,
                })
            },
        );
        self.sql(rows)
    }
}
