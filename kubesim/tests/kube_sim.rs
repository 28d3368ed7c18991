//! What kubesim adds to an API server, through the `kube` client: faults
//! and counters, the admin API, workload status, the state file, TLS and
//! kubeconfig.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubesim::{FaultRule, Kubesim, Options, WorkloadMode};
use serde_json::{Value, json};

use common::{rv, status};

#[tokio::test]
async fn faults_and_counters() {
    let (sim, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    sim.reset_counters();
    // 429 once, then success: kube's default retry honours Retry-After.
    sim.faults()
        .add_rule(
            FaultRule::new(429)
                .verb("get")
                .resource("configmaps")
                .count(1)
                .retry_after(0),
        )
        .unwrap();
    let got = cms.get("kube-root-ca.crt").await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("kube-root-ca.crt"));
    let c = sim.counters();
    assert_eq!(c.resource_verb("configmaps", "get"), 2);
    assert_eq!(c.faults_injected, 1);

    sim.faults()
        .add_rule(FaultRule::new(500).verb("list").count(1))
        .unwrap();
    let s = status(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert!(cms.list(&ListParams::default()).await.is_ok());

    sim.faults().set_latency(Duration::from_millis(150));
    let t = std::time::Instant::now();
    cms.get("kube-root-ca.crt").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.faults().clear();

    sim.reset_counters();
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
    cms.create(&PostParams::default(), &c).await.unwrap();
    cms.patch(
        "n",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .unwrap();
    cms.delete("n", &DeleteParams::default()).await.unwrap();
    let c = sim.counters();
    assert_eq!(c.writes(), 3);
    assert_eq!(c.writes_on("configmaps"), 3);
    assert_eq!(
        (c.verb("create"), c.verb("patch"), c.verb("delete")),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn refused_connections_recover() {
    let (sim, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    sim.faults().refuse_connections(Duration::from_millis(400));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = tokio::net::TcpStream::connect(sim.addr()).await;
    assert!(refused.is_err(), "connections are refused");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = sim.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(fresh, "default");
    assert!(api.get("kube-root-ca.crt").await.is_ok());
    drop(cms);
}

#[tokio::test]
async fn admin_api_over_http() {
    let (sim, client) = common::start().await;
    let req = |m: &str, p: &str, body: Value| {
        http::Request::builder()
            .method(m)
            .uri(p)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    };
    client
        .request::<Value>(req("POST", "/kubesim/counters/reset", json!({})))
        .await
        .unwrap();
    let f: Value = client
        .request(req("POST", "/kubesim/faults", json!({"rules": [{"verb": "get", "resource": "namespaces", "status": 503, "count": 1}]})))
        .await
        .unwrap();
    assert_eq!(f["rules"][0]["status"], 503);
    let nss: Api<Namespace> = Api::all(client.clone());
    // 503 is retried by kube's default retry policy.
    nss.get("default").await.unwrap();
    let c: Value = client
        .request(req("GET", "/kubesim/counters", json!({})))
        .await
        .unwrap();
    assert_eq!(c["byResource"]["namespaces"]["get"], 2);
    assert_eq!(c["faultsInjected"], 1);
    client
        .request::<Value>(req("DELETE", "/kubesim/faults", json!({})))
        .await
        .unwrap();
    assert!(sim.faults().config().rules.is_empty());
    let w: Value = client
        .request(req(
            "PUT",
            "/kubesim/workload",
            json!({"mode": "readyAfter", "ms": 10}),
        ))
        .await
        .unwrap();
    assert_eq!(w, json!({"mode": "readyAfter", "ms": 10}));
    assert_eq!(sim.workload(), WorkloadMode::ReadyAfter(10));
}

fn deployment(name: &str, annotations: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn workload_status() {
    let opts = Options {
        workload: WorkloadMode::ReadyAfter(100),
        ..Default::default()
    };
    let (_sim, client) = common::start_with(opts).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("ok", json!({})))
        .await
        .unwrap();
    deps.create(
        &PostParams::default(),
        &deployment("stuck", json!({"kubesim.dev/ready": "never"})),
    )
    .await
    .unwrap();
    let ready = common::eventually(5, || async {
        let d = deps.get("ok").await.ok()?;
        let s = d.status?;
        (s.available_replicas == Some(2)).then_some(s)
    })
    .await;
    assert_eq!(ready.observed_generation, Some(1));
    let conds = ready.conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
    let stuck = common::eventually(5, || async {
        let s = deps.get("stuck").await.ok()?.status?;
        let c = s.conditions.clone()?;
        c.iter()
            .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            .then_some(s)
    })
    .await;
    assert_eq!(stuck.available_replicas, None);

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let j: Job = serde_json::from_value(json!({"metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i:1"}]}}}}))
    .unwrap();
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let done = common::eventually(5, || async {
        let s = jobs.get("j").await.ok()?.status?;
        (s.succeeded == Some(1)).then_some(s)
    })
    .await;
    assert!(
        done.conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    );
}

#[tokio::test]
async fn state_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let opts = Options {
        state_file: Some(path.clone()),
        ..Default::default()
    };
    let (sim, client) = common::start_with(opts.clone()).await;
    common::apply_widget_crd(&client, "Cluster").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "kept"}, "data": {"a": "b"}})).unwrap();
    let kept = cms.create(&PostParams::default(), &c).await.unwrap();
    let rv_before = sim.resource_version();
    sim.shutdown().await;

    let (sim2, client2) = common::start_with(opts).await;
    let cms2: Api<ConfigMap> = Api::namespaced(client2.clone(), "default");
    let back = cms2.get("kept").await.unwrap();
    assert_eq!(back.metadata.uid, kept.metadata.uid);
    assert_eq!(rv(&back), rv(&kept));
    assert_eq!(sim2.resource_version(), rv_before);
    assert!(common::serves_widgets(&client2).await);
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
    let after = cms2.create(&PostParams::default(), &c).await.unwrap();
    assert!(rv(&after).parse::<u64>().unwrap() > rv_before);
}

#[tokio::test]
async fn tls_and_kubeconfig() {
    let sim = Kubesim::start(Options {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let client = sim.client().await.unwrap();
    let nss: Api<Namespace> = Api::all(client);
    assert!(nss.get("kube-system").await.is_ok());
    // A client built from the written kubeconfig works too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path, "sim").unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(cfg).unwrap();
    let nss: Api<Namespace> = Api::all(client);
    assert!(nss.get("default").await.is_ok());
    sim.shutdown().await;
}
