//! Enrollment: an agent with a one-time token for a site becomes that site's agent.
//!
//! The agent makes its own key pair and sends its certificate with the token. The centre
//! redeems the token (once), records the certificate against the site and its tenant, and
//! answers with a statement of that binding signed by the service key, plus the service's
//! certificate, which the agent checks the statement with and pins. Asked again with the same
//! token by the same key (an agent cut off before it saved the answer), the centre gives the
//! same answer; any other second use is refused.
//!
//! The agent's data directory then holds `agent.key` (mode 0600) and `agent.cert`, the
//! pinned `centre.cert`, and `enrollment.json` (written last: an agent is enrolled once it is
//! there).

use super::client::Centre;
use super::{token, Error, Result};
use crate::catalog::sites::{AgentRow, Unredeemable};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::repo::crypto::{self, PublicCert, SecretKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::path::Path;

/// What an agent sends to enroll.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token (`lbe_…`) an admin made for the site.
    pub token: String,
    /// The agent's OpenPGP certificate (armored).
    pub certificate: String,
    /// The agent's Lifeboat version.
    #[serde(default)]
    pub version: Option<String>,
}

/// What the centre answers an agent that enrolled.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollAnswer {
    /// The agent's id: its certificate's fingerprint.
    pub agent: String,
    pub site: String,
    pub tenant: String,
    /// The service's certificate (armored): the agent pins it.
    pub centre_certificate: String,
    /// The binding of the agent to its site and tenant (canonical JSON of a `Statement`)…
    pub statement: String,
    /// …and the service's detached, armored signature of it.
    pub signature: String,
}

pub use crate::evidence::enrollment::{Statement, STATEMENT};

/// Why the centre did not enroll an agent: said to the agent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token, an unknown one, or a wrong secret (counted as a failed login).
    BadToken,
    Used {
        when: String,
    },
    Expired {
        when: String,
    },
    BadCertificate(String),
    /// The token's site is no longer in the configuration.
    SiteGone(String),
    /// This key is enrolled already (with another token).
    KeyEnrolled,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::BadToken => "not a valid enrollment token: ask an admin for one made with \
                                  'lifeboat site enroll-token SITE'"
                .into(),
            Refusal::Used { when } => format!(
                "this enrollment token was used on {when}: each enrolls one agent; ask an admin \
                 for a new one"
            ),
            Refusal::Expired { when } => {
                format!("this enrollment token expired on {when}: ask an admin for a new one")
            }
            Refusal::BadCertificate(why) => format!("the agent's certificate: {why}"),
            Refusal::SiteGone(site) => format!(
                "the token is for site '{site}', which the centre's configuration no longer has"
            ),
            Refusal::KeyEnrolled => "this agent key is enrolled already; an agent enrolls once \
                                     (start a new one from an empty data directory)"
                .into(),
        }
    }
}

/// The centre's side: redeems the token in `request` for the agent's key, records the agent
/// and signs its statement. `Ok(Err(_))` says why not; nothing is recorded then.
pub fn redeem(
    catalog: &mut Catalog,
    config: &Config,
    signing: &SecretKey,
    request: &EnrollRequest,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EnrollAnswer, Refusal>> {
    let Some((id, secret)) = token::split(request.token.trim()) else {
        return Ok(Err(Refusal::BadToken));
    };
    let cert = match PublicCert::from_bytes(request.certificate.as_bytes()) {
        Ok(cert) => cert,
        Err(e) => {
            return Ok(Err(Refusal::BadCertificate(format!(
                "not a certificate: {e}"
            ))))
        }
    };
    let agent_id = cert.fingerprint().to_hex();
    let centre = signing.public();
    let Some(row) = catalog.enroll_token(id)? else {
        return Ok(Err(Refusal::BadToken));
    };
    if !token::matches(&row, secret) {
        return Ok(Err(Refusal::BadToken));
    }
    // The same agent asking again (its first answer was lost): the same answer.
    if row.agent.as_deref() == Some(agent_id.as_str()) {
        if let Some(agent) = catalog.agent(&agent_id)? {
            return Ok(Ok(answer(&agent, &centre)?));
        }
    }
    if let Some(when) = row.used.clone() {
        return Ok(Err(Refusal::Used { when }));
    }
    let Some(site) = config.sites.get(&row.site) else {
        return Ok(Err(Refusal::SiteGone(row.site.clone())));
    };
    if catalog.agent(&agent_id)?.is_some() {
        return Ok(Err(Refusal::KeyEnrolled));
    }
    let enrolled = crate::evidence::record::time(now);
    let statement = Statement {
        statement: STATEMENT.into(),
        agent: agent_id.clone(),
        site: row.site.clone(),
        tenant: site.tenant.get_ref().clone(),
        enrolled: enrolled.clone(),
        enroll_token: row.id.clone(),
        centre: centre.fingerprint().to_hex(),
    };
    let text = serde_json_canonicalizer::to_string(&statement)
        .map_err(|e| Error::Other(format!("cannot write the enrollment statement: {e}")))?;
    let signature = crypto::sign_detached(signing, text.as_bytes())?;
    let agent = AgentRow {
        id: agent_id,
        site: statement.site.clone(),
        tenant: statement.tenant.clone(),
        certificate: cert.armored()?,
        statement: text,
        signature,
        enrolled: enrolled.clone(),
        enroll_token: row.id.clone(),
        version: request.version.clone(),
        revoked: None,
        last_contact: None,
        clock_skew_ms: None,
        backlog: None,
    };
    let check = |stored: &crate::catalog::sites::EnrollTokenRow| token::matches(stored, secret);
    match catalog.redeem_enroll_token(id, check, &agent, &enrolled)? {
        Ok(()) => Ok(Ok(answer(&agent, &centre)?)),
        Err(Unredeemable::Unknown | Unredeemable::WrongSecret) => Ok(Err(Refusal::BadToken)),
        Err(Unredeemable::Used) => Ok(Err(Refusal::Used {
            when: "another request just now".into(),
        })),
        Err(Unredeemable::Expired) => Ok(Err(Refusal::Expired {
            when: row.expires.clone(),
        })),
    }
}

fn answer(agent: &AgentRow, centre: &PublicCert) -> Result<EnrollAnswer> {
    Ok(EnrollAnswer {
        agent: agent.id.clone(),
        site: agent.site.clone(),
        tenant: agent.tenant.clone(),
        centre_certificate: centre.armored()?,
        statement: agent.statement.clone(),
        signature: agent.signature.clone(),
    })
}

/// What an enrolled agent keeps of its enrollment (`enrollment.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolled {
    /// The centre's address.
    pub server: String,
    pub agent: String,
    pub site: String,
    pub tenant: String,
    /// The pinned service certificate's fingerprint (the certificate is `centre.cert`).
    pub centre: String,
    pub statement: String,
    pub signature: String,
}

pub const ENROLLMENT_FILE: &str = "enrollment.json";
pub const KEY_FILE: &str = "agent.key";
pub const CENTRE_CERT_FILE: &str = "centre.cert";

/// The agent's side: makes (or, after an interrupted attempt, reuses) the agent's key in
/// `data_dir`, enrolls it at `server` with `token`, checks the signed answer (against
/// `expect_centre`, the service's fingerprint, when given) and pins the centre.
pub fn enroll(
    server: &str,
    enroll_token: &str,
    data_dir: &Path,
    expect_centre: Option<&str>,
) -> Result<Enrolled> {
    let centre_at = Centre::new(server)?;
    let server = centre_at.base().to_string();
    if let Some(done) = enrolled(data_dir)? {
        return Err(Error::Refused(format!(
            "{} is the data directory of the agent of site '{}' at {} already; an agent \
             enrolls once (start a new one from an empty data directory)",
            data_dir.display(),
            done.site,
            done.server
        )));
    }
    crate::catalog::private_dir(data_dir).map_err(|e| io_error(data_dir, e))?;
    let key = agent_key(data_dir)?;
    let request = EnrollRequest {
        token: enroll_token.trim().to_string(),
        certificate: key.public().armored()?,
        version: Some(env!("CARGO_PKG_VERSION").into()),
    };
    let answer: EnrollAnswer = centre_at
        .call("POST", "/api/v1/agent/enroll", Some(&request), None)
        .map_err(|e| match e {
            Error::Centre { status, message } => Error::Refused(format!(
                "the centre refused the enrollment: {message} ({status})"
            )),
            other => other,
        })?;
    let me = key.fingerprint().to_hex();
    if answer.agent != me {
        return Err(Error::Refused(format!(
            "the centre answered for agent {}, not for this one ({me}); nothing was saved",
            answer.agent
        )));
    }
    let centre = PublicCert::from_bytes(answer.centre_certificate.as_bytes())
        .map_err(|e| Error::Refused(format!("the centre's certificate: {e}")))?;
    let fingerprint = centre.fingerprint().to_hex();
    if let Some(expected) = expect_centre {
        let expected: String = expected.chars().filter(|c| !c.is_whitespace()).collect();
        if !expected.eq_ignore_ascii_case(&fingerprint) {
            return Err(Error::Refused(format!(
                "the centre at {server} signs with {fingerprint}, not with the expected \
                 {expected}: nothing was saved; check --centre-fingerprint and the address"
            )));
        }
    }
    crypto::verify_detached(
        &centre,
        answer.statement.as_bytes(),
        answer.signature.as_bytes(),
    )
    .map_err(|e| {
        Error::Refused(format!(
            "the centre's enrollment statement does not verify: {e}"
        ))
    })?;
    let statement: Statement = serde_json::from_str(&answer.statement)
        .map_err(|e| Error::Refused(format!("the centre's enrollment statement: {e}")))?;
    let agrees = statement.statement == STATEMENT
        && statement.agent == me
        && statement.site == answer.site
        && statement.tenant == answer.tenant
        && statement.centre == fingerprint;
    if !agrees {
        return Err(Error::Refused(
            "the centre's signed statement does not say what its answer does; nothing was saved"
                .into(),
        ));
    }
    let done = Enrolled {
        server,
        agent: me,
        site: answer.site,
        tenant: answer.tenant,
        centre: fingerprint,
        statement: answer.statement,
        signature: answer.signature,
    };
    write_new(
        &data_dir.join(CENTRE_CERT_FILE),
        answer.centre_certificate.as_bytes(),
        0o644,
    )?;
    let json = serde_json::to_vec_pretty(&done).map_err(|e| Error::Other(e.to_string()))?;
    write_new(&data_dir.join(ENROLLMENT_FILE), &json, 0o600)?;
    Ok(done)
}

/// The enrollment kept in `data_dir`, if the agent there is enrolled.
pub fn enrolled(data_dir: &Path) -> Result<Option<Enrolled>> {
    let path = data_dir.join(ENROLLMENT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Other(format!(
                "{} is damaged ({e}): enroll the agent again from an empty data directory",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path, e)),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("{}: {e}", path.display()))
}

/// The agent's key: the one an earlier, interrupted enrollment made, or a new one.
fn agent_key(data_dir: &Path) -> Result<SecretKey> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return Ok(SecretKey::load(&path)?);
    }
    let host = hostname();
    let key = SecretKey::generate(&format!("Lifeboat agent on {host}"))?;
    write_new(&path, key.armored()?.as_bytes(), 0o600)?;
    write_new(
        &data_dir.join("agent.cert"),
        key.public().armored()?.as_bytes(),
        0o644,
    )?;
    Ok(key)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// `files::write_atomically`, with the path in the error.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    crate::files::write_atomically(path, bytes, Some(mode)).map_err(|e| io_error(path, e))
}
