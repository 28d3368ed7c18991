//! The status page `/`: clusters × apps at a glance, server-rendered HTML
//! with inline CSS and no script, refreshing itself every 10 seconds.
//! Every text from the status (names, errors, reasons, commit subjects) is
//! HTML-escaped.
//!
//! Each cell shows the applied revision (short id, `→ desired` while a new
//! one is on its way), the sync state and the health, coloured by the
//! worse of the two; hovering shows the details and the last error, and the
//! "Problems" list below repeats every error in full. Open exit doors
//! (suspended apps, hands-off objects, fights) have their own list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::api::{AppView, StatusDoc};
use crate::health::HealthState;
use crate::status::{ClusterStatus, DoorKind, SyncState};

/// Seconds between reloads.
const REFRESH: u32 = 10;

/// `&`, `<`, `>`, `"` and `'` escaped: safe in text and in attributes.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// How alarming a cell is; its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tone {
    Ok,
    Off,
    Warn,
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "ok",
            Tone::Off => "off",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
        }
    }
}

fn sync_tone(s: SyncState) -> Tone {
    match s {
        SyncState::Synced => Tone::Ok,
        SyncState::OutOfSync | SyncState::Waiting => Tone::Warn,
        SyncState::Failed => Tone::Bad,
        SyncState::Suspended | SyncState::Orphaned | SyncState::Unknown => Tone::Off,
    }
}

fn health_tone(h: Option<HealthState>) -> Tone {
    match h {
        Some(HealthState::Healthy) => Tone::Ok,
        Some(HealthState::Progressing) => Tone::Warn,
        Some(HealthState::Missing | HealthState::Degraded) => Tone::Bad,
        Some(HealthState::Unknown) | None => Tone::Off,
    }
}

fn short(rev: Option<&str>) -> String {
    rev.map_or_else(|| "—".to_string(), |r| r.chars().take(7).collect())
}

/// `42s`, `5m`, `3h`, `2d` between two unix times.
fn age(then: u64, now: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn anchor(a: &AppView) -> String {
    esc(&format!("p-{}-{}", a.cluster, a.app))
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;background:#f6f8fa}
header{display:flex;gap:18px;align-items:baseline;padding:8px 16px;background:#24292f;color:#fff}
header h1{margin:0;font-size:17px}header .meta{color:#c9d1d9;font-size:12px}
header .sum b{color:#fff}.mono,code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
main{padding:8px 16px}
.banner{margin:0 0 6px;padding:4px 10px;border-radius:4px;background:#ffebe9;border:1px solid #ff8182;color:#82071e}
table.grid{border-collapse:separate;border-spacing:3px 2px;width:100%;table-layout:fixed}
.grid th{font-size:12px;line-height:1.2;text-align:left;padding:2px 6px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.grid th.app{width:140px}.grid thead th{background:#eaeef2;border-radius:3px}
.grid thead th.down{background:#ffebe9;color:#82071e}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;background:#1a7f37}.down .dot{background:#cf222e}
td.cell{padding:1px 6px;border-radius:3px;height:28px;line-height:1.2;overflow:hidden;white-space:nowrap;font-size:11.5px;border-left:4px solid}
td.cell a{color:inherit;text-decoration:none;display:block}
td.ok{background:#dafbe1;border-color:#1a7f37}td.warn{background:#fff8c5;border-color:#bf8700}
td.bad{background:#ffebe9;border-color:#cf222e;font-weight:600}td.off{background:#eaeef2;border-color:#8c959f;color:#57606a}
td.none{color:#afb8c1;text-align:center}
.l1{display:flex;justify-content:space-between;gap:4px}.l2{color:#3d444d}td.bad .l2{color:#82071e}
.door{font-size:10px;padding:0 4px;border-radius:6px;background:#8250df;color:#fff;font-weight:600}
section{margin-top:10px}h2{font-size:14px;margin:6px 0}
ul.problems{margin:0;padding-left:18px}ul.problems li{margin:2px 0}
pre{margin:2px 0 4px;white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #d0d7de;border-radius:4px;padding:4px 6px;font-size:12px}
table.doors{border-collapse:collapse}table.doors td,table.doors th{border-bottom:1px solid #d0d7de;padding:2px 8px;text-align:left;font-size:12px}
.muted{color:#57606a}footer{padding:8px 16px;color:#57606a;font-size:11px}footer a{color:#0969da}
.legend span{display:inline-block;padding:0 6px;margin-right:4px;border-radius:3px;border-left:4px solid}
"#;

/// The whole page.
pub(super) fn render(doc: &StatusDoc) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>plumb status</title><style>{STYLE}</style></head><body>"
    );
    header(&mut h, doc);
    h.push_str("<main>");
    if let Some(e) = &doc.source_error {
        let _ = write!(
            h,
            "<p class=\"banner\" id=\"source-error\"><b>Cannot read the config repository</b> \
             (the last good revision stays applied): <code>{}</code></p>",
            esc(e)
        );
    }
    grid(&mut h, doc);
    rollout(&mut h, doc);
    problems(&mut h, doc);
    doors(&mut h, doc);
    h.push_str("</main>");
    footer(&mut h);
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, doc: &StatusDoc) {
    let mut by_tone: BTreeMap<Tone, usize> = BTreeMap::new();
    for a in &doc.apps {
        let t = sync_tone(a.sync).max(health_tone(a.health.as_ref().map(|x| x.state)));
        *by_tone.entry(t).or_default() += 1;
    }
    let n = |t| by_tone.get(&t).copied().unwrap_or(0);
    let head = doc
        .apps
        .iter()
        .filter_map(|a| a.applied_commit.as_ref())
        .find(|c| Some(&c.id) == doc.revision.as_ref())
        .map(|c| format!(" — {}", esc(&c.subject)))
        .unwrap_or_default();
    let _ = write!(
        h,
        "<header><h1>plumb</h1><span class=\"meta\">branch head <span class=\"mono\">{}</span>{head}</span>\
         <span class=\"sum\" id=\"summary\"><b>{}</b> apps on <b>{}</b> clusters: \
         <b>{}</b> ok, <b>{}</b> in progress, <b>{}</b> failing, <b>{}</b> off or unknown</span>\
         <span class=\"meta\">refreshes every {REFRESH}s</span></header>",
        short(doc.revision.as_deref()),
        doc.apps.len(),
        doc.clusters.len(),
        n(Tone::Ok),
        n(Tone::Warn),
        n(Tone::Bad),
        n(Tone::Off),
    );
}

/// The grid's columns: the known clusters, then any cluster an app names
/// that the status does not list (shown as reachable).
fn columns(doc: &StatusDoc) -> Vec<ClusterStatus> {
    let mut clusters = doc.clusters.clone();
    let known: BTreeSet<String> = clusters.iter().map(|c| c.name.clone()).collect();
    let extra: BTreeSet<&str> = doc
        .apps
        .iter()
        .map(|a| a.cluster.as_str())
        .filter(|c| !known.contains(*c))
        .collect();
    clusters.extend(extra.into_iter().map(|name| ClusterStatus {
        name: name.into(),
        reachable: true,
        error: None,
        owner: None,
    }));
    clusters
}

fn column_header(h: &mut String, c: &ClusterStatus) {
    let (class, title, note) = if c.reachable {
        ("up", "reachable".to_string(), "")
    } else {
        let why = c.error.as_deref().unwrap_or("no answer");
        ("down", format!("unreachable: {why}"), " — unreachable")
    };
    let owner = c
        .owner
        .as_deref()
        .map(|o| format!("<br><small class=\"owner\">owned by {}</small>", esc(o)))
        .unwrap_or_default();
    let _ = write!(
        h,
        "<th class=\"{class}\" title=\"{}\"><span class=\"dot\"></span>{}{note}{owner}</th>",
        esc(&title),
        esc(&c.name),
    );
}

fn grid(h: &mut String, doc: &StatusDoc) {
    let clusters = columns(doc);
    let apps: BTreeSet<&str> = doc.apps.iter().map(|a| a.app.as_str()).collect();
    let cells: BTreeMap<(&str, &str), &AppView> = doc
        .apps
        .iter()
        .map(|a| ((a.app.as_str(), a.cluster.as_str()), a))
        .collect();
    h.push_str(
        "<table class=\"grid\" id=\"grid\"><thead><tr><th class=\"app\">app \\ cluster</th>",
    );
    for c in &clusters {
        column_header(h, c);
    }
    h.push_str("</tr></thead><tbody>");
    for app in &apps {
        let _ = write!(h, "<tr><th class=\"app\" title=\"{0}\">{0}</th>", esc(app));
        for c in &clusters {
            match cells.get(&(*app, c.name.as_str())) {
                Some(a) => cell(h, a, doc.generated_at),
                None => h.push_str("<td class=\"none\" title=\"not deployed here\">·</td>"),
            }
        }
        h.push_str("</tr>");
    }
    if apps.is_empty() {
        h.push_str("<tr><td colspan=\"99\" class=\"muted\">No apps yet: waiting for the first revision.</td></tr>");
    }
    h.push_str("</tbody></table>");
}

fn cell(h: &mut String, a: &AppView, now: u64) {
    let health = a.health.as_ref().map(|x| x.state);
    let tone = sync_tone(a.sync).max(health_tone(health));
    let mut rev = short(a.applied_revision.as_deref());
    if a.desired_revision.is_some() && a.desired_revision != a.applied_revision {
        rev = format!("{rev}→{}", short(a.desired_revision.as_deref()));
    }
    let doors = if a.doors.is_empty() {
        String::new()
    } else {
        format!(
            " <span class=\"door\">{} door{}</span>",
            a.doors.len(),
            if a.doors.len() == 1 { "" } else { "s" }
        )
    };
    let health_text = health.map_or("not assessed", HealthState::as_str);
    let last = a.last_sync.map(|t| age(t, now)).unwrap_or_default();
    let _ = write!(
        h,
        "<td class=\"cell {}\" title=\"{}\"><a href=\"#{}\"><div class=\"l1\"><span class=\"mono\">{}</span><span class=\"muted\">{}</span></div>\
         <div class=\"l2\">{} · {}{doors}</div></a></td>",
        tone.class(),
        esc(&tooltip(a, now)),
        anchor(a),
        esc(&rev),
        esc(&last),
        a.sync.as_str(),
        health_text,
    );
}

/// The hover text of a cell: everything known about the app, plain text.
fn tooltip(a: &AppView, now: u64) -> String {
    let mut t = format!("{} on {}\n", a.app, a.cluster);
    let _ = write!(
        t,
        "applied: {}",
        a.applied_revision.as_deref().unwrap_or("none")
    );
    if let Some(c) = &a.applied_commit {
        let _ = write!(t, " — {} ({})", c.subject, c.author);
    }
    if a.desired_revision != a.applied_revision {
        let _ = write!(
            t,
            "\ndesired: {}",
            a.desired_revision.as_deref().unwrap_or("none")
        );
    }
    let _ = write!(t, "\nsync: {}", a.sync.as_str());
    match &a.health {
        Some(hl) => {
            let _ = write!(t, "\nhealth: {hl}");
        }
        None => t.push_str("\nhealth: not assessed yet"),
    }
    if let Some(ls) = a.last_sync {
        let _ = write!(t, "\nlast sync: {} ago", age(ls, now));
    }
    tooltip_details(&mut t, a);
    t
}

/// Objects, drift, errors and doors of a cell's hover text.
fn tooltip_details(t: &mut String, a: &AppView) {
    if a.drift_corrections > 0 {
        let _ = write!(t, "\ndrift corrected: {}", a.drift_corrections);
    }
    let counts: Vec<String> = a
        .objects
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !counts.is_empty() {
        let _ = write!(t, "\nobjects: {}", counts.join(", "));
    }
    for e in &a.errors {
        let _ = write!(t, "\nerror: {e}");
    }
    for d in &a.doors {
        let _ = write!(t, "\ndoor: {} {}", door_kind(d.kind), d.reason);
    }
}

fn problems(h: &mut String, doc: &StatusDoc) {
    let bad: Vec<&AppView> = doc
        .apps
        .iter()
        .filter(|a| {
            !a.errors.is_empty()
                || sync_tone(a.sync) == Tone::Bad
                || health_tone(a.health.as_ref().map(|x| x.state)) == Tone::Bad
        })
        .collect();
    let down: Vec<&ClusterStatus> = doc.clusters.iter().filter(|c| !c.reachable).collect();
    h.push_str("<section id=\"problems\"><h2>Problems</h2>");
    if bad.is_empty() && down.is_empty() {
        h.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    h.push_str("<ul class=\"problems\">");
    for c in down {
        let _ = write!(
            h,
            "<li><b>cluster {}</b> unreachable: <code>{}</code></li>",
            esc(&c.name),
            esc(c.error.as_deref().unwrap_or("no answer"))
        );
    }
    for a in bad {
        problem(h, a);
    }
    h.push_str("</ul></section>");
}

/// One app in the problems list, every error in full.
fn problem(h: &mut String, a: &AppView) {
    let health = a
        .health
        .as_ref()
        .map_or_else(|| "health not assessed".into(), |x| x.to_string());
    let _ = write!(
        h,
        "<li id=\"{}\"><b>{} / {}</b> {} · {}",
        anchor(a),
        esc(&a.cluster),
        esc(&a.app),
        a.sync.as_str(),
        esc(&health)
    );
    for e in &a.errors {
        let _ = write!(h, "<pre>{}</pre>", esc(e));
    }
    h.push_str("</li>");
}

fn door_kind(k: DoorKind) -> &'static str {
    match k {
        DoorKind::Suspended => "suspended",
        DoorKind::HandsOff => "hands-off",
        DoorKind::Fight => "fight",
    }
}

fn doors(h: &mut String, doc: &StatusDoc) {
    h.push_str("<section id=\"doors\"><h2>Open exit doors</h2>");
    let open: Vec<(&AppView, &crate::status::Door)> = doc
        .apps
        .iter()
        .flat_map(|a| a.doors.iter().map(move |d| (a, d)))
        .collect();
    if open.is_empty() {
        h.push_str("<p class=\"muted\">None: plumb reconciles every app and object.</p></section>");
        return;
    }
    h.push_str("<table class=\"doors\"><tr><th>cluster</th><th>app</th><th>door</th><th>object</th><th>why</th><th>who</th><th>open for</th></tr>");
    for (a, d) in open {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.cluster),
            esc(&a.app),
            door_kind(d.kind),
            esc(d.object.as_deref().unwrap_or("(whole app)")),
            esc(&d.reason),
            esc(d.who.as_deref().unwrap_or("")),
            age(d.since, doc.generated_at),
        );
    }
    h.push_str("</table></section>");
}

/// The waves: each with its clusters, the revision it runs and its gate.
fn rollout(h: &mut String, doc: &StatusDoc) {
    let Some(r) = &doc.rollout else { return };
    h.push_str("<section id=\"rollout\"><h2>Rollout</h2>");
    if let Some(t) = &r.target {
        let _ = write!(
            h,
            "<p>Rolling out <code>{}</code> {}</p>",
            esc(&t.short),
            esc(&t.subject)
        );
    }
    if let Some(p) = &r.paused {
        let _ = write!(
            h,
            "<p class=\"banner\">Paused by {}: {}</p>",
            esc(&p.who),
            esc(&p.reason)
        );
    }
    if let Some(x) = &r.halt {
        let _ = write!(
            h,
            "<p class=\"banner\" id=\"halt\"><b>Halted at wave {}</b>: app {} on {}: {}</p>",
            esc(&x.wave),
            esc(&x.app),
            esc(&x.cluster),
            esc(&x.reason)
        );
    } else if let Some(x) = &r.last_halt {
        let _ = write!(
            h,
            "<p class=\"muted\">Last halt: wave {} at <code>{}</code>: app {} on {}: {}{}</p>",
            esc(&x.wave),
            esc(&short(Some(&x.revision))),
            esc(&x.app),
            esc(&x.cluster),
            esc(&x.reason),
            r.revert_commit
                .as_deref()
                .map(|c| format!("; reverted by <code>{}</code>", esc(&short(Some(c)))))
                .unwrap_or_default()
        );
    }
    h.push_str("<table class=\"doors\"><tr><th>wave</th><th>clusters</th><th>revision</th><th>phase</th><th>gate</th></tr>");
    for w in &r.waves {
        let tone = match w.phase.as_str() {
            "done" => Tone::Ok,
            "halted" => Tone::Bad,
            "pending" | "paused" => Tone::Off,
            _ => Tone::Warn,
        };
        let _ = write!(
            h,
            "<tr class=\"wave {}\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            tone.class(),
            esc(&w.name),
            esc(&w.clusters.join(", ")),
            esc(&short(w.revision.as_deref())),
            esc(&w.phase),
            esc(&w.gate)
        );
    }
    h.push_str("</table>");
    if !r.unwaved.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">In no wave (they follow the branch at once): {}</p>",
            esc(&r.unwaved.join(", "))
        );
    }
    if let Some(p) = &r.problem {
        let _ = write!(h, "<p class=\"banner\">{}</p>", esc(p));
    }
    h.push_str("</section>");
}

fn footer(h: &mut String) {
    h.push_str(
        "<footer><span class=\"legend\">\
         <span style=\"background:#dafbe1;border-color:#1a7f37\">synced &amp; healthy</span>\
         <span style=\"background:#fff8c5;border-color:#bf8700\">in progress</span>\
         <span style=\"background:#ffebe9;border-color:#cf222e\">failed / degraded</span>\
         <span style=\"background:#eaeef2;border-color:#8c959f\">suspended / unknown</span></span> \
         Cells: applied revision (→ desired), time since last sync, sync · health; hover for details. \
         <a href=\"/api/v1/status\">/api/v1/status</a> · <a href=\"/api/v1/history\">/api/v1/history</a> · \
         <a href=\"/metrics\">/metrics</a></footer>",
    );
}
