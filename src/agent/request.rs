//! Agents' requests, signed with the agent's enrolled key, so the centre knows which agent
//! asks, and a captured request cannot be sent again.
//!
//! The agent signs `lifeboat-agent-request-v1`, the method, the path with its query, the time,
//! a fresh random nonce and the SHA-256 of the body, one per line, with a detached OpenPGP
//! signature. The centre accepts a request when the signature is the enrolled agent's, the
//! agent is not revoked, the time is within `MAX_SKEW` of its own clock, and the nonce was
//! not seen before (nonces are kept for twice `MAX_SKEW`, in the catalog, so every central
//! instance sees them).

use crate::catalog::sites::AgentRow;
use crate::catalog::Catalog;
use crate::repo::crypto::{self, PublicCert, SecretKey};
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub const AGENT: &str = "x-lifeboat-agent";
pub const TIME: &str = "x-lifeboat-time";
pub const NONCE: &str = "x-lifeboat-nonce";
pub const SIGNATURE: &str = "x-lifeboat-signature";
pub const VERSION: &str = "x-lifeboat-version";

/// How far an agent's clock may be from the centre's.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// How stale an agent's last contact may be before a request of its notes it again.
const CONTACT_EVERY: chrono::Duration = chrono::Duration::seconds(15);

/// What is signed.
fn canonical(method: &str, path: &str, time: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "lifeboat-agent-request-v1\n{method}\n{path}\n{time}\n{nonce}\n{}\n",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// The headers that sign a request with the agent's `key`.
pub fn sign(
    key: &SecretKey,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> crypto::Result<Vec<(&'static str, String)>> {
    let time = crate::evidence::record::time(now);
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let signature = crypto::sign_detached(key, &canonical(method, path, &time, &nonce, body))?;
    Ok(vec![
        (AGENT, key.fingerprint().to_hex()),
        (TIME, time),
        (NONCE, nonce),
        (
            SIGNATURE,
            base64::engine::general_purpose::STANDARD.encode(signature),
        ),
        (VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ])
}

/// Why a request was not taken for an agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    Missing(&'static str),
    UnknownAgent,
    BadSignature,
    Revoked(String),
    /// The agent's clock minus the centre's, in milliseconds.
    Skewed(i64),
    Replayed,
}

impl Rejected {
    pub fn message(&self) -> String {
        match self {
            Rejected::Missing(h) => format!("an agent's request needs the header {h}"),
            Rejected::UnknownAgent | Rejected::BadSignature => {
                "not a request of an enrolled agent: unknown agent or bad signature".into()
            }
            Rejected::Revoked(when) => format!(
                "this agent was revoked on {when}: enroll a new one with a new token from an \
                 admin"
            ),
            Rejected::Skewed(ms) => format!(
                "the agent's clock is {:.0} s {} the centre's (at most {} s allowed): set the \
                 site's clock right (NTP)",
                (*ms as f64 / 1000.0).abs(),
                if *ms > 0 { "ahead of" } else { "behind" },
                MAX_SKEW.num_seconds()
            ),
            Rejected::Replayed => "this request was seen before: a request is accepted once".into(),
        }
    }

    /// Whether it counts as a failed login (guessing, forging) rather than a known agent's
    /// trouble.
    pub fn is_guess(&self) -> bool {
        matches!(
            self,
            Rejected::Missing(_) | Rejected::UnknownAgent | Rejected::BadSignature
        )
    }
}

/// A request the centre took for an agent's.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: AgentRow,
    pub skew_ms: i64,
}

/// Checks a request (`header` reads its headers) against the enrolled agents, and notes the
/// agent's contact. `Ok(Err(_))` says why it is refused.
pub fn verify(
    catalog: &mut Catalog,
    header: impl Fn(&str) -> Option<String>,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<Caller, Rejected>, crate::catalog::Error> {
    let get = |name: &'static str| header(name).ok_or(Rejected::Missing(name));
    let fields = (|| Ok((get(AGENT)?, get(TIME)?, get(NONCE)?, get(SIGNATURE)?)))();
    let (agent_id, time, nonce, signature) = match fields {
        Ok(f) => f,
        Err(why) => return Ok(Err(why)),
    };
    let Some(agent) = catalog.agent(&agent_id)? else {
        return Ok(Err(Rejected::UnknownAgent));
    };
    let signed = canonical(method, path, &time, &nonce, body);
    let authentic = base64::engine::general_purpose::STANDARD
        .decode(signature.as_bytes())
        .ok()
        .zip(PublicCert::from_bytes(agent.certificate.as_bytes()).ok())
        .is_some_and(|(sig, cert)| crypto::verify_detached(&cert, &signed, &sig).is_ok());
    let sent = DateTime::parse_from_rfc3339(&time).map(|t| t.with_timezone(&Utc));
    let (true, Ok(sent)) = (authentic && nonce.len() == 32, sent) else {
        return Ok(Err(Rejected::BadSignature));
    };
    if let Some(when) = &agent.revoked {
        return Ok(Err(Rejected::Revoked(when.clone())));
    }
    let skew = sent - now;
    // (So a nonce older than that may be forgotten: `forget_nonces`.)
    if skew.abs() > MAX_SKEW {
        return Ok(Err(Rejected::Skewed(skew.num_milliseconds())));
    }
    let at = crate::evidence::record::time(now);
    let version = header(VERSION);
    // The last contact is noted at each check-in (once a minute), and at other requests
    // when it is news: a new version, or after CONTACT_EVERY (an agent's long polls and
    // pushes come every few seconds, and each would be a write).
    let news = path.split('?').next() == Some(super::check_in::PATH)
        || version.is_some() && version != agent.version
        || agent.last_contact.as_deref().is_none_or(|last| {
            DateTime::parse_from_rfc3339(last)
                .map_or(true, |last| now - last.with_timezone(&Utc) >= CONTACT_EVERY)
        });
    let contact = news.then_some(crate::catalog::sites::Contact {
        version: version.as_deref(),
        skew_ms: skew.num_milliseconds(),
    });
    if !catalog.accept_nonce(&agent.id, &nonce, &at)? {
        return Ok(Err(Rejected::Replayed));
    }
    if let Some(contact) = contact {
        catalog.agent_contact(&agent.id, &at, contact)?;
    }
    Ok(Ok(Caller {
        agent,
        skew_ms: skew.num_milliseconds(),
    }))
}
