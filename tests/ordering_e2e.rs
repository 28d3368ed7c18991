//! End-to-end: order, concurrency and faults. Apps apply concurrently but
//! after the app creating their namespace, within the per-cluster request
//! limit; an unreachable cluster does not stall the other; throttling and
//! server errors are retried.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::regions;
use common::{Env, LONG, TestRepo, eventually};

/// `files` (path, text) committed with `plumb.yaml` = `config`; one
/// cluster `a` whose every request takes `latency_ms`.
async fn env(config: &str, files: &[(String, String)], latency_ms: u64) -> Env {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", config);
    for (path, text) in files {
        repo.write(path, text);
    }
    repo.commit("apps");
    let env = Env::new(repo, &["a"]).await;
    let latency = Duration::from_millis(latency_ms);
    env.a().sim.faults().set_latency(latency);
    env
}

fn file(path: &str, text: &str) -> (String, String) {
    (path.to_string(), text.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_does_not_stall_the_other_and_catches_up() {
    let env = regions::env(&["a1"]).await;
    env.sim("b")
        .sim
        .faults()
        .refuse_connections(Duration::from_secs(4));
    let d = env.daemon("daemon.log");
    eventually(
        "cluster a synced while b is down",
        LONG,
        Some(&d),
        || async { env.a().value("a1").await.filter(|v| v == "v1") },
    )
    .await;
    eventually("cluster b catches up", LONG, Some(&d), || async {
        env.sim("b").value("a1").await.filter(|v| v == "v1")
    })
    .await;
}

/// Apps are applied concurrently, yet an app never races the app that
/// creates its namespace: without `depends_on`, `b-app` (in namespace
/// `shared`) waits for `a-ns` (which creates it) instead of failing its
/// dry-run. Every request is slowed so that the two would overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_waits_for_the_app_creating_its_namespace() {
    let mut files = vec![
        file(
            "apps/a-ns/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: shared }\n",
        ),
        file(
            "apps/b-app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: in-shared }\ndata: { v: one }\n",
        ),
    ];
    for i in 0..20 {
        files.push(file(
            &format!("apps/a-ns/more{i}.yaml"),
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{ name: more{i} }}\n"),
        ));
    }
    let config = "clusters:\n  a: {}\napps:\n  a-ns: { path: apps/a-ns, cluster_scoped: true }\n  b-app: { path: apps/b-app, namespace: shared }\n";
    let env = env(config, &files, 20).await;
    let a = env.a();
    let d = env.daemon("daemon.log");
    // A failed dry-run would be retried only after 60 s: well past this.
    eventually(
        "b-app applied in the namespace a-ns creates",
        LONG,
        Some(&d),
        || async {
            a.configmap("shared", "in-shared")
                .await
                .filter(|c| c["data"]["v"] == "one")
        },
    )
    .await;
    assert!(
        !d.logs().contains("rejected by the API server"),
        "b-app raced a-ns: {}",
        d.logs()
    );
}

/// Which app creates a namespace decides the order, not the apps' names:
/// app `aaa` (a ConfigMap in namespace `team`) sorts before app `zzz`
/// (which creates `team`), and still `sync --once` applies both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_creating_a_namespace_goes_first_whatever_its_name() {
    let files = [
        file(
            "apps/zzz/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: team }\n",
        ),
        file(
            "apps/aaa/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: in-team }\ndata: { v: one }\n",
        ),
    ];
    let config = "clusters:\n  a: {}\napps:\n  aaa: { path: apps/aaa, namespace: team }\n  zzz: { path: apps/zzz, cluster_scoped: true }\n";
    let env = env(config, &files, 10).await;
    let a = env.a();
    env.sync_once().await;
    let cm = a.configmap("team", "in-team").await.expect("applied");
    assert_eq!(cm["data"]["v"], "one");
}

/// Several apps apply at once, but the requests in flight to a cluster
/// stay within plumb's per-cluster limit (16), as kubesim measures it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_apply_concurrently_within_the_per_cluster_request_limit() {
    let mut config = String::from("clusters:\n  a: {}\napps:\n");
    let mut files = Vec::new();
    for app in 0..4 {
        config.push_str(&format!(
            "  app{app}: {{ path: apps/app{app}, namespace: default }}\n"
        ));
        for i in 0..40 {
            files.push(file(
                &format!("apps/app{app}/cm{i}.yaml"),
                &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: app{app}-cm{i} }}\n"),
            ));
        }
    }
    // Slow requests, so that every limit is reached.
    let env = env(&config, &files, 10).await;
    let a = env.a();
    let d = env.daemon("daemon.log");
    for app in 0..4 {
        eventually("every app applied", LONG, Some(&d), || async {
            a.configmap("default", &format!("app{app}-cm39")).await
        })
        .await;
    }
    let peak = a.sim.counters().peak_writes_in_flight;
    assert!(peak <= 16, "{peak} writes in flight at once");
    assert!(peak > 1, "writes were not concurrent: peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_with_backoff() {
    let env = regions::env(&["a1", "a2"]).await;
    let faults = env.a().sim.faults();
    faults
        .add_rule(
            kubesim::FaultRule::new(429)
                .verb("patch")
                .resource("configmaps")
                .count(3)
                .retry_after(1),
        )
        .unwrap();
    faults
        .add_rule(
            kubesim::FaultRule::new(503)
                .verb("patch")
                .resource("namespaces")
                .count(2),
        )
        .unwrap();
    let started = std::time::Instant::now();
    env.sync_once().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        env.a().sim.counters().faults_injected,
        5,
        "every injected fault was met and retried"
    );
    env.assert_value("a2", Some("v1"), "applied after the retries")
        .await;
}
