//! Shared helpers for the kubesim integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kubectl;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::core::Status;
use kube::discovery::Discovery;
use kube::{Client, Error as KubeError};
use kubesim::{Kubesim, Options};
use serde_json::{Value, json};

pub async fn start() -> (Kubesim, Client) {
    start_with(Options::default()).await
}

pub async fn start_with(opts: Options) -> (Kubesim, Client) {
    let sim = Kubesim::start(opts).await.expect("kubesim starts");
    let client = sim.client().await.expect("client");
    (sim, client)
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A ConfigMap `name` with `labels` and data `k: <name>`.
pub fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"k": name},
    }))
    .unwrap()
}

pub async fn make_ns(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

/// The Status of an API error (any other error fails the test).
pub fn status(e: KubeError) -> Box<Status> {
    match e {
        KubeError::Api(s) => s,
        other => panic!("not an API error: {other:?}"),
    }
}

/// The code and reason of an API error.
pub fn api_err(e: KubeError) -> (u16, String) {
    let s = status(e);
    (s.code, s.reason)
}

pub fn rv(o: &impl kube::Resource) -> String {
    o.meta().resource_version.clone().unwrap()
}

/// `group/plural` of every resource aggregated discovery lists.
pub async fn resource_names(client: &Client) -> Vec<String> {
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

/// Whether aggregated discovery lists the Widget CRD's resource.
pub async fn serves_widgets(client: &Client) -> bool {
    resource_names(client)
        .await
        .contains(&"example.com/widgets".to_string())
}

/// The CustomResourceDefinitions, as dynamic objects.
pub fn crd_api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    )
}

/// Applies [`widget_crd`] with `scope` and returns the stored CRD.
pub async fn apply_widget_crd(client: &Client, scope: &str) -> DynamicObject {
    crd_api(client)
        .patch(
            "widgets.example.com",
            &PatchParams::apply("test"),
            &Patch::Apply(widget_crd(scope)),
        )
        .await
        .unwrap()
}

pub fn widget_crd(scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "default": 1, "minimum": 0},
                        "color": {"type": "string"},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {
                                      "name": {"type": "string"}, "port": {"type": "integer"}}}}
                    }},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                }}}
            }]
        }
    })
}
