//! Conformance through the `kube` client: server-side apply, CRDs and
//! discovery, namespace deletion, garbage collection, faults and counters,
//! persistence, TLS, workload status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::discovery::Discovery;
use kube::{Client, Error as KubeError};
use kubesim::{FaultRule, Kubesim, Options, WorkloadMode};
use serde_json::{Value, json};

fn rv(o: &impl kube::Resource) -> String {
    o.meta().resource_version.clone().unwrap()
}

fn apply_cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "default"}, "data": data})
}

#[tokio::test]
async fn server_side_apply_lifecycle() {
    let (sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("plumb");
    let made = api
        .patch(
            "ssa",
            &pp,
            &Patch::Apply(apply_cm(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    let mf = made.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("plumb"), Some("Apply"))
    );

    // Re-applying the same configuration is a no-op: same resourceVersion.
    let before = sim.resource_version();
    let again = api
        .patch(
            "ssa",
            &pp,
            &Patch::Apply(apply_cm(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&made));
    assert_eq!(sim.resource_version(), before);

    // Another manager changes a field: applying the old value conflicts.
    let p = json!({"data": {"a": "theirs"}});
    api.patch(
        "ssa",
        &PatchParams {
            field_manager: Some("other".into()),
            ..Default::default()
        },
        &Patch::Merge(&p),
    )
    .await
    .unwrap();
    let err = api
        .patch(
            "ssa",
            &pp,
            &Patch::Apply(apply_cm(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap_err();
    match err {
        KubeError::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"other\" using v1: .data.a"
            );
            let causes = s.details.unwrap().causes;
            assert_eq!(causes.len(), 1);
            assert_eq!(causes[0].reason, "FieldManagerConflict");
            assert_eq!(causes[0].field, ".data.a");
            assert_eq!(causes[0].message, "conflict with \"other\" using v1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api.get("ssa").await.unwrap().data.unwrap()["a"], "theirs");

    // Force takes the field over.
    let forced = api
        .patch(
            "ssa",
            &pp.clone().force(),
            &Patch::Apply(apply_cm(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "1");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"plumb".to_string()));

    // A field dropped from the configuration is removed from the object.
    let smaller = api
        .patch("ssa", &pp, &Patch::Apply(apply_cm(json!({"a": "1"}))))
        .await
        .unwrap();
    let keys: Vec<String> = smaller.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["a"]);

    // fieldManager is required.
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/ssa")
        .header("content-type", "application/apply-patch+yaml")
        .body(serde_json::to_vec(&apply_cm(json!({}))).unwrap())
        .unwrap();
    match client.request::<ConfigMap>(req).await.unwrap_err() {
        KubeError::Api(s) => assert_eq!(s.code, 422),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn apply_rejects_unknown_fields() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "dta": {"a": "b"}});
    match api
        .patch("u", &PatchParams::apply("m"), &Patch::Apply(cfg))
        .await
        .unwrap_err()
    {
        KubeError::Api(s) => {
            assert_eq!(s.code, 400);
            assert!(
                s.message.contains(".dta: field not declared in schema"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
}

async fn resource_names(client: &Client) -> Vec<String> {
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let mut out = Vec::new();
    for g in d.groups() {
        for (ar, _) in g.recommended_resources() {
            out.push(format!("{}/{}", ar.group, ar.plural));
        }
    }
    out
}

#[tokio::test]
async fn crd_lifecycle_and_discovery() {
    let (_sim, client) = common::start().await;
    let legacy = Discovery::new(client.clone()).run().await.unwrap();
    assert!(legacy.has_group("apps") && legacy.has_group("apiextensions.k8s.io"));
    assert!(
        !resource_names(&client)
            .await
            .contains(&"example.com/widgets".to_string())
    );

    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd = crds
        .patch(
            "widgets.example.com",
            &PatchParams::apply("test"),
            &Patch::Apply(common::widget_crd("Namespaced")),
        )
        .await
        .unwrap();
    let conds = crd.data["status"]["conditions"].as_array().unwrap();
    let types: Vec<&str> = conds
        .iter()
        .filter(|c| c["status"] == "True")
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["NamesAccepted", "Established"]);
    assert_eq!(crd.data["status"]["acceptedNames"]["kind"], "Widget");

    assert!(
        resource_names(&client)
            .await
            .contains(&"example.com/widgets".to_string())
    );
    let legacy = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = legacy
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
                   "spec": {"color": "red", "junk": true}});
    let made = widgets
        .patch("w1", &PatchParams::apply("test"), &Patch::Apply(&w))
        .await;
    match made.unwrap_err() {
        KubeError::Api(s) => assert_eq!(
            s.code, 400,
            "unknown fields are rejected by apply: {}",
            s.message
        ),
        other => panic!("{other:?}"),
    }
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"color": "red"}});
    let made = widgets
        .patch("w1", &PatchParams::apply("test"), &Patch::Apply(&w))
        .await
        .unwrap();
    assert_eq!(made.data["spec"]["size"], 1, "schema default applied");
    assert_eq!(made.metadata.generation, Some(1));
    let p = json!({"spec": {"size": -1}});
    match widgets
        .patch("w1", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_err()
    {
        KubeError::Api(s) => assert_eq!((s.code, s.reason.as_str()), (422, "Invalid")),
        other => panic!("{other:?}"),
    }
    let p = json!({"status": {"ready": true}});
    let st = widgets
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], true);
    assert_eq!(st.metadata.generation, Some(1));
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        !resource_names(&client)
            .await
            .contains(&"example.com/widgets".to_string())
    );
    match widgets.get("w1").await.unwrap_err() {
        KubeError::Api(s) => assert_eq!(s.code, 404),
        other => panic!("{other:?}"),
    }
    // Recreating the CRD does not bring the objects back.
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test"),
        &Patch::Apply(common::widget_crd("Namespaced")),
    )
    .await
    .unwrap();
    assert!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn namespace_deletion_cascades() {
    let (_sim, client) = common::start().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    for n in ["a", "b"] {
        let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
        cms.create(&PostParams::default(), &c).await.unwrap();
    }
    let deleted = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = deleted
        .left()
        .expect("namespace deletion answers with the namespace");
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(nss.get_opt("doomed").await.unwrap(), None);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let left = all
        .list(&ListParams::default().fields("metadata.namespace=doomed"))
        .await
        .unwrap();
    assert!(left.items.is_empty());
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap();
    match cms.create(&PostParams::default(), &c).await.unwrap_err() {
        KubeError::Api(s) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn finalizers_and_owner_references() {
    let (_sim, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]}}))
    .unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();

    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        cms.get_opt("dep").await.unwrap(),
        None,
        "dependents are collected"
    );

    let pending = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = pending
        .left()
        .expect("a finalized object is returned, not deleted");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get_opt("held").await.unwrap().is_some());
    let p = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        cms.get_opt("held").await.unwrap(),
        None,
        "gone once the last finalizer is removed"
    );
}

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
    match cms.list(&ListParams::default()).await.unwrap_err() {
        KubeError::Api(s) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
        other => panic!("{other:?}"),
    }
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
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("t"),
        &Patch::Apply(common::widget_crd("Cluster")),
    )
    .await
    .unwrap();
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
    assert!(
        resource_names(&client2)
            .await
            .contains(&"example.com/widgets".to_string())
    );
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

fn apply_deploy(containers: Value, replicas: Option<i64>) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shared", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "s"}},
                 "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": containers}}}});
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

#[tokio::test]
async fn apply_merges_list_maps_between_managers() {
    let (_sim, client) = common::start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let a = PatchParams::apply("team-a");
    let b = PatchParams::apply("team-b");
    deps.patch(
        "shared",
        &a,
        &Patch::Apply(apply_deploy(
            json!([{"name": "a", "image": "a:1"}]),
            Some(2),
        )),
    )
    .await
    .unwrap();
    let both = deps
        .patch(
            "shared",
            &b,
            &Patch::Apply(apply_deploy(json!([{"name": "b", "image": "b:1"}]), None)),
        )
        .await
        .unwrap();
    let names = |d: &Deployment| -> Vec<String> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names(&both), ["a", "b"], "containers merge by name");
    assert_eq!(both.spec.as_ref().unwrap().replicas, Some(2));
    let err = deps
        .patch(
            "shared",
            &b,
            &Patch::Apply(apply_deploy(
                json!([{"name": "b", "image": "b:1"}]),
                Some(5),
            )),
        )
        .await
        .unwrap_err();
    match err {
        KubeError::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"team-a\": .spec.replicas"
            );
        }
        other => panic!("{other:?}"),
    }
    // Team A drops its container: only B's remains.
    let after = deps
        .patch(
            "shared",
            &a,
            &Patch::Apply(apply_deploy(json!([]), Some(2))),
        )
        .await
        .unwrap();
    assert_eq!(names(&after), ["b"]);
}

#[tokio::test]
async fn streaming_list_watcher() {
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let (_sim, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let cfg = watcher::Config::default().streaming_lists();
    let mut stream = Box::pin(watcher(cms.clone(), cfg).applied_objects());
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("kube-root-ca.crt"));
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "streamed"}})).unwrap();
    cms.create(&PostParams::default(), &c).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.metadata.name.as_deref(), Some("streamed"));
}
