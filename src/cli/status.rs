//! `plumb status`: revision, sync state and health per cluster and app, read
//! from a running daemon's `/api/v1/status` (a table like `kubectl get`, or
//! the JSON document with `--json`). Exit 0 when the daemon answered, 2 when
//! it cannot be reached. A daemon with `http.token_*` wants its token:
//! `--token-file PATH`, or `$PLUMB_TOKEN`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::EXIT_ERROR;
use crate::http::api::{AppView, StatusDoc};
use crate::http::client;

pub fn status(server: &str, json: bool, token_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let token = token(token_file)?;
    let token = token.as_deref();
    let fetched = super::runtime()?.block_on(async {
        if json {
            client::get(server, "/api/v1/status", token)
                .await
                .map(Fetched::Raw)
        } else {
            client::get_json::<StatusDoc>(server, "/api/v1/status", token)
                .await
                .map(|d| Fetched::Doc(Box::new(d)))
        }
    });
    match fetched {
        Ok(Fetched::Raw(body)) => {
            println!("{}", String::from_utf8_lossy(&body).trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Ok(Fetched::Doc(doc)) => {
            print!("{}", table(&doc));
            for line in doc.rollout.iter().flat_map(|r| r.lines()) {
                println!("{line}");
            }
            let owners: Vec<String> = doc
                .clusters
                .iter()
                .filter_map(|c| Some(format!("{}={}", c.name, c.owner.as_deref()?)))
                .collect();
            if !owners.is_empty() {
                println!("owners: {}", owners.join(" "));
            }
            for note in notes(&doc) {
                eprintln!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, client::ClientError::Status { code: 401, .. }) {
                eprintln!(
                    "hint: the daemon requires its API token (http.token_*): --token-file PATH or {TOKEN_ENV}=..."
                );
            }
            if e.is_unreachable() {
                eprintln!(
                    "hint: is `plumb run` running? --server takes the address of the daemon config's `http.listen`"
                );
            }
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// The API token: from `--token-file`, else `$PLUMB_TOKEN` (trimmed;
/// empty means none).
fn token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let raw = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the API token from {}", f.display()))?,
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    let t = raw.trim();
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// The environment variable `plumb status` reads the API token from.
pub const TOKEN_ENV: &str = "PLUMB_TOKEN";

enum Fetched {
    Raw(bytes::Bytes),
    Doc(Box<StatusDoc>),
}

const HEADERS: [&str; 7] = [
    "CLUSTER", "APP", "REVISION", "SYNC", "HEALTH", "AGE", "MESSAGE",
];

/// The table, one row per app and cluster, columns padded like `kubectl get`.
pub fn table(doc: &StatusDoc) -> String {
    let mut apps: Vec<&AppView> = doc.apps.iter().collect();
    apps.sort_by(|a, b| (&a.cluster, &a.app).cmp(&(&b.cluster, &b.app)));
    let mut rows: Vec<[String; 7]> = vec![HEADERS.map(str::to_string)];
    rows.extend(apps.iter().map(|a| row(a, doc.generated_at)));
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if apps.is_empty() {
        out.push_str("(no apps yet)\n");
    }
    out
}

fn short(rev: Option<&str>) -> String {
    rev.map_or_else(|| "<none>".into(), |r| r.chars().take(7).collect())
}

fn row(a: &AppView, now: u64) -> [String; 7] {
    let mut rev = short(a.applied_revision.as_deref());
    if a.desired_revision.is_some() && a.desired_revision != a.applied_revision {
        rev = format!("{rev}->{}", short(a.desired_revision.as_deref()));
    }
    let health = a
        .health
        .as_ref()
        .map_or_else(|| "<unknown>".into(), |h| h.state.as_str().to_string());
    let age = a
        .last_sync
        .map_or_else(|| "<never>".into(), |t| age(now.saturating_sub(t)));
    [
        a.cluster.clone(),
        a.app.clone(),
        rev,
        a.sync.as_str().to_string(),
        health,
        age,
        message(a),
    ]
}

/// The most useful line: the first error, else the health's reason, else
/// an open door.
fn message(a: &AppView) -> String {
    let text = if let Some(e) = a.errors.first() {
        let more = a.errors.len() - 1;
        if more > 0 {
            format!("{e} (+{more} more)")
        } else {
            e.clone()
        }
    } else if let Some(h) = a.health.as_ref().filter(|h| !h.message.is_empty()) {
        h.message.clone()
    } else if let Some(d) = a.doors.first() {
        format!("door open: {}", d.reason)
    } else {
        String::new()
    };
    let one_line = text.lines().next().unwrap_or("").to_string();
    if one_line.chars().count() > 160 {
        one_line.chars().take(159).collect::<String>() + "…"
    } else {
        one_line
    }
}

/// `45s`, `3m`, `5h`, `2d` (as `kubectl get` prints ages).
fn age(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        7200..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// What the table cannot show: an unreadable branch, unreachable clusters.
fn notes(doc: &StatusDoc) -> Vec<String> {
    let mut n = Vec::new();
    if let Some(e) = &doc.source_error {
        let kind = doc
            .source_error_kind
            .map(|k| format!(" ({k})"))
            .unwrap_or_default();
        n.push(format!(
            "warning: cannot read the config repository{kind}: {e}"
        ));
    }
    for c in doc.clusters.iter().filter(|c| !c.reachable) {
        n.push(format!(
            "warning: cluster {} unreachable: {}",
            c.name,
            c.error.as_deref().unwrap_or("no answer")
        ));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::status::{ClusterStatus, SyncState};

    fn app(cluster: &str, name: &str) -> AppView {
        AppView {
            cluster: cluster.into(),
            app: name.into(),
            desired_revision: Some("a".repeat(40)),
            applied_revision: Some("a".repeat(40)),
            applied_commit: None,
            sync: SyncState::Synced,
            health: Some(Health::healthy()),
            errors: vec![],
            objects: Default::default(),
            changes: vec![],
            last_sync: Some(1_000),
            drift_corrections: 0,
            doors: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn the_table_lines_up_like_kubectl_get() {
        let mut failed = app("prod-eu", "web");
        failed.sync = SyncState::Failed;
        failed.desired_revision = Some("b".repeat(40));
        failed.errors = vec!["apps/web/a.yaml:3:1: bad".into(), "second".into()];
        failed.health = Some(Health::progressing("1 of 2 replicas updated"));
        let mut fresh = app("staging", "api");
        fresh.health = None;
        fresh.last_sync = None;
        fresh.applied_revision = None;
        let doc = StatusDoc {
            api_version: "plumb.dev/v1".into(),
            kind: "Status".into(),
            generated_at: 1_300,
            revision: None,
            source_error: Some("auth failed".into()),
            source_error_kind: Some(crate::source::SourceErrorKind::Auth),
            clusters: vec![ClusterStatus {
                name: "staging".into(),
                reachable: false,
                error: Some("refused".into()),
                owner: None,
            }],
            apps: vec![fresh, failed, app("prod-eu", "api")],
            rollout: None,
        };
        let t = table(&doc);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        // Every column starts where its header does.
        let at = |h: &str| lines[0].find(h).unwrap();
        let col = |line: &str, h: &str| {
            line[at(h)..]
                .split("   ")
                .next()
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(col(lines[1], "APP"), "api", "sorted by cluster, then app");
        assert_eq!(col(lines[1], "REVISION"), "aaaaaaa");
        assert_eq!(col(lines[1], "AGE"), "5m");
        assert!(
            lines[1].ends_with("5m"),
            "no trailing blanks: {:?}",
            lines[1]
        );
        assert_eq!(col(lines[2], "REVISION"), "aaaaaaa->bbbbbbb");
        assert_eq!(col(lines[2], "SYNC"), "Failed");
        assert_eq!(col(lines[2], "HEALTH"), "Progressing");
        assert_eq!(
            &lines[2][at("MESSAGE")..],
            "apps/web/a.yaml:3:1: bad (+1 more)"
        );
        assert_eq!(col(lines[3], "CLUSTER"), "staging");
        assert_eq!(col(lines[3], "REVISION"), "<none>->aaaaaaa");
        assert_eq!(col(lines[3], "HEALTH"), "<unknown>");
        assert_eq!(col(lines[3], "AGE"), "<never>");
        assert_eq!(
            notes(&doc),
            [
                "warning: cannot read the config repository (auth): auth failed",
                "warning: cluster staging unreachable: refused"
            ]
        );
        assert_eq!(age(59), "59s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(10_800), "3h");
        assert_eq!(age(500_000), "5d");
    }
}
