//! The centre watches its sites: a site whose agents have all been silent for longer than
//! `[service] site_silence` is an incident, recorded once per silence in the tenant's
//! evidence (kind `site`) and sent to the webhook. When the site speaks again, a later
//! silence is a new incident.

use super::{log, Shared};
use crate::catalog::Catalog;
use crate::evidence::record::{time, Check, Event, Incident, Outcome, Record, RecordKind};
use chrono::{DateTime, Utc};

/// Looks at every site with an enrolled agent at `now`, and records the silences newly past
/// the limit. An error is for the log: watching again at the next tick may succeed.
pub(super) fn watch(
    shared: &Shared,
    catalog: &mut Catalog,
    now: DateTime<Utc>,
) -> Result<(), String> {
    watch_sites(shared, catalog, now).map_err(|e| format!("watching the sites: {e}"))
}

fn watch_sites(
    shared: &Shared,
    catalog: &mut Catalog,
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let sites = &shared.loaded.config.sites;
    if sites.is_empty() {
        return Ok(());
    }
    let limit = shared.loaded.config.service.site_silence();
    // Each site's last contact from any of its agents not revoked, and the silences
    // recorded: two reads for all sites (there may be thousands).
    let mut last_contact: std::collections::BTreeMap<&str, DateTime<Utc>> = Default::default();
    let agents = catalog.agents()?;
    for a in agents.iter().filter(|a| a.revoked.is_none()) {
        let Some(t) = a.last_contact.as_deref() else {
            continue;
        };
        let Ok(t) = DateTime::parse_from_rfc3339(t) else {
            continue;
        };
        let t = t.with_timezone(&Utc);
        let latest = last_contact.entry(a.site.as_str()).or_insert(t);
        *latest = (*latest).max(t);
    }
    let silences = catalog.site_silences()?;
    for (id, site) in sites {
        // A site with no agent enrolled (yet) is not watched.
        let Some(&last) = last_contact.get(id.as_str()) else {
            continue;
        };
        let since = time(last);
        let recorded = silences.get(id).cloned();
        if now - last <= limit {
            if recorded.is_some() && catalog.end_site_silence(id)? {
                log(
                    &shared.clock,
                    &format!("site {id} speaks again (last contact {since})"),
                );
            }
            continue;
        }
        if recorded.as_deref() == Some(since.as_str()) {
            continue;
        }
        let tenant = site.tenant.get_ref();
        let silent = humantime::format_duration(std::time::Duration::from_secs(
            u64::try_from((now - last).num_seconds()).unwrap_or(0),
        ));
        let allowed = humantime::format_duration(limit.to_std().unwrap_or_default());
        let mut record = Record::new(RecordKind::Site, tenant, now);
        record.outcome = Outcome::Failure;
        record.error = Some(format!(
            "no request from the agents of site {id} for {silent}"
        ));
        record.incident = Some(Incident {
            severity: "high".into(),
            summary: format!(
                "site {id} is silent: no request from its agents since {since} ({silent}; at most \
                 {allowed} allowed); its backups may not be running"
            ),
        });
        record.checks.push(Check {
            name: format!("site {id}"),
            method: "agent contact".into(),
            expected: format!("a request at least every {allowed}"),
            actual: format!("none since {since}"),
            passed: false,
        });
        record.timeline.push(Event {
            event: "last contact".into(),
            time: since.clone(),
        });
        record.timeline.push(Event {
            event: "silence past the limit".into(),
            time: time(now),
        });
        let stored = crate::evidence::chain::append(catalog, &shared.signing, record.clone())?;
        catalog.record_site_silence(id, &since, &time(now))?;
        let mut note = String::new();
        if let Some(url) = shared.loaded.config.service.webhook() {
            if let Err(e) = crate::evidence::incident::notify(url, &record, &stored) {
                note = format!("; {e}");
            }
        }
        log(
            &shared.clock,
            &format!(
                "site {id} is silent since {since}: incident recorded (evidence {}){note}",
                stored.sequence
            ),
        );
    }
    Ok(())
}
