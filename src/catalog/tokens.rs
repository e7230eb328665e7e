//! API tokens, dashboard sessions and the audit log, in the catalog. A token's or a
//! session's secret is never stored: only its SHA-256, which is enough for secrets of 256
//! random bits.

use super::{Catalog, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

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

fn token(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
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
        let r = self.conn.execute(
            "INSERT INTO tokens (id, secret_sha256, role, tenant, label, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                t.id,
                t.secret_sha256,
                t.role,
                t.tenant,
                t.label,
                t.created,
                t.expires
            ],
        );
        self.sql(r).map(|_| ())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let r = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"),
                [id],
                token,
            )
            .optional();
        self.sql(r)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut stmt = self.sql(self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM tokens ORDER BY created, id"
        )))?;
        let rows = self.sql(stmt.query_map([], token))?;
        self.sql(rows.collect())
    }

    /// Revokes a token; false if there is no such token or it was revoked before.
    pub fn revoke_token(&mut self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = self.conn.execute(
            "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now.to_rfc3339()],
        );
        Ok(self.sql(r)? == 1)
    }

    pub fn touch_token(&mut self, id: &str, now: DateTime<Utc>) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
            params![id, now.to_rfc3339()],
        );
        self.sql(r).map(|_| ())
    }

    /// Stores a new session, and forgets sessions that expired before `now`.
    pub fn add_session(&mut self, s: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        let r = self.conn.execute(
            "DELETE FROM sessions WHERE expires <= ?1",
            [crate::evidence::record::time(now)],
        );
        self.sql(r)?;
        let r = self.conn.execute(
            "INSERT INTO sessions (id_sha256, token, created, expires) VALUES (?1, ?2, ?3, ?4)",
            params![s.id_sha256, s.token, s.created, s.expires],
        );
        self.sql(r).map(|_| ())
    }

    pub fn session(&self, id_sha256: &str) -> Result<Option<SessionRow>> {
        let r = self
            .conn
            .query_row(
                "SELECT id_sha256, token, created, expires FROM sessions WHERE id_sha256 = ?1",
                [id_sha256],
                |r| {
                    Ok(SessionRow {
                        id_sha256: r.get(0)?,
                        token: r.get(1)?,
                        created: r.get(2)?,
                        expires: r.get(3)?,
                    })
                },
            )
            .optional();
        self.sql(r)
    }

    /// Ends a session (logout); false if there was none.
    pub fn end_session(&mut self, id_sha256: &str) -> Result<bool> {
        let r = self
            .conn
            .execute("DELETE FROM sessions WHERE id_sha256 = ?1", [id_sha256]);
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
        let r = self.conn.execute(
            "INSERT INTO audit (time, actor, action, target, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
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
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT id, time, actor, action, target, outcome FROM audit ORDER BY id DESC LIMIT ?1",
        ))?;
        let rows = self.sql(stmt.query_map([limit], |r| {
            Ok(AuditRow {
                id: r.get(0)?,
                time: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                outcome: r.get(5)?,
            })
        }))?;
        self.sql(rows.collect())
    }
}
