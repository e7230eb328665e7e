//! Incidents sent to a webhook: every evidence record that carries an incident (a failed
//! backup, a failed drill) is POSTed as JSON to `[service] webhook`, tried three times. The
//! evidence is written first; a webhook that cannot be reached is reported, never fatal.

use super::Record;
use crate::catalog::evidence::StoredEvidence;
use std::time::Duration;

/// What the webhook receives.
pub fn payload(record: &Record, stored: &StoredEvidence) -> Option<serde_json::Value> {
    let incident = record.incident.as_ref()?;
    Some(serde_json::json!({
        "event": "incident",
        "severity": incident.severity,
        "summary": incident.summary,
        "tenant": record.tenant,
        "contract": record.contract,
        "source": record.source,
        "drill": record.drill,
        "kind": record.kind,
        "recorded": record.recorded,
        "evidence": { "sequence": stored.sequence, "sha256": stored.sha256 },
    }))
}

/// Sends the record's incident to `url`, if it has one. Returns what went wrong, if anything.
pub fn notify(url: &str, record: &Record, stored: &StoredEvidence) -> Result<(), String> {
    let Some(body) = payload(record, stored) else {
        return Ok(());
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let body = body.to_string();
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
        match agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.as_str())
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("the incident webhook {url} failed 3 times: {last}"))
}
