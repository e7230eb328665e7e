//! A customer's requests: plan a drill within the contract's quota, cancel one within its
//! notice. Shared by `lifeboat drill request|cancel` and the API.

use crate::catalog::drills::{DrillRow, NewDrill};
use crate::catalog::Catalog;
use crate::config::Loaded;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The contract does not allow it; the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("there is no drill {0}")]
    NoSuchDrill(i64),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::Error),
}

/// Plans `drill` for `at` as a request by `by`; returns its id and the test restores left in
/// that year.
pub fn request(
    catalog: &mut Catalog,
    loaded: &Loaded,
    drill: &super::spec::Drill,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    by: Option<&str>,
) -> Result<(i64, u32), RequestError> {
    let source = loaded
        .config
        .sources
        .get(drill.spec.source.get_ref())
        .ok_or_else(|| {
            RequestError::Refused(format!(
                "source '{}' is not configured",
                drill.spec.source.get_ref()
            ))
        })?;
    let contract = source.contract.get_ref();
    let left = super::quota::may_plan(
        super::quota::Terms::of(&loaded.config, contract),
        &catalog.drills(Some(contract))?,
        contract,
        at,
        now,
        loaded.config.service.time_zone(),
    )
    .map_err(RequestError::Refused)?;
    let id = catalog.plan_drill(&NewDrill {
        spec: &drill.name,
        tenant: source.tenant.get_ref(),
        contract,
        source: drill.spec.source.get_ref(),
        reason: "requested",
        planned_for: at,
        requested_by: by,
    })?;
    // A drill of a site's source runs there: its agent is told with a job for the moment.
    if let Some(site) = source.site() {
        let key = format!("{}{}", drill.name, super::JOB_SUFFIX);
        catalog.enqueue_at_site(&key, "drill", site, at, now)?;
    }
    Ok((id, left))
}

/// Cancels planned drill `id`, if the contract's notice allows it now.
pub fn cancel(
    catalog: &mut Catalog,
    loaded: &Loaded,
    id: i64,
    now: DateTime<Utc>,
) -> Result<DrillRow, RequestError> {
    let row = catalog.drill(id)?.ok_or(RequestError::NoSuchDrill(id))?;
    super::quota::may_cancel(
        super::quota::Terms::of(&loaded.config, &row.contract),
        &row,
        now,
        loaded.config.service.time_zone(),
    )
    .map_err(RequestError::Refused)?;
    catalog.cancel_drill(id, now)?;
    Ok(row)
}
