//! `plumb status` (the real binary) against a daemon's HTTP API served
//! in-process: the table, `--json`, and exit 2 with a clear message when
//! nothing answers.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::plumb_async;
use plumb::health::Health;
use plumb::http::{HttpState, Server};
use plumb::metrics::Metrics;
use plumb::status::{Status, SyncState};
use tokio::sync::Notify;

async fn daemon() -> String {
    let status = Status::default();
    status.set_cluster("prod-eu", true, None);
    status.update("prod-eu", "web", |a| {
        a.sync = SyncState::Failed;
        a.applied_revision = Some("0123456789abcdef0123456789abcdef01234567".into());
        a.desired_revision = Some("fedcba9876543210fedcba9876543210fedcba98".into());
        a.errors = vec!["apps/web/deploy.yaml:12:7: spec.replicas: invalid type".into()];
        a.health = Some(Health::healthy());
        a.last_sync = Some(plumb::status::now() - 300);
    });
    status.update("prod-eu", "api", |a| {
        a.sync = SyncState::Synced;
        a.applied_revision = Some("0123456789abcdef0123456789abcdef01234567".into());
        a.desired_revision = a.applied_revision.clone();
        a.health = Some(Health::progressing(
            "Deployment api/api: 1 of 2 replicas updated",
        ));
    });
    let state = HttpState::new(status, Arc::new(Metrics::new()), Arc::new(Notify::new()));
    let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(state, std::future::pending()));
    url
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_a_table_and_json_from_the_daemon() {
    let url = daemon().await;
    let out = plumb_async(args(&["status", "--server", &url])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("CLUSTER"), "{stdout}");
    for h in ["APP", "REVISION", "SYNC", "HEALTH", "AGE", "MESSAGE"] {
        assert!(lines[0].contains(h), "{stdout}");
    }
    assert!(
        lines[1].contains("api") && lines[1].contains("Progressing"),
        "{stdout}"
    );
    assert!(lines[1].contains("1 of 2 replicas updated"), "{stdout}");
    assert!(lines[2].contains("0123456->fedcba9"), "{stdout}");
    assert!(
        lines[2].contains("Failed") && lines[2].contains("5m"),
        "{stdout}"
    );
    assert!(lines[2].ends_with("apps/web/deploy.yaml:12:7: spec.replicas: invalid type"));

    let out = plumb_async(args(&["status", "--server", &format!("{url}/"), "--json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["api_version"], "plumb.dev/v1");
    assert_eq!(doc["apps"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_a_daemon_exits_2_with_a_clear_message() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = plumb_async(args(&["status", "--server", &url])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach the plumb daemon at {url}/api/v1/status"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("is `plumb run` running?"), "{stderr}");
    let out = plumb_async(args(&["status", "--server", "https://plumb.example.com"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected http://HOST:PORT"));
}
