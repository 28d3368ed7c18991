//! Conformance through the `kube` client: object lifecycles beyond one
//! write: CRDs and discovery, namespace deletion, finalizers and
//! ownerReference garbage collection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery::Discovery;
use serde_json::json;

use common::status;

/// A CRD's kind comes and goes with it in discovery; its objects go with
/// it and do not come back with a new CRD of the same name.
#[tokio::test]
async fn crd_lifecycle_and_discovery() {
    let (_sim, client) = common::start().await;
    let legacy = Discovery::new(client.clone()).run().await.unwrap();
    assert!(legacy.has_group("apps") && legacy.has_group("apiextensions.k8s.io"));
    assert!(!common::serves_widgets(&client).await);

    let widgets = establish_widgets(&client).await;
    widget_writes_follow_the_schema(&widgets).await;

    common::crd_api(&client)
        .delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(!common::serves_widgets(&client).await);
    let s = status(widgets.get("w1").await.unwrap_err());
    assert_eq!(s.code, 404);
    // Recreating the CRD does not bring the objects back.
    common::apply_widget_crd(&client, "Namespaced").await;
    assert!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Applies the Widget CRD: it is accepted and established at once, and
/// both discoveries serve its kind. Returns the Widgets of `default`.
async fn establish_widgets(client: &Client) -> Api<DynamicObject> {
    let crd = common::apply_widget_crd(client, "Namespaced").await;
    let conds = crd.data["status"]["conditions"].as_array().unwrap();
    let types: Vec<&str> = conds
        .iter()
        .filter(|c| c["status"] == "True")
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["NamesAccepted", "Established"]);
    assert_eq!(crd.data["status"]["acceptedNames"]["kind"], "Widget");

    assert!(common::serves_widgets(client).await);
    let legacy = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = legacy
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    Api::namespaced_with(client.clone(), "default", &ar)
}

/// Writes to a custom resource: unknown fields refused by apply, schema
/// defaults and validation applied, the status subresource kept apart.
/// Leaves one Widget, `w1`.
async fn widget_writes_follow_the_schema(widgets: &Api<DynamicObject>) {
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
                   "spec": {"color": "red", "junk": true}});
    let made = widgets
        .patch("w1", &PatchParams::apply("test"), &Patch::Apply(&w))
        .await;
    let s = status(made.unwrap_err());
    assert_eq!(
        s.code, 400,
        "unknown fields are rejected by apply: {}",
        s.message
    );
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"color": "red"}});
    let made = widgets
        .patch("w1", &PatchParams::apply("test"), &Patch::Apply(&w))
        .await
        .unwrap();
    assert_eq!(made.data["spec"]["size"], 1, "schema default applied");
    assert_eq!(made.metadata.generation, Some(1));
    let p = json!({"spec": {"size": -1}});
    let s = status(
        widgets
            .patch("w1", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
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
    let s = status(cms.create(&PostParams::default(), &c).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
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
