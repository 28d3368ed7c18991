//! The live cache against an in-process kubesim: what it holds, when it
//! counts as ready, whom it wakes; and the version rule of [`upsert`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::model::APP_LABEL;

const WAIT: Duration = Duration::from_secs(10);

async fn cluster() -> (kubesim::Kubesim, Arc<Cluster>) {
    let sim = kubesim::Kubesim::start(kubesim::Options::default())
        .await
        .unwrap();
    let client = sim.client().await.unwrap();
    (sim, Arc::new(Cluster::new("sim", client)))
}

fn configmap(name: &str, app: Option<&str>, data: &str) -> Value {
    let mut labels = serde_json::Map::new();
    if let Some(app) = app {
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
        labels.insert(APP_LABEL.into(), app.into());
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": "default", "labels": labels },
        "data": { "k": data },
    })
}

fn id(name: &str) -> ObjectRef {
    ObjectRef {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some("default".into()),
        name: name.into(),
    }
}

fn key() -> Vec<(String, String)> {
    vec![(String::new(), "ConfigMap".into())]
}

/// Server-side applies `obj` (as plumb does, but without telling the
/// cache: to the cache it is someone else's write); the server's answer.
async fn write(cluster: &Cluster, kind: &Kind, obj: &Value) -> Value {
    let name = obj["metadata"]["name"].as_str().unwrap();
    let answer = cluster
        .apply_raw(kind, Some("default"), name, obj, false)
        .await
        .unwrap();
    serde_json::from_slice(&answer).unwrap()
}

/// A cache of ConfigMaps that has listed once, and its wake-ups.
async fn ready_cache(
    cluster: &Arc<Cluster>,
    kind: &Kind,
) -> (LiveCache, mpsc::UnboundedReceiver<String>) {
    let (wake, woken) = mpsc::unbounded_channel();
    let cache = LiveCache::new(cluster.clone(), wake);
    cache.ensure(kind);
    assert!(cache.wait_ready(&key(), WAIT).await);
    (cache, woken)
}

/// The next app woken.
async fn next_wake(woken: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(WAIT, woken.recv()).await.unwrap()
}

/// Waits until `f` holds, polling the cache.
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_kind_is_ready_after_its_first_list_and_holds_only_plumbs_objects() {
    let (_sim, cluster) = cluster().await;
    let kind = cluster.resolve("v1", "ConfigMap").await.unwrap();
    for (name, app) in [("mine", Some("web")), ("theirs", None)] {
        write(&cluster, &kind, &configmap(name, app, "1")).await;
    }
    let (wake, _woken) = mpsc::unbounded_channel();
    let cache = LiveCache::new(cluster.clone(), wake);
    assert!(!cache.is_ready("", "ConfigMap"), "nothing listed yet");

    cache.ensure(&kind);
    assert!(cache.wait_ready(&key(), WAIT).await);
    assert!(cache.is_ready("", "ConfigMap"));
    let mine = cache.live(&id("mine")).expect("plumb's object is cached");
    assert_eq!(mine.app.as_deref(), Some("web"));
    assert!(
        cache.live(&id("theirs")).is_none(),
        "unlabelled objects stay out"
    );
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn an_edit_by_someone_else_wakes_the_app_and_a_delete_empties_the_cache() {
    let (_sim, cluster) = cluster().await;
    let kind = cluster.resolve("v1", "ConfigMap").await.unwrap();
    let (cache, mut woken) = ready_cache(&cluster, &kind).await;

    write(&cluster, &kind, &configmap("cm", Some("web"), "1")).await;
    assert_eq!(next_wake(&mut woken).await.as_deref(), Some("web"));
    until("the object is cached", || cache.live(&id("cm")).is_some()).await;
    let first = cache.live(&id("cm")).unwrap();

    write(&cluster, &kind, &configmap("cm", Some("web"), "2")).await;
    assert_eq!(next_wake(&mut woken).await.as_deref(), Some("web"));
    until("the new version is cached", || {
        cache
            .live(&id("cm"))
            .is_some_and(|l| l.resource_version != first.resource_version)
    })
    .await;
    assert_ne!(
        cache.live(&id("cm")).unwrap().fingerprint,
        first.fingerprint
    );

    cluster.delete(&kind, Some("default"), "cm").await.unwrap();
    until("the delete is seen", || cache.live(&id("cm")).is_none()).await;
    assert!(cache.is_empty());
}

#[tokio::test]
async fn plumbs_own_write_is_known_by_version_and_forgotten_on_remove() {
    let (_sim, cluster) = cluster().await;
    let kind = cluster.resolve("v1", "ConfigMap").await.unwrap();
    let (cache, _woken) = ready_cache(&cluster, &kind).await;

    let answer = write(&cluster, &kind, &configmap("cm", Some("web"), "1")).await;
    let (oid, live) = LiveObject::from_value(&answer).unwrap();
    let rv = live.resource_version.clone();
    let fingerprint = live.fingerprint.clone();
    cache.put(oid.clone(), live);
    assert_eq!(cache.fingerprint_at(&oid, &rv), Some(fingerprint));
    assert_eq!(cache.fingerprint_at(&oid, "0"), None, "another version");

    cache.remove(&oid);
    assert!(cache.live(&oid).is_none());
}

#[test]
fn an_older_version_never_replaces_a_newer_one() {
    let obj = |rv: &str| LiveObject {
        resource_version: rv.into(),
        app: None,
        prune_disabled: false,
        hands_off: false,
        fingerprint: format!("f{rv}"),
        other_managers: Vec::new(),
        health: crate::health::Health::default(),
    };
    let mut map = HashMap::new();
    upsert(&mut map, id("a"), obj("7"));
    upsert(&mut map, id("a"), obj("5"));
    assert_eq!(map[&id("a")].resource_version, "7");
    upsert(&mut map, id("a"), obj("9"));
    assert_eq!(map[&id("a")].resource_version, "9");
    // Versions that are not numbers: the newest event wins.
    upsert(&mut map, id("a"), obj("x"));
    assert_eq!(map[&id("a")].resource_version, "x");
}
