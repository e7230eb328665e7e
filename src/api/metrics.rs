//! `/metrics`: the state of backups and drills for Prometheus (OpenMetrics text), computed
//! from the catalog at each scrape. Needs a token like every route; a customer's token sees
//! its own tenant's series only.

use super::auth::Principal;
use super::{ApiError, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    tenant: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoredLabels {
    tenant: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    tenant: String,
    source: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DrillLabels {
    tenant: String,
    contract: String,
    outcome: String,
}

type FGauge = Gauge<f64, AtomicU64>;

pub async fn metrics(
    api: axum::extract::State<State>,
    who: Principal,
) -> Result<Response, ApiError> {
    let text = api
        .0
        .db(move |catalog, api| {
            let mut registry = Registry::with_prefix("lifeboat");
            let last_success = Family::<SourceLabels, FGauge>::default();
            let data_age = Family::<SourceLabels, FGauge>::default();
            let rpo_ok = Family::<SourceLabels, Gauge>::default();
            let duration = Family::<SourceLabels, FGauge>::default();
            let bytes = Family::<SourceLabels, Gauge>::default();
            let runs = Family::<RunLabels, Counter>::default();
            let drills = Family::<DrillLabels, Counter>::default();
            registry.register(
                "backup_last_success_timestamp_seconds",
                "When the newest successful backup of a source was taken",
                last_success.clone(),
            );
            registry.register(
                "backup_data_age_seconds",
                "Age of the newest successful backup: the data a restore now would lose",
                data_age.clone(),
            );
            registry.register(
                "backup_rpo_compliant",
                "1 when the newest successful backup is within the contract's RPO, else 0",
                rpo_ok.clone(),
            );
            registry.register(
                "backup_last_duration_seconds",
                "How long the newest successful backup took",
                duration.clone(),
            );
            registry.register(
                "backup_last_bytes_added",
                "Bytes the newest successful backup added to the repository",
                bytes.clone(),
            );
            registry.register("backup_runs", "Backup runs by result", runs.clone());
            let stored = Family::<StoredLabels, Gauge>::default();
            registry.register(
                "tenant_stored_bytes",
                "Bytes a tenant's repository on a target holds, as last measured",
                stored.clone(),
            );
            for u in catalog.usage(None).map_err(ApiError::internal)? {
                if who.sees(&u.tenant) {
                    stored
                        .get_or_create(&StoredLabels {
                            tenant: u.tenant,
                            target: u.target,
                        })
                        .set(i64::try_from(u.bytes).unwrap_or(i64::MAX));
                }
            }
            registry.register(
                "drills",
                "Finished restore drills by outcome",
                drills.clone(),
            );

            for s in super::routes::sources_out(api, catalog, &who)? {
                let labels = SourceLabels {
                    tenant: s.tenant.clone(),
                    source: s.id.clone(),
                };
                if let Some(t) = s
                    .last_success
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                {
                    last_success
                        .get_or_create(&labels)
                        .set(t.timestamp_millis() as f64 / 1000.0);
                }
                if let Some(age) = s.data_age_seconds {
                    data_age.get_or_create(&labels).set(age as f64);
                }
                rpo_ok
                    .get_or_create(&labels)
                    .set(i64::from(s.rpo_state == "ok"));
                if let Some(d) = s.last_duration_seconds {
                    duration.get_or_create(&labels).set(d);
                }
                if let Some(b) = s.last_bytes_added {
                    bytes.get_or_create(&labels).set(b);
                }
            }
            for r in catalog.runs(None).map_err(ApiError::internal)? {
                let Some(source) = r.source.as_deref() else {
                    continue;
                };
                let Some(tenant) = api.tenant_of_source(source) else {
                    continue;
                };
                if r.kind != "backup" || !who.sees(tenant) || r.result == "running" {
                    continue;
                }
                runs.get_or_create(&RunLabels {
                    tenant: tenant.to_string(),
                    source: source.to_string(),
                    result: r.result.clone(),
                })
                .inc();
            }
            for d in catalog.drills(None).map_err(ApiError::internal)? {
                if d.state != "done" || !who.sees(&d.tenant) {
                    continue;
                }
                drills
                    .get_or_create(&DrillLabels {
                        tenant: d.tenant.clone(),
                        contract: d.contract.clone(),
                        outcome: d.outcome.clone().unwrap_or_default(),
                    })
                    .inc();
            }
            if !who.role.scoped() {
                // This instance's agents' polls for jobs (other instances count their own).
                let waiting = Gauge::<i64>::default();
                waiting.set(api.site_jobs.waiting.load(Relaxed));
                registry.register(
                    "agent_job_polls_waiting",
                    "Agents' polls for jobs waiting at this instance now",
                    waiting,
                );
                let woken = Counter::<u64>::default();
                woken.inc_by(api.site_jobs.woken.load(Relaxed));
                registry.register(
                    "agent_job_polls_woken",
                    "Agents' polls for jobs answered with a job queued while they waited (at \
                     this instance or another sharing the catalog)",
                    woken,
                );
            }
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry)
                .map_err(ApiError::internal)?;
            Ok(text)
        })
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
