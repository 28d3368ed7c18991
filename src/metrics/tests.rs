//! The encoded text, as Prometheus would scrape it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::health::Health;
use crate::status::{AppStatus, ClusterStatus, Snapshot};

/// The sample lines (no comments) of an exposition.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

fn has(text: &str, line: &str) {
    assert!(
        samples(text).contains(&line),
        "missing sample `{line}` in:\n{text}"
    );
}

fn lacks(text: &str, needle: &str) {
    assert!(!text.contains(needle), "unexpected `{needle}` in:\n{text}");
}

fn app_status(cluster: &str, app: &str) -> AppStatus {
    let mut a = AppStatus::new(cluster, app);
    a.sync = SyncState::Synced;
    a.applied_revision = Some("1111111111111111111111111111111111111111".into());
    a.counts = BTreeMap::from([(Action::Unchanged, 4), (Action::Correct, 1)]);
    a.last_sync = Some(1_795_000_000);
    a.drift_corrections = 2;
    a.health = Some(Health::progressing("1 of 2 replicas updated"));
    a
}

fn snapshot(apps: Vec<AppStatus>) -> Snapshot {
    Snapshot {
        revision: None,
        source_error: None,
        source_error_kind: None,
        rollout: None,
        clusters: vec![
            ClusterStatus {
                name: "prod-eu".into(),
                reachable: true,
                error: None,
                owner: None,
            },
            ClusterStatus {
                name: "staging".into(),
                reachable: false,
                error: Some("connection refused".into()),
                owner: None,
            },
        ],
        apps,
    }
}

#[test]
fn every_family_is_prefixed_typed_and_documented() {
    let m = Metrics::new();
    m.observe_status(&snapshot(vec![app_status("prod-eu", "web")]));
    m.observe_reconcile("prod-eu", "web", Duration::from_millis(120));
    m.observe_git_fetch(Duration::from_millis(300));
    m.inc_apply_errors("prod-eu", "web");
    m.inc_webhook("github", "accepted");
    m.set_objects_health("prod-eu", "web", &BTreeMap::new());
    let text = m.encode();
    for (name, ty) in [
        ("plumb_reconcile_duration_seconds", "histogram"),
        ("plumb_git_fetch_duration_seconds", "histogram"),
        ("plumb_objects", "gauge"),
        ("plumb_objects_health", "gauge"),
        ("plumb_applied_revision_info", "gauge"),
        ("plumb_drift_corrections", "counter"),
        ("plumb_apply_errors", "counter"),
        ("plumb_last_successful_sync_timestamp_seconds", "gauge"),
        ("plumb_app_sync_status", "gauge"),
        ("plumb_app_health_status", "gauge"),
        ("plumb_cluster_reachable", "gauge"),
        ("plumb_source_error", "gauge"),
        ("plumb_webhook_requests", "counter"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {ty}\n")),
            "{name} {ty}:\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name} help");
    }
    for l in samples(&text) {
        assert!(l.starts_with("plumb_") || l.is_empty(), "unprefixed: {l}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn status_becomes_gauges_with_cluster_and_app_labels() {
    let m = Metrics::new();
    m.observe_status(&snapshot(vec![app_status("prod-eu", "web")]));
    let t = m.encode();
    has(
        &t,
        r#"plumb_app_sync_status{cluster="prod-eu",app="web",status="Synced"} 1"#,
    );
    has(
        &t,
        r#"plumb_app_sync_status{cluster="prod-eu",app="web",status="Failed"} 0"#,
    );
    has(
        &t,
        r#"plumb_app_health_status{cluster="prod-eu",app="web",health="Progressing"} 1"#,
    );
    has(
        &t,
        r#"plumb_app_health_status{cluster="prod-eu",app="web",health="Healthy"} 0"#,
    );
    has(
        &t,
        r#"plumb_objects{cluster="prod-eu",app="web",state="unchanged"} 4"#,
    );
    has(
        &t,
        r#"plumb_objects{cluster="prod-eu",app="web",state="correct"} 1"#,
    );
    has(
        &t,
        r#"plumb_objects{cluster="prod-eu",app="web",state="prune"} 0"#,
    );
    has(
        &t,
        r#"plumb_applied_revision_info{cluster="prod-eu",app="web",revision="1111111111111111111111111111111111111111"} 1"#,
    );
    has(
        &t,
        r#"plumb_drift_corrections_total{cluster="prod-eu",app="web"} 2"#,
    );
    has(
        &t,
        r#"plumb_last_successful_sync_timestamp_seconds{cluster="prod-eu",app="web"} 1795000000.0"#,
    );
    has(&t, r#"plumb_cluster_reachable{cluster="prod-eu"} 1"#);
    has(&t, r#"plumb_cluster_reachable{cluster="staging"} 0"#);
}

#[test]
fn an_unassessed_app_reports_unknown_health() {
    let m = Metrics::new();
    let mut a = app_status("prod-eu", "web");
    a.health = None;
    m.observe_status(&snapshot(vec![a]));
    has(
        &m.encode(),
        r#"plumb_app_health_status{cluster="prod-eu",app="web",health="Unknown"} 1"#,
    );
}

#[test]
fn a_new_revision_replaces_the_info_series_and_drift_only_adds() {
    let m = Metrics::new();
    let mut a = app_status("prod-eu", "web");
    m.observe_status(&snapshot(vec![a.clone()]));
    a.applied_revision = Some("2222222222222222222222222222222222222222".into());
    a.drift_corrections = 5;
    m.observe_status(&snapshot(vec![a.clone()]));
    m.observe_status(&snapshot(vec![a.clone()]));
    let t = m.encode();
    lacks(&t, "1111111111");
    has(
        &t,
        r#"plumb_applied_revision_info{cluster="prod-eu",app="web",revision="2222222222222222222222222222222222222222"} 1"#,
    );
    has(
        &t,
        r#"plumb_drift_corrections_total{cluster="prod-eu",app="web"} 5"#,
    );
    // The status was recreated (total back to 1): the counter goes on.
    a.drift_corrections = 1;
    m.observe_status(&snapshot(vec![a]));
    has(
        &m.encode(),
        r#"plumb_drift_corrections_total{cluster="prod-eu",app="web"} 6"#,
    );
}

#[test]
fn an_app_that_goes_away_loses_its_gauges() {
    let m = Metrics::new();
    m.observe_status(&snapshot(vec![
        app_status("prod-eu", "web"),
        app_status("prod-eu", "api"),
    ]));
    m.observe_status(&snapshot(vec![app_status("prod-eu", "web")]));
    let t = m.encode();
    lacks(&t, r#"plumb_app_sync_status{cluster="prod-eu",app="api""#);
    lacks(
        &t,
        r#"plumb_applied_revision_info{cluster="prod-eu",app="api""#,
    );
    lacks(&t, r#"plumb_objects{cluster="prod-eu",app="api""#);
    has(
        &t,
        r#"plumb_app_sync_status{cluster="prod-eu",app="web",status="Synced"} 1"#,
    );
}

#[test]
fn events_histograms_and_counters() {
    let m = Metrics::new();
    m.observe_reconcile("prod-eu", "web", Duration::from_millis(20));
    m.observe_reconcile("prod-eu", "web", Duration::from_secs(3));
    m.observe_git_fetch(Duration::from_millis(100));
    m.inc_apply_errors("staging", "web");
    m.inc_apply_errors("staging", "web");
    m.inc_webhook("github", "accepted");
    m.inc_webhook("gitlab", "unauthorized");
    m.set_objects_health(
        "prod-eu",
        "web",
        &BTreeMap::from([(HealthState::Healthy, 3), (HealthState::Degraded, 1)]),
    );
    let t = m.encode();
    has(
        &t,
        r#"plumb_reconcile_duration_seconds_count{cluster="prod-eu",app="web"} 2"#,
    );
    has(
        &t,
        r#"plumb_reconcile_duration_seconds_sum{cluster="prod-eu",app="web"} 3.02"#,
    );
    has(&t, "plumb_git_fetch_duration_seconds_count 1");
    has(
        &t,
        r#"plumb_apply_errors_total{cluster="staging",app="web"} 2"#,
    );
    has(
        &t,
        r#"plumb_webhook_requests_total{provider="github",result="accepted"} 1"#,
    );
    has(
        &t,
        r#"plumb_webhook_requests_total{provider="gitlab",result="unauthorized"} 1"#,
    );
    has(
        &t,
        r#"plumb_objects_health{cluster="prod-eu",app="web",health="Healthy"} 3"#,
    );
    has(
        &t,
        r#"plumb_objects_health{cluster="prod-eu",app="web",health="Degraded"} 1"#,
    );
    has(
        &t,
        r#"plumb_objects_health{cluster="prod-eu",app="web",health="Missing"} 0"#,
    );
}

#[tokio::test]
async fn api_requests_follow_the_tracked_clusters_counters() {
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let cluster = Arc::new(Cluster::new("prod-eu", client));
    let m = Metrics::new();
    m.track_cluster(&cluster);
    cluster.counters.reads.fetch_add(7, Ordering::Relaxed);
    cluster.counters.writes.fetch_add(2, Ordering::Relaxed);
    m.observe_status(&Snapshot::default());
    cluster.counters.reads.fetch_add(1, Ordering::Relaxed);
    m.observe_status(&Snapshot::default());
    let t = m.encode();
    assert!(t.contains("# TYPE plumb_api_requests counter\n"), "{t}");
    has(
        &t,
        r#"plumb_api_requests_total{cluster="prod-eu",kind="read"} 8"#,
    );
    has(
        &t,
        r#"plumb_api_requests_total{cluster="prod-eu",kind="write"} 2"#,
    );
    has(
        &t,
        r#"plumb_api_requests_total{cluster="prod-eu",kind="dry_run"} 0"#,
    );
    drop(cluster);
    m.observe_status(&Snapshot::default());
    has(
        &m.encode(),
        r#"plumb_api_requests_total{cluster="prod-eu",kind="read"} 8"#,
    );
}

#[test]
fn secret_values_never_reach_the_metrics() {
    let m = Metrics::new();
    let mut a = app_status("prod-eu", "web");
    a.errors = vec!["apps/web/secret.yaml:3:1: password=hunter2 is invalid".into()];
    m.observe_status(&snapshot(vec![a]));
    let t = m.encode();
    lacks(&t, "hunter2");
    lacks(&t, "secret.yaml");
}

#[test]
fn the_source_error_gauge_shows_the_current_kind_only() {
    use crate::source::SourceErrorKind;
    let m = Metrics::new();
    let mut snap = snapshot(vec![]);
    snap.source_error = Some("remote ssh://git@h/x: the ssh host key is not trusted".into());
    snap.source_error_kind = Some(SourceErrorKind::HostKey);
    m.observe_status(&snap);
    let text = m.encode();
    has(&text, "plumb_source_error{kind=\"host_key\"} 1");
    for kind in [
        "network",
        "auth",
        "tls",
        "branch_not_found",
        "config",
        "repository",
    ] {
        has(&text, &format!("plumb_source_error{{kind=\"{kind}\"}} 0"));
    }
    snap.source_error = None;
    snap.source_error_kind = None;
    m.observe_status(&snap);
    let text = m.encode();
    has(&text, "plumb_source_error{kind=\"host_key\"} 0");
}
