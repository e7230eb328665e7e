//! Sites' enrollment tokens and the agents enrolled with them. An enrollment token's secret is
//! never stored, only its SHA-256; a token is redeemed once, in the same transaction that
//! records the agent, so two agents racing with one token cannot both enroll.

use super::db::{Begin, DbResult, Row};
use super::{Catalog, Result};
use crate::args;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnrollTokenRow {
    pub id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub site: String,
    pub created: String,
    pub expires: String,
    pub used: Option<String>,
    /// The agent that redeemed it.
    pub agent: Option<String>,
}

/// What an agent's request says of it: its version (if it sent one) and how far its clock
/// is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact<'a> {
    pub version: Option<&'a str>,
    pub skew_ms: i64,
}

/// An enrolled agent: its id is its certificate's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentRow {
    pub id: String,
    pub site: String,
    pub tenant: String,
    /// The agent's OpenPGP certificate (armored): what its requests and evidence are
    /// checked against.
    pub certificate: String,
    /// The centre's statement binding the agent to its site and tenant (canonical JSON),
    /// and the service's detached signature of it.
    pub statement: String,
    pub signature: String,
    pub enrolled: String,
    pub enroll_token: String,
    pub version: Option<String>,
    pub revoked: Option<String>,
    pub last_contact: Option<String>,
    /// The agent's clock minus the centre's at its last request, in milliseconds.
    pub clock_skew_ms: Option<i64>,
    /// Records in its outbox not yet acknowledged, as it said at its last check-in.
    pub backlog: Option<i64>,
}

/// Why a presented enrollment token cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unredeemable {
    Unknown,
    WrongSecret,
    Used,
    Expired,
}

fn enroll_token(r: &Row) -> DbResult<EnrollTokenRow> {
    Ok(EnrollTokenRow {
        id: r.get(0)?,
        secret_sha256: r.get(1)?,
        site: r.get(2)?,
        created: r.get(3)?,
        expires: r.get(4)?,
        used: r.get(5)?,
        agent: r.get(6)?,
    })
}

fn agent(r: &Row) -> DbResult<AgentRow> {
    Ok(AgentRow {
        id: r.get(0)?,
        site: r.get(1)?,
        tenant: r.get(2)?,
        certificate: r.get(3)?,
        statement: r.get(4)?,
        signature: r.get(5)?,
        enrolled: r.get(6)?,
        enroll_token: r.get(7)?,
        version: r.get(8)?,
        revoked: r.get(9)?,
        last_contact: r.get(10)?,
        clock_skew_ms: r.get(11)?,
        backlog: r.get(12)?,
    })
}

const AGENT_COLUMNS: &str = "id, site, tenant, certificate, statement, signature, enrolled, \
                             enroll_token, version, revoked, last_contact, clock_skew_ms, backlog";

impl Catalog {
    pub fn add_enroll_token(&mut self, t: &EnrollTokenRow) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO enroll_tokens (id, secret_sha256, site, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            args![&t.id, &t.secret_sha256, &t.site, &t.created, &t.expires],
        );
        self.sql(r).map(|_| ())
    }

    pub fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRow>> {
        let r = self.db.query_row(
            "SELECT id, secret_sha256, site, created, expires, used, agent
             FROM enroll_tokens WHERE id = ?1",
            args![id],
            enroll_token,
        );
        self.sql(r)
    }

    /// Redeems token `id` for `agent` at `now` and records the agent, in one transaction:
    /// `Ok(Err(why))` when the token is used, expired or unknown (nothing is recorded then).
    /// `check` tells whether the token's stored hash matches what was presented.
    pub fn redeem_enroll_token(
        &mut self,
        id: &str,
        check: impl FnOnce(&EnrollTokenRow) -> bool,
        agent: &AgentRow,
        now: &str,
    ) -> Result<std::result::Result<(), Unredeemable>> {
        let db = &*self.db;
        let redeemed = (|| {
            let tx = db.begin(Begin::Immediate)?;
            let row = tx.query_row(
                "SELECT id, secret_sha256, site, created, expires, used, agent
                 FROM enroll_tokens WHERE id = ?1",
                args![id],
                enroll_token,
            )?;
            let verdict = match &row {
                None => Err(Unredeemable::Unknown),
                Some(row) if !check(row) => Err(Unredeemable::WrongSecret),
                Some(row) if row.used.is_some() => Err(Unredeemable::Used),
                Some(row) if row.expires.as_str() <= now => Err(Unredeemable::Expired),
                Some(_) => Ok(()),
            };
            if verdict.is_err() {
                return Ok(verdict);
            }
            // Another instance of the service may have redeemed it since it was read.
            let taken = tx.execute(
                "UPDATE enroll_tokens SET used = ?2, agent = ?3 WHERE id = ?1 AND used IS NULL",
                args![id, now, &agent.id],
            )?;
            if taken != 1 {
                return Ok(Err(Unredeemable::Used));
            }
            tx.execute(
                &format!(
                    "INSERT INTO agents ({AGENT_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?7, NULL, NULL)"
                ),
                args![
                    &agent.id,
                    &agent.site,
                    &agent.tenant,
                    &agent.certificate,
                    &agent.statement,
                    &agent.signature,
                    &agent.enrolled,
                    &agent.enroll_token,
                    &agent.version,
                ],
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })();
        self.sql(redeemed)
    }

    pub fn agent(&self, id: &str) -> Result<Option<AgentRow>> {
        let r = self.db.query_row(
            &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1"),
            args![id],
            agent,
        );
        self.sql(r)
    }

    /// Every agent ever enrolled, by site, oldest first.
    pub fn agents(&self) -> Result<Vec<AgentRow>> {
        let rows = self.db.query_map(
            &format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY site, enrolled, id"),
            &[],
            agent,
        );
        self.sql(rows)
    }

    /// Revokes an agent; false if there is none or it was revoked before.
    pub fn revoke_agent(&mut self, id: &str, now: &str) -> Result<bool> {
        let r = self.db.execute(
            "UPDATE agents SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            args![id, now],
        );
        Ok(self.sql(r)? == 1)
    }

    /// Takes `nonce` for one request of `agent` at `now`; false if it was taken before (a
    /// replay). One statement, as every request of every agent comes here: the nonces too old
    /// to matter go in `forget_nonces`, and the contact is noted with `agent_contact` when it
    /// is news.
    pub fn accept_nonce(&mut self, agent: &str, nonce: &str, now: &str) -> Result<bool> {
        let r = self.db.execute(
            "INSERT INTO agent_nonces (agent, nonce, seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent, nonce) DO NOTHING",
            args![agent, nonce, now],
        );
        Ok(self.sql(r)? == 1)
    }

    /// Forgets the nonces seen before `before`: requests that old are refused for their time
    /// alone.
    pub fn forget_nonces(&mut self, before: &str) -> Result<u64> {
        let r = self
            .db
            .execute("DELETE FROM agent_nonces WHERE seen < ?1", args![before]);
        self.sql(r)
    }

    /// Notes an agent's request: when, its version, and how far its clock is off.
    pub fn agent_contact(&mut self, agent: &str, now: &str, contact: Contact<'_>) -> Result<()> {
        let r = self.db.execute(
            "UPDATE agents SET last_contact = ?2, version = COALESCE(?3, version),
             clock_skew_ms = ?4 WHERE id = ?1",
            args![agent, now, contact.version, contact.skew_ms],
        );
        self.sql(r).map(|_| ())
    }

    /// Notes the backlog of an agent's outbox, as it reported it.
    pub fn agent_backlog(&mut self, agent: &str, backlog: i64) -> Result<()> {
        let r = self.db.execute(
            "UPDATE agents SET backlog = ?2 WHERE id = ?1",
            args![agent, backlog],
        );
        self.sql(r).map(|_| ())
    }

    /// Every recorded silence: the site, and since when.
    pub fn site_silences(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let r = self
            .db
            .query_map("SELECT site, since FROM site_silences", &[], |r| {
                Ok((r.get(0)?, r.get(1)?))
            });
        self.sql(r).map(|rows| rows.into_iter().collect())
    }

    /// Notes that the silence of `site` since `since` was recorded at `now`.
    pub fn record_site_silence(&mut self, site: &str, since: &str, now: &str) -> Result<()> {
        let r = self.db.execute(
            "INSERT INTO site_silences (site, since, recorded) VALUES (?1, ?2, ?3)
             ON CONFLICT (site) DO UPDATE SET since = excluded.since, recorded = excluded.recorded",
            args![site, since, now],
        );
        self.sql(r).map(|_| ())
    }

    /// The site spoke again: a later silence is a new incident.
    pub fn end_site_silence(&mut self, site: &str) -> Result<bool> {
        let r = self
            .db
            .execute("DELETE FROM site_silences WHERE site = ?1", args![site]);
        Ok(self.sql(r)? == 1)
    }
}
