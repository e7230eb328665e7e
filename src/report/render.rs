//! A report as CSV (one row per source and day, and one per drill) and as a self-contained HTML
//! page with inline SVG charts that prints cleanly to PDF from a browser.

use super::{Day, Report};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::BTreeMap;

/// The days as CSV: date, source, slots scheduled, succeeded, failed and missed, worst data
/// age (ms), the RPO (ms).
pub fn days_csv(report: &Report) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| e.to_string();
    w.write_record([
        "date",
        "source",
        "scheduled",
        "succeeded",
        "failed",
        "missed",
        "worst_data_age_ms",
        "rpo_ms",
    ])
    .map_err(e)?;
    for d in &report.days {
        w.write_record([
            d.date.clone(),
            d.source.clone(),
            d.scheduled.to_string(),
            d.succeeded.to_string(),
            d.failed.to_string(),
            d.missed.unwrap_or(0).to_string(),
            d.worst_data_age_ms
                .map(|v| v.to_string())
                .unwrap_or_default(),
            report.terms.rpo_ms.to_string(),
        ])
        .map_err(e)?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// The drills as CSV.
pub fn drills_csv(report: &Report) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| e.to_string();
    w.write_record([
        "evidence",
        "time",
        "drill",
        "source",
        "passed",
        "rto_ms",
        "rto_objective_ms",
        "rto_met",
        "data_age_ms",
        "checks",
        "checks_passed",
        "severity",
    ])
    .map_err(e)?;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for d in &report.drills.list {
        w.write_record([
            d.evidence.to_string(),
            d.time.clone(),
            d.drill.clone(),
            d.source.clone(),
            d.passed.to_string(),
            opt(d.rto_ms),
            report.terms.rto_ms.to_string(),
            d.rto_met.map(|v| v.to_string()).unwrap_or_default(),
            opt(d.data_age_ms),
            d.checks.to_string(),
            d.checks_passed.to_string(),
            d.severity.clone().unwrap_or_default(),
        ])
        .map_err(e)?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A span of milliseconds for people: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
pub fn human_ms(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 48.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86400.0)
    }
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 2rem auto; max-width: 62rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; } table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; } .card { border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
.card b { display: block; font-size: 1.3rem; } .ok { color: #1a7f37; } .bad { color: #cf222e; } .warn { color: #9a6700; }
svg { width: 100%; height: auto; } svg text { font: 10px system-ui, sans-serif; fill: #57606a; }
code { font-size: 12px; word-break: break-all; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } table, svg { break-inside: avoid; } }
"#;

/// Green when the due drills passed and none failed; amber when some passed; red otherwise.
fn drill_state(report: &Report) -> &'static str {
    let (s, d) = (&report.summary, &report.drills);
    if super::controls::drills_done(s, d) && d.failed == 0 {
        "ok"
    } else if d.passed > 0 {
        "warn"
    } else {
        "bad"
    }
}

fn state(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "bad"
    }
}

/// The report as one HTML page.
pub fn html(report: &Report) -> String {
    let t = &report.terms;
    let s = &report.summary;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Recovery report " (t.contract) " " (report.period.label) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Recovery report: " (t.tenant_name) ", contract " (t.contract) }
                p.meta {
                    "Period " b { (report.period.label) } " (" (report.period.from) " to " (report.period.to)
                    ", days in " (t.time_zone) "), measured until " (report.measured_until)
                    ". Made " (report.generated) " by Lifeboat."
                }
                @let missed = s.backups_missed.unwrap_or(0);
                @let pending = s.backups_pending.unwrap_or(0);
                @let judged = s.backups_succeeded + s.backups_failed + missed;
                @let due = report.drills.due_in_period.unwrap_or(1);
                div.cards {
                    div.card { "Backup slots succeeded" b class=(state(super::controls::backups_as_planned(s, &report.drills))) {
                        (s.backups_succeeded) " / " (judged) }
                        (s.backups_failed) " failed, " (missed) " missed"
                        @if pending > 0 { ", " (pending) " still open" } }
                    div.card { "RPO " (human_ms(t.rpo_ms)) b class=(state(s.rpo_met)) { (s.rpo_held_percent) " %" } "of the time held; longest gap "
                        (s.longest_gap_ms.map(human_ms).unwrap_or_else(|| "-".into())) }
                    div.card { "Restore drills passed" b class=(drill_state(report)) {
                        (s.drills_passed) " / " (due) }
                        "due this period (" (s.drills_done) " done); quota " (t.test_restores_per_year) " a year" }
                    div.card { "RTO " (human_ms(t.rto_ms)) b class=(state(s.drills_within_rto == s.drills_done && s.drills_done > 0)) {
                        (s.drills_within_rto) " / " (s.drills_done) } "drills within it" }
                    div.card { "Incidents" b class=(state(s.incidents == 0)) { (s.incidents) } "in the period" }
                }

                h2 { "How backups are counted" }
                p {
                    "Each source's slots are its tier's scheduled runs, counted from when the service first scheduled it (or the period's start, if later) until "
                    (report.measured_until) ". A slot succeeded when a backup for it succeeded, failed when only failed ones ran, and was "
                    b { "missed" } " when its time passed with no backup at all; a slot whose time is not over yet is still open and not judged."
                }
                ul {
                    @for src in &t.sources {
                        li {
                            b { (src.name) } " (tier " (src.tier) "): "
                            @match &src.since {
                                Some(since) => { "slots counted from " (since) }
                                None => { "never scheduled: no slots counted" }
                            }
                        }
                    }
                }

                h2 { "Backups per day: scheduled and succeeded" }
                (backup_chart(report))
                h2 { "Data age per day against the RPO" }
                (age_chart(report))

                h2 { "Recovery point per source" }
                table {
                    tr { th { "Source" } th { "Tier" } th { "Longest gap" } th { "When" } th { "RPO held" } th { "Met" } }
                    @for r in &report.rpo {
                        tr {
                            td { (r.source) }
                            td { (t.sources.iter().find(|s| s.name == r.source).map(|s| s.tier.as_str()).unwrap_or("")) }
                            td.n { (r.longest_gap_ms.map(human_ms).unwrap_or_else(|| "no backup".into())) }
                            td { (r.longest_gap_from.as_deref().unwrap_or("")) " – " (r.longest_gap_to.as_deref().unwrap_or("")) }
                            td.n { (r.held_percent) " %" }
                            td class=(state(r.met)) { @if r.met { "yes" } @else { "no" } }
                        }
                    }
                }

                h2 { "Restore drills" }
                p { (report.drills.done) " done in the period (" (report.drills.passed) " passed, " (report.drills.failed)
                    " failed). The contract allows " (report.drills.quota_per_year) " test restores a year; "
                    (report.drills.expected_in_period) " of them fall into this period by its share of the year, so "
                    (report.drills.due_in_period.unwrap_or(1)) " passed drill(s) are due for the controls below (the share rounded down, at least one)." }
                @if !report.drills.list.is_empty() {
                    table {
                        tr { th { "Evidence" } th { "Started" } th { "Drill" } th { "Outcome" } th { "Checks" } th { "RTO" } th { "Data age" } }
                        @for d in &report.drills.list {
                            tr {
                                td.n { "#" (d.evidence) }
                                td { (d.time) }
                                td { (d.drill) br; span.meta { (d.source) } }
                                td class=(state(d.passed)) { @if d.passed { "passed" } @else { "failed" } @if let Some(sev) = &d.severity { " (" (sev) ")" } }
                                td.n { (d.checks_passed) " / " (d.checks) }
                                td.n class=(state(d.rto_met == Some(true))) { (d.rto_ms.map(human_ms).unwrap_or_else(|| "-".into())) }
                                td.n { (d.data_age_ms.map(human_ms).unwrap_or_else(|| "-".into())) }
                            }
                        }
                    }
                }

                h2 { "Failures and incidents" }
                @if report.incidents.is_empty() { p { "None in the period." } } @else {
                    table {
                        tr { th { "Evidence" } th { "Time" } th { "Kind" } th { "Severity" } th { "What happened" } }
                        @for i in &report.incidents {
                            tr {
                                td.n { "#" (i.evidence) } td { (i.time) } td { (i.kind) " " (i.source) }
                                td class=(if i.severity == "low" { "warn" } else { "bad" }) { (i.severity) }
                                td { (i.summary) }
                            }
                        }
                    }
                }

                h2 { "Controls this evidence supports" }
                table {
                    tr { th { "Control" } th { "Status" } th { "Rule" } th { "Basis" } }
                    @for c in &report.controls {
                        tr {
                            td { b { (c.id) } br; span.meta { (c.title) } }
                            td class=(match c.status.as_str() { "supported" => "ok", "partial" => "warn", _ => "bad" }) { (c.status) }
                            td { (c.rule.as_deref().unwrap_or("")) }
                            td { (c.basis) }
                        }
                    }
                }
                p.meta {
                    "Supported when the rule holds; partial when some of its evidence is there; otherwise not supported. "
                    b { "B" } ": at least one slot judged, and at most " (super::controls::TOLERANCE_PERCENT) "% of the judged slots failed or missed. "
                    b { "R" } ": every source within the RPO all the time measured. "
                    b { "D" } ": at least the due number of drills passed. "
                    b { "T" } ": a passed drill within the RTO, and none beyond it."
                }

                @if !report.usage.is_empty() {
                    h2 { "Storage" }
                    table {
                        tr { th { "Target" } th { "At the period's last backup" } th { "Most in the period" } th { "Measured" } }
                        @for u in &report.usage {
                            tr {
                                td { (u.target) }
                                td.n { (crate::backend::human_bytes(u.last_bytes)) }
                                td.n { (crate::backend::human_bytes(u.max_bytes)) }
                                td { (u.last_measured) }
                            }
                        }
                    }
                    p.meta { "What " (t.tenant_name) "'s own repository on each target holds (every object, after deduplication, compression and encryption)." }
                }

                h2 { "Evidence" }
                p {
                    @match (report.evidence.first, report.evidence.last, &report.evidence.head) {
                        (Some(first), Some(last), Some(head)) => {
                            "This report rests on records " (first) " to " (last) " of tenant " (t.tenant)
                            "'s evidence chain (" (report.evidence.records) " records), each signed by the service key. The last record's SHA-256 is "
                            code { (head) } "."
                        }
                        _ => { "No evidence records fall into this period." }
                    }
                    " The report bundle holds them with their signatures; "
                    code { "lifeboat report verify BUNDLE" } " recomputes every figure on this page from them."
                }
            }
        }
    };
    page.into_string()
}

/// Totals per day over all sources: scheduled, succeeded, failed, missed.
fn per_day(days: &[Day]) -> Vec<(String, u64, u64, u64, u64)> {
    let mut totals: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    for d in days {
        let e = totals.entry(&d.date).or_default();
        e.0 += d.scheduled;
        e.1 += d.succeeded;
        e.2 += d.failed;
        e.3 += d.missed.unwrap_or(0);
    }
    totals
        .into_iter()
        .map(|(d, (a, b, c, m))| (d.to_string(), a, b, c, m))
        .collect()
}

const W: f64 = 900.0;
const H: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

fn backup_chart(report: &Report) -> Markup {
    let days = per_day(&report.days);
    if days.is_empty() {
        return html! { p { "Nothing scheduled yet in this period." } };
    }
    let top = days
        .iter()
        .map(|d| d.1.max(d.2 + d.3 + d.4))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let slot = (W - LEFT) / days.len() as f64;
    let y = |v: f64| (H - BOTTOM) - v / top * (H - BOTTOM - 10.0);
    let label_every = (days.len() / 12).max(1);
    html! {
        svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="Backups per day" {
            line x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) stroke="#8c959f" {}
            text x="2" y=(y(top) + 4.0) { (top) }
            text x="2" y=(H - BOTTOM) { "0" }
            @for (i, (date, scheduled, ok, failed, missed)) in days.iter().enumerate() {
                @let x = LEFT + i as f64 * slot;
                rect x=(x + slot * 0.1) y=(y(*scheduled as f64)) width=(slot * 0.8) height=(H - BOTTOM - y(*scheduled as f64)) fill="#eaeef2" {
                    title { (date) ": " (scheduled) " scheduled, " (ok) " succeeded, " (failed) " failed, " (missed) " missed" }
                }
                rect x=(x + slot * 0.25) y=(y(*ok as f64)) width=(slot * 0.5) height=(H - BOTTOM - y(*ok as f64)) fill="#2da44e" {}
                @if *failed > 0 {
                    rect x=(x + slot * 0.25) y=(y((*ok + *failed) as f64)) width=(slot * 0.5) height=(y(*ok as f64) - y((*ok + *failed) as f64)) fill="#cf222e" {}
                }
                @if *missed > 0 {
                    rect x=(x + slot * 0.25) y=(y((*ok + *failed + *missed) as f64)) width=(slot * 0.5) height=(y((*ok + *failed) as f64) - y((*ok + *failed + *missed) as f64)) fill="#d4a72c" {}
                }
                @if i % label_every == 0 {
                    text x=(x) y=(H - 4.0) { (&date[5..]) }
                }
            }
        }
        p.meta { "Grey: scheduled; green: succeeded; red: failed; amber: missed (no backup at all)." }
    }
}

fn age_chart(report: &Report) -> Markup {
    let rpo = report.terms.rpo_ms as f64;
    let dates: Vec<String> = per_day(&report.days).into_iter().map(|d| d.0).collect();
    if dates.is_empty() {
        return html! {};
    }
    let worst = report
        .days
        .iter()
        .filter_map(|d| d.worst_data_age_ms)
        .max()
        .unwrap_or(0) as f64;
    let top = worst.max(rpo * 1.25).max(1.0);
    let slot = (W - LEFT) / dates.len() as f64;
    let y = |v: f64| (H - BOTTOM) - v / top * (H - BOTTOM - 10.0);
    let colours = ["#0969da", "#8250df", "#bf3989", "#1b7c83", "#953800"];
    let label_every = (dates.len() / 12).max(1);
    html! {
        svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="Data age per day" {
            line x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) stroke="#8c959f" {}
            line x1=(LEFT) y1=(y(rpo)) x2=(W) y2=(y(rpo)) stroke="#cf222e" stroke-dasharray="4 3" {}
            text x="2" y=(y(rpo) + 4.0) { "RPO" }
            text x="2" y=(y(top) + 4.0) { (human_ms(top as u64)) }
            @for (k, s) in report.terms.sources.iter().enumerate() {
                @let points: Vec<String> = report.days.iter().filter(|d| d.source == s.name).filter_map(|d| {
                    let i = dates.iter().position(|x| *x == d.date)?;
                    d.worst_data_age_ms.map(|v| format!("{:.1},{:.1}", LEFT + (i as f64 + 0.5) * slot, y(v as f64)))
                }).collect();
                polyline points=(points.join(" ")) fill="none" stroke=(colours[k % colours.len()]) stroke-width="1.5" {}
            }
            @for (i, date) in dates.iter().enumerate() {
                @if i % label_every == 0 {
                    text x=(LEFT + i as f64 * slot) y=(H - 4.0) { (&date[5..]) }
                }
            }
        }
        p.meta {
            "The oldest each source's newest backup got on each day; dashed red: the RPO. "
            @for (k, s) in report.terms.sources.iter().enumerate() {
                span style=(format!("color:{}", colours[k % colours.len()])) { "■ " (s.name) " " }
            }
        }
    }
}
