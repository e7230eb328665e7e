//! The dashboard: server-rendered pages behind the same tokens as the API. Logging in with a
//! token makes a session (see `auth`) kept in an HTTP-only, same-site cookie; logging out
//! ends it on the server. Login and logout take forms from our own pages only. Per tenant: each source's last successful
//! backup, RPO state and next run; each contract's drills, test restores left, and report
//! downloads. No scripts.

use super::auth::Principal;
use super::{ApiError, State, COOKIE};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use chrono::Datelike;
use maud::{html, Markup, PreEscaped, DOCTYPE};

pub fn router() -> axum::Router<State> {
    axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/tenants", get(tenants))
        .route("/tenants/{tenant}", get(tenant_page))
}

/// A page's viewer: logged in, or sent to the login page.
struct Viewer(Principal);

impl FromRequestParts<State> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &State) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, api).await {
            Ok(p) => Ok(Viewer(p)),
            Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => {
                Err(e.into_response())
            }
            Err(_) => Err(Redirect::to("/login").into_response()),
        }
    }
}

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 0; background: #f6f8fa; }
header { background: #0b3d5c; color: #fff; padding: .7rem 1.5rem; display: flex; justify-content: space-between; align-items: center; }
header a, header button { color: #fff; } header form { margin: 0; }
header button { background: none; border: 1px solid #fff8; border-radius: 4px; padding: .2rem .6rem; cursor: pointer; }
main { max-width: 68rem; margin: 1.5rem auto; padding: 0 1rem; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: .5rem 1.2rem 1rem; margin-bottom: 1.2rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #eaeef2; }
th { font-weight: 600; color: #57606a; font-size: .85rem; }
.ok { color: #1a7f37; font-weight: 600; } .late, .failed, .never { color: #cf222e; font-weight: 600; } .muted { color: #57606a; }
.badge { display: inline-block; border-radius: 1rem; padding: 0 .6rem; font-size: .85rem; }
.badge.ok { background: #dafbe1; } .badge.late, .badge.never, .badge.failed { background: #ffebe9; }
a.download { margin-right: .6rem; }
form.login { max-width: 26rem; } input[type=password] { width: 100%; padding: .5rem; font: inherit; }
button.primary { margin-top: .8rem; padding: .45rem 1.2rem; font: inherit; background: #0b3d5c; color: #fff; border: 0; border-radius: 6px; }
.error { color: #cf222e; }
"#;

fn page(title: &str, who: Option<&Principal>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Lifeboat" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        a href="/" { b { "Lifeboat" } }
                        @if let Some(who) = who {
                            form method="post" action="/logout" {
                                span.muted style="color:#fffc" {
                                    (who.role.name())
                                    @if let Some(t) = &who.tenant { " · " (t) }
                                    " "
                                }
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

async fn home(Viewer(who): Viewer) -> Redirect {
    match (&who.tenant, who.role.scoped()) {
        (Some(t), true) => Redirect::to(&format!("/tenants/{t}")),
        _ => Redirect::to("/tenants"),
    }
}

fn login_form(error: Option<&str>) -> Html<String> {
    page(
        "Log in",
        None,
        html! {
            section {
                h1 { "Log in" }
                p.muted { "Paste the token your provider gave you (it starts with " code { "lb_" } ")." }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.login method="post" action="/login" {
                    label for="token" { "Token" }
                    input id="token" name="token" type="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Log in" }
                }
            }
        },
    )
}

async fn login_page() -> Html<String> {
    login_form(None)
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    api: axum::extract::State<State>,
    jar: CookieJar,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    // A login from another site's page would log the visitor in as someone else.
    if let Err(e) = api.same_origin(&parts) {
        return e.into_response();
    }
    let bytes = match axum::body::to_bytes(body, super::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::bad_request("the login form is too large").into_response(),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&bytes) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            login_form(Some("Send the token in the form's token field.")),
        )
            .into_response();
    };
    let token = form.token.trim().to_string();
    // Check the token as the API would, with the same slow-down of failures.
    parts.headers.remove(axum::http::header::COOKIE);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("Bearer {token}")) {
        parts.headers.insert(axum::http::header::AUTHORIZATION, v);
    }
    match Principal::from_request_parts(&mut parts, &api.0).await {
        Ok(who) => {
            let now = api.clock.now();
            let made = api
                .0
                .db(move |catalog, _| {
                    let (row, secret) =
                        super::auth::new_session(catalog, &who, now).map_err(ApiError::internal)?;
                    catalog.add_session(&row, now).map_err(ApiError::internal)?;
                    Ok(secret)
                })
                .await;
            let secret = match made {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            };
            let cookie = Cookie::build((COOKIE, secret))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(api.over_tls(&parts))
                .path("/")
                .build();
            (jar.add(cookie), Redirect::to("/")).into_response()
        }
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => e.into_response(),
        Err(_) => (
            axum::http::StatusCode::UNAUTHORIZED,
            login_form(Some(
                "That token is not valid: unknown, revoked or expired.",
            )),
        )
            .into_response(),
    }
}

/// Ends the session on the server (the cookie alone is worthless afterwards) and drops
/// the cookie.
async fn logout(
    api: axum::extract::State<State>,
    jar: CookieJar,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Err(e) = api.same_origin(&parts) {
        return e.into_response();
    }
    if let Some(c) = jar.get(COOKIE) {
        let key = super::auth::session_key(c.value());
        if let Err(e) = api
            .0
            .db(move |catalog, _| catalog.end_session(&key).map_err(ApiError::internal))
            .await
        {
            return e.into_response();
        }
    }
    (
        jar.remove(Cookie::build(COOKIE).path("/")),
        Redirect::to("/login"),
    )
        .into_response()
}

async fn tenants(api: axum::extract::State<State>, Viewer(who): Viewer) -> Response {
    if who.role.scoped() {
        return home(Viewer(who)).await.into_response();
    }
    let agents = match api
        .db(|catalog, _| catalog.agents().map_err(super::ApiError::internal))
        .await
    {
        Ok(agents) => agents,
        Err(e) => return e.into_response(),
    };
    let config = &api.loaded.config;
    let now = api.clock.now();
    page(
        "Tenants",
        Some(&who),
        html! {
            section {
                h1 { "Tenants" }
                table {
                    tr { th { "Tenant" } th { "Contracts" } th { "Sources" } }
                    @for (id, t) in &config.tenants {
                        tr {
                            td { a href=(format!("/tenants/{id}")) { (t.name) } br; span.muted { (id) } }
                            td { (config.contracts.values().filter(|c| c.tenant.get_ref() == id).count()) }
                            td { (config.sources.values().filter(|s| s.tenant.get_ref() == id).count()) }
                        }
                    }
                }
            }
            @if !config.sites.is_empty() {
                section {
                    h2 { "Sites" }
                    table {
                        tr { th { "Site" } th { "Tenant" } th { "Agent" } th { "Version" } th { "Last contact" } th { "Clock skew" } th { "Outbox" } }
                        @for (id, site) in &config.sites {
                            @let mine: Vec<_> = agents.iter().filter(|a| &a.site == id).collect();
                            @if mine.is_empty() {
                                tr data-site=(id) {
                                    td { b { (site.name.as_deref().unwrap_or(id)) } br; span.muted { (id) } }
                                    td { (site.tenant.get_ref()) }
                                    td colspan="5" { span.muted { "No agent enrolled yet ('lifeboat site enroll-token " (id) "')" } }
                                }
                            }
                            @for a in mine {
                                tr data-site=(id) data-agent=(a.id) {
                                    td { b { (site.name.as_deref().unwrap_or(id)) } br; span.muted { (id) } }
                                    td { (site.tenant.get_ref()) }
                                    td { code { (a.id.get(..16).unwrap_or(&a.id)) } @if a.revoked.is_some() { br; span.failed { "revoked" } } }
                                    td { (a.version.as_deref().unwrap_or("-")) }
                                    td {
                                        @match a.last_contact.as_deref() {
                                            Some(t) => {
                                                (local(&api, t))
                                                @if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
                                                    br; span.muted { (age((now - at.with_timezone(&chrono::Utc)).num_seconds())) " ago" }
                                                }
                                            }
                                            None => { span.muted { "never" } }
                                        }
                                    }
                                    td { (a.clock_skew_ms.map(|ms| format!("{:+.1} s", ms as f64 / 1000.0)).unwrap_or_else(|| "-".into())) }
                                    td data-backlog=(a.backlog.map(|b| b.to_string()).unwrap_or_default()) {
                                        @match a.backlog {
                                            Some(0) => { "empty" }
                                            Some(n) => { span.failed { (n) " record(s) waiting" } }
                                            None => { span.muted { "-" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

fn local(api: &super::Api, t: &str) -> String {
    let tz = api.loaded.config.service.time_zone();
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn age(seconds: i64) -> String {
    crate::report::render::human_ms(seconds.max(0) as u64 * 1000)
}

/// The periods offered for download: this month, last month, this quarter, last quarter,
/// this year.
fn periods(now: chrono::DateTime<chrono_tz::Tz>) -> Vec<String> {
    let (y, m) = (now.year(), now.month());
    let (ly, lm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let q = (m - 1) / 3 + 1;
    let (lqy, lq) = if q == 1 { (y - 1, 4) } else { (y, q - 1) };
    vec![
        format!("{y}-{m:02}"),
        format!("{ly}-{lm:02}"),
        format!("{y}-Q{q}"),
        format!("{lqy}-Q{lq}"),
        format!("{y}"),
    ]
}

async fn tenant_page(
    api: axum::extract::State<State>,
    Viewer(who): Viewer,
    Path(tenant): Path<String>,
) -> Response {
    if !who.sees(&tenant) || !api.loaded.config.tenants.contains_key(&tenant) {
        return (
            axum::http::StatusCode::NOT_FOUND,
            page(
                "Not found",
                Some(&who),
                html! { section { h1 { "Not found" } p { "There is no such tenant, or this login may not see it." } } },
            ),
        )
            .into_response();
    }
    let who2 = who.clone();
    let t2 = tenant.clone();
    let data = api
        .0
        .db(move |catalog, api| {
            let sources: Vec<_> = super::routes::sources_out(api, catalog, &who2)?
                .into_iter()
                .filter(|s| s.tenant == t2)
                .collect();
            let drills: Vec<_> = catalog
                .drills(None)
                .map_err(ApiError::internal)?
                .into_iter()
                .filter(|d| d.tenant == t2 && who2.sees(&d.tenant))
                .collect();
            let now = api.clock.now();
            let tz = api.loaded.config.service.time_zone();
            let evidence = catalog.evidence(Some(&t2)).map_err(ApiError::internal)?;
            let mut contracts = Vec::new();
            for (id, c) in &api.loaded.config.contracts {
                if c.tenant.get_ref() != &t2 {
                    continue;
                }
                let used = crate::drill::quota::used_in_year(&drills, id, now, tz).len() as u32;
                // Only the periods a report can be made for.
                let first = evidence
                    .iter()
                    .filter_map(|e| crate::evidence::Record::parse(&e.record).ok())
                    .filter(|r| r.contract.as_deref() == Some(id.as_str()))
                    .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.recorded).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .min();
                let offered: Vec<String> = periods(now.with_timezone(&tz))
                    .into_iter()
                    .filter(|p| {
                        crate::report::Period::parse(p)
                            .is_ok_and(|p| crate::report::admissible(&p, &tz, first, now).is_ok())
                    })
                    .collect();
                contracts.push((
                    id.clone(),
                    c.rpo.get_ref().clone(),
                    c.rto.get_ref().clone(),
                    c.test_restores_per_year,
                    used,
                    offered,
                ));
            }
            let usage = catalog.usage(Some(&t2)).map_err(ApiError::internal)?;
            Ok((sources, drills, contracts, usage))
        })
        .await;
    let (sources, drills, contracts, usage) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let name = api.loaded.config.tenants[&tenant].name.clone();
    page(
        &name,
        Some(&who),
        html! {
            h1 { (name) }
            @if !usage.is_empty() {
                p.muted data-usage="" {
                    "Stored: "
                    @for (i, u) in usage.iter().enumerate() {
                        @if i > 0 { " · " }
                        b { (crate::backend::human_bytes(u.bytes)) } " on " (u.target)
                    }
                    " (as last measured, after a backup or a prune)"
                }
            }
            section {
                h2 { "Backups" }
                table {
                    tr { th { "Source" } th { "Last successful backup" } th { "Data age" } th { "RPO" } th { "Next run" } th { "Last run" } }
                    @for s in &sources {
                        tr data-source=(s.id) {
                            td { b { (s.id) } br; span.muted { (s.kind) " · tier " (s.tier) } }
                            td { (s.last_success.as_deref().map(|t| local(&api, t)).unwrap_or_else(|| "never".into())) }
                            td { (s.data_age_seconds.map(age).unwrap_or_else(|| "-".into())) }
                            td { span class=(format!("badge {}", s.rpo_state)) { (s.rpo_state) } " " span.muted { "objective " (s.rpo) } }
                            td { (s.next_run.as_deref().map(|t| local(&api, t)).unwrap_or_else(|| "-".into())) }
                            td {
                                @match s.last_result.as_deref() {
                                    Some("failure") => { span.failed { "failed" } @if let Some(e) = &s.last_error { br; span.muted { (e) } } }
                                    Some(r) => { (r) }
                                    None => { "-" }
                                }
                            }
                        }
                    }
                }
            }
            @for (id, rpo, rto, quota, used, offered) in &contracts {
                section data-contract=(id) {
                    h2 { "Contract " (id) }
                    p.muted { "RPO " (rpo) " · RTO " (rto) " · test restores: " b { (quota.saturating_sub(*used)) " of " (quota) " left" } " this year" }
                    h3 { "Restore drills" }
                    @let mine: Vec<_> = drills.iter().filter(|d| &d.contract == id).rev().take(20).collect();
                    @if mine.is_empty() { p.muted { "No drills yet." } } @else {
                        table {
                            tr { th { "Drill" } th { "Planned for" } th { "Why" } th { "State" } th { "Outcome" } }
                            @for d in mine {
                                tr {
                                    td { (d.spec) " #" (d.id) }
                                    td { (local(&api, &crate::evidence::record::time(d.planned_for))) }
                                    td { (d.reason) }
                                    td { (d.state) }
                                    td class=(d.outcome.as_deref().unwrap_or("")) { (d.outcome.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    h3 { "Reports" }
                    table {
                        tr { th { "Period" } th { "Download" } }
                        @for p in offered {
                            tr {
                                td { (p) }
                                td {
                                    @for (format, label) in [("html", "HTML"), ("csv", "CSV"), ("json", "JSON"), ("bundle", "Bundle for auditors")] {
                                        a.download href=(format!("/api/v1/reports/{id}?period={p}&format={format}")) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
