//! Customer sites (`[sites.ID]`): places where an enrolled agent (`lifeboat agent`) works for
//! one tenant. An admin makes a one-time enrollment token for a site; the agent that redeems
//! it is bound to the site and its tenant.

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Deserialize)]
pub struct Site {
    /// The tenant whose sources run at the site.
    pub tenant: Spanned<String>,
    /// What people call it (`Acme head office`); the id when absent.
    pub name: Option<String>,
}

impl Site {
    /// What is wrong with site `id`, given the tenants defined: each with the span it is at
    /// (none: the site's table).
    pub(super) fn problems(
        &self,
        id: &str,
        tenants: &[&String],
    ) -> Vec<(Option<Range<usize>>, String)> {
        let mut out = Vec::new();
        let safe = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !safe {
            out.push((
                None,
                format!(
                    "site id '{id}': use at most 64 letters, digits, '-', '_' and '.' (it is \
                     named in enrollment tokens and agents' records)"
                ),
            ));
        }
        if !tenants.iter().any(|t| *t == self.tenant.get_ref()) {
            out.push((
                Some(self.tenant.span()),
                format!(
                    "site '{id}' names tenant '{}', which is not defined under [tenants]",
                    self.tenant.get_ref()
                ),
            ));
        }
        out
    }
}
