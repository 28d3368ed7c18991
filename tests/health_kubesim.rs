//! Health of objects as kubesim's workload controller writes their status:
//! a rollout that becomes ready is Progressing then Healthy; one that never
//! does is Degraded (Deployments: ProgressDeadlineExceeded; Jobs: Failed).

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use plumb::cluster::{Cluster, Kind};
use plumb::health::{Health, HealthState, app_health, assess, describe};
use serde_json::{Value, json};

async fn cluster(mode: kubesim::WorkloadMode) -> (kubesim::Kubesim, Cluster) {
    let sim = kubesim::Kubesim::start(kubesim::Options {
        workload: mode,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Cluster::new("sim", sim.client().await.unwrap());
    let ns = c.resolve("v1", "Namespace").await.unwrap();
    let web = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
    c.apply(&ns, None, "web", &web, false).await.unwrap();
    (sim, c)
}

fn deployment(name: &str, ready: Option<&str>) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    });
    if let Some(r) = ready {
        d["metadata"]["annotations"] = json!({ kubesim::READY_ANNOTATION: r });
    }
    d
}

fn job(name: &str, ready: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "web",
                     "annotations": { kubesim::READY_ANNOTATION: ready }},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "c", "image": "busybox"}]}}}
    })
}

/// The kind of `obj` as the cluster serves it, and its name.
async fn kind_and_name<'a>(c: &Cluster, obj: &'a Value) -> (Kind, &'a str) {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = c.resolve(api_version, obj["kind"].as_str().unwrap()).await;
    (kind.unwrap(), obj["metadata"]["name"].as_str().unwrap())
}

/// The app's health from its live objects.
fn health_of(objs: &[Value]) -> Health {
    let names: Vec<String> = objs.iter().map(describe).collect();
    app_health(
        names
            .iter()
            .map(String::as_str)
            .zip(objs.iter().map(assess)),
    )
}

async fn apply(c: &Cluster, obj: &Value) -> Value {
    let (kind, name) = kind_and_name(c, obj).await;
    c.apply(&kind, Some("web"), name, obj, false).await.unwrap()
}

async fn live(c: &Cluster, obj: &Value) -> Value {
    let (kind, name) = kind_and_name(c, obj).await;
    c.get(&kind, Some("web"), name).await.unwrap().unwrap()
}

async fn wait_health(c: &Cluster, obj: &Value, want: HealthState) -> Health {
    let start = Instant::now();
    loop {
        let h = assess(&live(c, obj).await);
        if h.state == want {
            return h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} stayed {h}, want {want}",
            describe(obj)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_progress_then_become_healthy() {
    let (_sim, c) = cluster(kubesim::WorkloadMode::ReadyAfter(400)).await;
    let d = deployment("api", None);
    let applied = apply(&c, &d).await;
    // Right after the apply, the controller has not caught up yet.
    assert_ne!(assess(&applied).state, HealthState::Healthy);
    let h = wait_health(&c, &d, HealthState::Progressing).await;
    assert!(!h.message.is_empty(), "a reason is given: {h}");
    wait_health(&c, &d, HealthState::Healthy).await;
    let j = job("migrate", "now");
    apply(&c, &j).await;
    wait_health(&c, &j, HealthState::Healthy).await;
    let objs = [live(&c, &d).await, live(&c, &j).await];
    let app = health_of(&objs);
    assert_eq!(app, Health::healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_that_never_become_ready_are_degraded() {
    let (_sim, c) = cluster(kubesim::WorkloadMode::NeverReady).await;
    let d = deployment("api", None);
    apply(&c, &d).await;
    let h = wait_health(&c, &d, HealthState::Degraded).await;
    assert!(h.message.contains("ProgressDeadlineExceeded"), "{h}");
    let j = job("migrate", "never");
    apply(&c, &j).await;
    let h = wait_health(&c, &j, HealthState::Degraded).await;
    assert!(h.message.contains("BackoffLimitExceeded"), "{h}");
    // One ready object does not hide the failed ones.
    let ok = deployment("web", Some("now"));
    apply(&c, &ok).await;
    wait_health(&c, &ok, HealthState::Healthy).await;
    let objs = [live(&c, &ok).await, live(&c, &d).await, live(&c, &j).await];
    let app = health_of(&objs);
    assert_eq!(app.state, HealthState::Degraded);
    assert!(app.message.starts_with("Deployment web/api: "), "{app}");
}

fn with_ready(mut obj: Value, ready: &str) -> Value {
    obj["metadata"]["annotations"] = json!({ kubesim::READY_ANNOTATION: ready });
    obj
}

fn hpa(name: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "web"},
        "spec": {"minReplicas": 2, "maxReplicas": 5,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                     "target": {"type": "Utilization", "averageUtilization": 70}}}]}
    })
}

fn pdb(name: &str) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}
    })
}

fn ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "web"},
        "spec": {"rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/",
            "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}
    })
}

/// What the HPA, disruption and ingress controllers of a cluster report is
/// simulated too: ready, they are Healthy; never, an HPA without metrics and
/// a PDB whose sync fails are Degraded, an Ingress without an address waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscalers_budgets_and_ingresses_report_what_their_controllers_say() {
    let (_sim, c) = cluster(kubesim::WorkloadMode::ReadyAfter(100)).await;
    for obj in [hpa("ok"), pdb("ok"), ingress("ok")] {
        apply(&c, &obj).await;
        wait_health(&c, &obj, HealthState::Healthy).await;
    }
    let blind = with_ready(hpa("blind"), "never");
    apply(&c, &blind).await;
    let h = wait_health(&c, &blind, HealthState::Degraded).await;
    assert!(h.message.contains("FailedGetResourceMetric"), "{h}");
    let p = with_ready(pdb("broken"), "never");
    apply(&c, &p).await;
    let h = wait_health(&c, &p, HealthState::Degraded).await;
    assert!(h.message.contains("SyncFailed"), "{h}");
    let i = with_ready(ingress("unserved"), "never");
    apply(&c, &i).await;
    let h = wait_health(&c, &i, HealthState::Progressing).await;
    assert!(h.message.contains("load-balancer address"), "{h}");
}
