//! Check-in: an enrolled agent's signed request that says it is alive. The centre notes when
//! it heard from the agent, its version and how far its clock is off, and answers with what
//! it knows the agent as.

use super::client::Centre;
use super::enroll::{self, KEY_FILE};
use super::{Error, Result};
use crate::repo::crypto::SecretKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The centre's answer to a check-in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckIn {
    pub agent: String,
    pub site: String,
    pub tenant: String,
    /// The centre's time when it answered.
    pub centre_time: String,
    /// The agent's clock minus the centre's, as its request showed, in milliseconds.
    pub clock_skew_ms: i64,
    /// The version of the site's assignment (fetch it when it is not the one the agent has).
    #[serde(default)]
    pub assignment: Option<String>,
}

pub const PATH: &str = "/api/v1/agent/check-in";

/// Checks in with the centre the agent in `data_dir` is enrolled with, signing at `now`.
pub fn check_in(data_dir: &Path, now: chrono::DateTime<chrono::Utc>) -> Result<CheckIn> {
    let Some(enrolled) = enroll::enrolled(data_dir)? else {
        return Err(Error::Refused(format!(
            "{} holds no enrolled agent: run 'lifeboat agent enroll' first",
            data_dir.display()
        )));
    };
    let key = SecretKey::load(&data_dir.join(KEY_FILE))?;
    let centre = Centre::new(&enrolled.server)?;
    centre.call::<(), CheckIn>("GET", PATH, None, Some((&key, now)))
}

/// Checks in with `centre`, saying how many records wait in the outbox.
pub fn report(
    centre: &Centre,
    key: &SecretKey,
    backlog: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CheckIn> {
    let path = format!("{PATH}?backlog={backlog}");
    centre.call::<(), CheckIn>("GET", &path, None, Some((key, now)))
}
