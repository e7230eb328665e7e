//! The centre's signed statement that binds a site agent's key to its site and tenant: what
//! makes an agent's evidence the tenant's evidence, for anyone holding the service's
//! certificate.

use serde::{Deserialize, Serialize};

/// The centre's signed word that an agent's key works for one site of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always `lifeboat agent enrollment`.
    pub statement: String,
    pub agent: String,
    pub site: String,
    pub tenant: String,
    pub enrolled: String,
    /// The id of the token it was enrolled with.
    pub enroll_token: String,
    /// The fingerprint of the service key that signed it.
    pub centre: String,
}

pub const STATEMENT: &str = "lifeboat agent enrollment";

impl Statement {
    /// Whether it says that `agent` works for `tenant`, signed by the service `centre`.
    pub fn binds(&self, agent: &str, tenant: &str, centre: &str) -> bool {
        self.statement == STATEMENT
            && self.agent.eq_ignore_ascii_case(agent)
            && self.tenant == tenant
            && self.centre.eq_ignore_ascii_case(centre)
    }
}
