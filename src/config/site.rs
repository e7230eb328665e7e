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

impl super::Source {
    /// The site whose agent runs this source; `None`: the central service.
    pub fn site(&self) -> Option<&str> {
        self.site.as_ref().map(|s| s.get_ref().as_str())
    }

    /// Every target this source writes to: its targets and its copy's.
    pub fn written_targets(&self) -> impl Iterator<Item = &String> {
        self.targets
            .get_ref()
            .iter()
            .chain(self.copy_to.as_ref().map(|c| c.get_ref()))
    }
}

impl super::Config {
    /// Which place writes `tenant`'s repository on `target`: the site whose sources back up
    /// there, or `None`, the central service (also when nothing writes there yet). Loading
    /// makes sure it is one place: a repository is signed by the key of whoever writes it.
    pub fn writer(&self, target: &str, tenant: &str) -> Option<&str> {
        self.sources
            .values()
            .filter(|s| s.tenant.get_ref() == tenant)
            .find(|s| s.written_targets().any(|t| t == target))
            .and_then(|s| s.site())
    }
}

/// What is wrong with where the sources run: a site that is not defined or belongs to
/// another tenant, or one repository written from two places.
pub(super) fn placement_problems(config: &super::Config) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    // (target, tenant) → the first source writing there, and where it runs.
    let mut writers: std::collections::BTreeMap<(&str, &str), (&str, Option<&str>)> =
        Default::default();
    for (name, source) in &config.sources {
        let tenant = source.tenant.get_ref().as_str();
        if let Some(site) = &source.site {
            match config.sites.get(site.get_ref()) {
                None => out.push((
                    site.span(),
                    format!(
                        "source '{name}' names site '{}', which is not defined under [sites]",
                        site.get_ref()
                    ),
                )),
                Some(s) if s.tenant.get_ref() != tenant => out.push((
                    site.span(),
                    format!(
                        "source '{name}' belongs to tenant '{tenant}' but its site '{}' to \
                         tenant '{}'",
                        site.get_ref(),
                        s.tenant.get_ref()
                    ),
                )),
                Some(_) => {}
            }
        }
        let here = source.site();
        for target in source.written_targets() {
            match writers.get(&(target.as_str(), tenant)) {
                None => {
                    writers.insert((target, tenant), (name, here));
                }
                Some((other, there)) if *there != here => {
                    let place = |p: Option<&str>| {
                        p.map_or("the central service".to_string(), |s| format!("site '{s}'"))
                    };
                    out.push((
                        source
                            .site
                            .as_ref()
                            .map_or(source.targets.span(), |s| s.span()),
                        format!(
                            "source '{name}' runs at {} but source '{other}' at {}, and both \
                             write tenant '{tenant}''s repository on target '{target}': a \
                             repository is written from one place (its snapshots are signed \
                             by that place's key); give one of them another target",
                            place(here),
                            place(*there)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const EXAMPLE: &str = include_str!("../../docs/lifeboat.example.toml");

    fn messages(text: &str) -> Vec<String> {
        match super::super::parse(Path::new("lifeboat.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.message).collect(),
        }
    }

    #[test]
    fn each_repository_is_written_from_one_place() {
        let loaded = super::super::parse(Path::new("x.toml"), EXAMPLE).unwrap();
        let config = &loaded.config;
        assert_eq!(
            config.sources["acme-office-drawings"].site(),
            Some("acme-office")
        );
        assert_eq!(config.sources["acme-share"].site(), None);
        assert_eq!(config.writer("office-nas", "acme"), Some("acme-office"));
        assert_eq!(config.writer("nas", "acme"), None);
        assert_eq!(config.writer("office-nas", "bakery"), None);

        let shared = EXAMPLE.replace(
            "targets = [\"office-nas\"]\nsite",
            "targets = [\"nas\"]\nsite",
        );
        let found = messages(&shared);
        assert!(
            found
                .iter()
                .any(|m| m.contains("runs at site 'acme-office'")
                    && m.contains("the central service")
                    && m.contains("repository on target 'nas'")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_source_names_a_site_of_its_own_tenant() {
        let unknown = EXAMPLE.replace("site = \"acme-office\"", "site = \"acme-ofice\"");
        let found = messages(&unknown);
        assert!(
            found
                .iter()
                .any(|m| m.contains("names site 'acme-ofice', which is not defined")),
            "{found:#?}"
        );
        let other = EXAMPLE.replace(
            "[sites.acme-office]\ntenant = \"acme\"",
            "[sites.acme-office]\ntenant = \"bakery\"",
        );
        let found = messages(&other);
        assert!(
            found.iter().any(|m| m.contains(
                "source 'acme-office-drawings' belongs to tenant 'acme' but its site \
                 'acme-office' to tenant 'bakery'"
            )),
            "{found:#?}"
        );
    }
}
