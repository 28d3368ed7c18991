//! Conformance through the `kube` client: server-side apply (no-op
//! re-apply, conflicts and force, field removal, list-map merges between
//! field managers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use common::{rv, status};

fn apply_cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "default"}, "data": data})
}

/// Applies `data` to the ConfigMap `ssa` with `pp`.
async fn apply(
    api: &Api<ConfigMap>,
    pp: &PatchParams,
    data: Value,
) -> Result<ConfigMap, kube::Error> {
    api.patch("ssa", pp, &Patch::Apply(apply_cm(data))).await
}

#[tokio::test]
async fn server_side_apply_lifecycle() {
    let (sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("plumb");
    let made = apply(&api, &pp, json!({"a": "1", "b": "2"})).await.unwrap();
    let mf = made.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("plumb"), Some("Apply"))
    );

    // Re-applying the same configuration is a no-op: same resourceVersion.
    let before = sim.resource_version();
    let again = apply(&api, &pp, json!({"a": "1", "b": "2"})).await.unwrap();
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
    let err = apply(&api, &pp, json!({"a": "1", "b": "2"}))
        .await
        .unwrap_err();
    let s = status(err);
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

    assert_eq!(api.get("ssa").await.unwrap().data.unwrap()["a"], "theirs");

    // Force takes the field over.
    let forced = apply(&api, &pp.clone().force(), json!({"a": "1", "b": "2"}))
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
    let smaller = apply(&api, &pp, json!({"a": "1"})).await.unwrap();
    let keys: Vec<String> = smaller.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["a"]);
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    apply(&api, &PatchParams::apply("plumb"), json!({"a": "1"}))
        .await
        .unwrap();
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/ssa")
        .header("content-type", "application/apply-patch+yaml")
        .body(serde_json::to_vec(&apply_cm(json!({}))).unwrap())
        .unwrap();
    let s = status(client.request::<ConfigMap>(req).await.unwrap_err());
    assert_eq!(s.code, 422);
}

#[tokio::test]
async fn apply_rejects_unknown_fields() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "dta": {"a": "b"}});
    let s = status(
        api.patch("u", &PatchParams::apply("m"), &Patch::Apply(cfg))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains(".dta: field not declared in schema"),
        "{}",
        s.message
    );
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

/// Applies the Deployment `shared` with `containers` (and `replicas`).
async fn apply_shared(
    deps: &Api<Deployment>,
    pp: &PatchParams,
    containers: Value,
    replicas: Option<i64>,
) -> Result<Deployment, kube::Error> {
    let cfg = apply_deploy(containers, replicas);
    deps.patch("shared", pp, &Patch::Apply(cfg)).await
}

#[tokio::test]
async fn apply_merges_list_maps_between_managers() {
    let (_sim, client) = common::start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let a = PatchParams::apply("team-a");
    let b = PatchParams::apply("team-b");
    apply_shared(&deps, &a, json!([{"name": "a", "image": "a:1"}]), Some(2))
        .await
        .unwrap();
    let both = apply_shared(&deps, &b, json!([{"name": "b", "image": "b:1"}]), None)
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
    let err = apply_shared(&deps, &b, json!([{"name": "b", "image": "b:1"}]), Some(5))
        .await
        .unwrap_err();
    let s = status(err);
    assert_eq!(s.code, 409);
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"team-a\": .spec.replicas"
    );

    // Team A drops its container: only B's remains.
    let after = apply_shared(&deps, &a, json!([]), Some(2)).await.unwrap();
    assert_eq!(names(&after), ["b"]);
}
