//! Conformance through the `kube` client: what writes do besides storing:
//! server defaults, generation, validation, size limits, dry-run, the
//! `status` subresource, field validation and body decoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Error as KubeError};
use serde_json::json;

use common::{api_err, cm, make_ns, status};

#[tokio::test]
async fn deployment_defaults_generation_and_validation() {
    let (_sim, client) = common::start().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    let made = api.create(&PostParams::default(), &d).await.unwrap();
    let spec = made.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let ru = spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(serde_json::to_value(&ru.max_surge).unwrap(), json!("25%"));
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(made.metadata.generation, Some(1));

    let p = json!({"metadata": {"labels": {"touched": "yes"}}});
    let relabeled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        relabeled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let p = json!({"spec": {"replicas": 3}});
    let scaled = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    let p = json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}});
    let s = status(
        api.patch("web", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = s
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(fields.contains(&"spec.selector".to_string()), "{fields:?}");

    let bad: Deployment = serde_json::from_value(json!({"metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"containers": []}}}}))
    .unwrap();
    let s = status(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .starts_with("Deployment.apps \"bad\" is invalid: ["),
        "{}",
        s.message
    );
    let details = s.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.kind.as_str(),
            details.group.as_str()
        ),
        ("bad", "Deployment", "apps")
    );
    let fields: Vec<String> = details.causes.into_iter().map(|c| c.field).collect();
    assert!(
        fields.contains(&"spec.selector".into())
            && fields.contains(&"spec.template.spec.containers".into())
    );
}

#[tokio::test]
async fn service_secret_namespace_defaults_and_limits() {
    let (_sim, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let s: Service = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    .unwrap();
    let s = svcs.create(&PostParams::default(), &s).await.unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert!(spec.cluster_ip.unwrap().starts_with("10."));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        serde_json::to_value(port.target_port.as_ref().unwrap()).unwrap(),
        json!(80)
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let sec: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}}))
            .unwrap();
    let sec = secrets.create(&PostParams::default(), &sec).await.unwrap();
    assert_eq!(sec.type_.as_deref(), Some("Opaque"));
    assert!(sec.string_data.is_none());
    assert_eq!(sec.data.unwrap()["pw"].0, b"hunter2");

    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = nss.get("default").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        ns.spec.unwrap().finalizers.unwrap(),
        vec!["kubernetes".to_string()]
    );
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "default"
    );
    let bad: Namespace = serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    let (code, reason) = api_err(nss.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (422, "Invalid"));

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let big: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "big"},
        "data": {"blob": "x".repeat(1024 * 1024 + 10)}}))
    .unwrap();
    let (code, reason) = api_err(cms.create(&PostParams::default(), &big).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before = sim.resource_version();
    sim.reset_counters();
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answer = api.create(&pp, &cm("ghost", &[])).await.unwrap();
    assert!(
        answer.metadata.uid.is_some(),
        "dry-run answers with the would-be object"
    );
    assert_eq!(sim.resource_version(), before);
    assert_eq!(api_err(api.get("ghost").await.unwrap_err()).0, 404);

    api.create(&PostParams::default(), &cm("real", &[]))
        .await
        .unwrap();
    let after_create = sim.resource_version();
    let p = json!({"data": {"k": "dry"}});
    let answer = api
        .patch("real", &PatchParams::default().dry_run(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(answer.data.unwrap()["k"], "dry");
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "real"}, "data": {"k": "ssa"}});
    api.patch(
        "real",
        &PatchParams::apply("dry").dry_run().force(),
        &Patch::Apply(&apply),
    )
    .await
    .unwrap();
    api.delete("real", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert_eq!(sim.resource_version(), after_create);
    assert_eq!(api.get("real").await.unwrap().data.unwrap()["k"], "real");
    let c = sim.counters();
    assert_eq!(c.dry_run_writes(), 4);
    assert_eq!(c.writes(), 1);
}

#[tokio::test]
async fn status_subresource() {
    let (_sim, client) = common::start().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "st"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
        "status": {"replicas": 99}
    }))
    .unwrap();
    let made = api.create(&PostParams::default(), &d).await.unwrap();
    assert!(made.status.is_none(), "status is dropped on create");
    let p = json!({"status": {"replicas": 5}});
    let s = api
        .patch_status("st", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(s.status.unwrap().replicas, Some(5));
    assert_eq!(s.metadata.generation, Some(1));
    let p = json!({"status": {"replicas": 7}, "spec": {"replicas": 4}});
    let m = api
        .patch("st", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        m.status.unwrap().replicas,
        Some(5),
        "main resource ignores status"
    );
    assert_eq!(m.spec.unwrap().replicas, Some(4));
    let got = api.get_status("st").await.unwrap();
    assert_eq!(got.status.unwrap().replicas, Some(5));
}

#[tokio::test]
async fn strict_field_validation() {
    let (_sim, client) = common::start().await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "v", "bogus": 1}, "data": {"a": "b"}, "extra": true});
    let req = http::Request::post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let err = client.request::<ConfigMap>(req).await.unwrap_err();
    let s = status(err);
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains(
            "strict decoding error: unknown field \"metadata.bogus\", unknown field \"extra\""
        ),
        "{}",
        s.message
    );

    // Default (Warn): stored, unknown fields pruned.
    let req = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client.request::<ConfigMap>(req).await.unwrap();
    let raw = client
        .request::<serde_json::Value>(
            http::Request::get("/api/v1/namespaces/default/configmaps/v")
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(raw.get("extra").is_none() && raw["metadata"].get("bogus").is_none());
    // Duplicate keys are an error under Strict.
    let dup =
        br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "name": "d"}}"#;
    let req = http::Request::post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict")
        .header("content-type", "application/json")
        .body(dup.to_vec())
        .unwrap();
    let s = status(client.request::<ConfigMap>(req).await.unwrap_err());
    assert!(
        s.message.contains("duplicate field \"metadata.name\""),
        "{}",
        s.message
    );
}

/// Sends `body` and returns the status code and the Status body.
async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    ctype: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ctype)
        .body(body.as_bytes().to_vec())
        .unwrap();
    match client.request::<serde_json::Value>(req).await {
        Ok(v) => (200, v),
        Err(KubeError::Api(s)) => (s.code, serde_json::to_value(&s).unwrap()),
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_secret_with_invalid_base64_is_refused_like_the_real_server() {
    let (_sim, client) = common::start().await;
    make_ns(&client, "ref").await;
    let body = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bad-b64","namespace":"ref"},"data":{"password":"not base64!"}}"#;
    let (code, status) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/ref/secrets",
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
    let apply = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bad-b64\n  namespace: ref\ndata:\n  password: not base64!\n";
    let (code, status) = raw(
        &client,
        "PATCH",
        "/api/v1/namespaces/ref/secrets/bad-b64?fieldManager=plumb",
        "application/apply-patch+yaml",
        apply,
    )
    .await;
    assert_eq!(code, 500);
    assert_eq!(
        status["message"],
        "failed to convert new object (ref/bad-b64; /v1, Kind=Secret) to proper version: unable to convert unstructured object to /v1, Kind=Secret: error decoding from json: illegal base64 data at input byte 3"
    );
    assert!(
        status["reason"].is_null(),
        "the real server sends no reason"
    );
    let path = "/api/v1/namespaces/ref/secrets/bad-b64?fieldManager=plumb";
    // Valid base64 (with line breaks, as Go allows) is stored.
    let good = apply.replace("not base64!", "\"aGVs\\nbG8=\"");
    let (code, obj) = raw(
        &client,
        "PATCH",
        path,
        "application/apply-patch+yaml",
        &good,
    )
    .await;
    assert_eq!(code, 200, "{obj}");
}
