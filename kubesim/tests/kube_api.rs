//! Conformance through the `kube` client: CRUD, lists, selectors,
//! pagination, watches, defaults, validation, dry-run, status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Error as KubeError};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
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

async fn make_ns(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn api_err(e: KubeError) -> (u16, String) {
    match e {
        KubeError::Api(s) => (s.code, s.reason.clone()),
        other => panic!("not an API error: {other:?}"),
    }
}

fn rv(o: &impl kube::Resource) -> String {
    o.meta().resource_version.clone().unwrap()
}

#[tokio::test]
async fn configmap_crud() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, None, "ConfigMaps have no generation");
    let (code, reason) = api_err(
        api.create(&PostParams::default(), &cm("one", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    let mut got = api.get("one").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "one");
    got.data.as_mut().unwrap().insert("k".into(), "two".into());
    let replaced = api
        .replace("one", &PostParams::default(), &got)
        .await
        .unwrap();
    assert!(rv(&replaced).parse::<u64>().unwrap() > rv(&created).parse::<u64>().unwrap());
    // `got` still carries the old resourceVersion: a stale update.
    let (code, reason) = api_err(
        api.replace("one", &PostParams::default(), &got)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let p = json!({"data": {"extra": "x"}});
    let patched = api
        .patch("one", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap().len(), 2);
    let jp = json!([{"op": "remove", "path": "/data/extra"}, {"op": "add", "path": "/data/j", "value": "p"}]);
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/one")
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&jp).unwrap())
        .unwrap();
    let patched: ConfigMap = client.request(req).await.unwrap();
    let keys: Vec<&String> = patched.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["j", "k"]);

    api.delete("one", &DeleteParams::default()).await.unwrap();
    let (code, reason) = api_err(api.get("one").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    let (code, _) = api_err(
        api.delete("one", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn generate_name_and_missing_namespace() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = api.create(&PostParams::default(), &c).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let nowhere: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let e = nowhere
        .create(&PostParams::default(), &cm("x", &[]))
        .await
        .unwrap_err();
    match e {
        KubeError::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(s.message, "namespaces \"nowhere\" not found");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn list_selectors_and_namespaces() {
    let (_sim, client) = common::start().await;
    make_ns(&client, "a").await;
    make_ns(&client, "b").await;
    let a: Api<ConfigMap> = Api::namespaced(client.clone(), "a");
    let b: Api<ConfigMap> = Api::namespaced(client.clone(), "b");
    a.create(
        &PostParams::default(),
        &cm("web", &[("app", "web"), ("tier", "front")]),
    )
    .await
    .unwrap();
    a.create(
        &PostParams::default(),
        &cm("db", &[("app", "db"), ("tier", "back")]),
    )
    .await
    .unwrap();
    a.create(&PostParams::default(), &cm("plain", &[]))
        .await
        .unwrap();
    b.create(&PostParams::default(), &cm("web", &[("app", "web")]))
        .await
        .unwrap();

    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        let mut v: Vec<String> = l
            .items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        v.retain(|n| n != "kube-root-ca.crt");
        v.sort();
        v
    };
    let cases = [
        ("app=web", vec!["web"]),
        ("app==db", vec!["db"]),
        ("app!=web", vec!["db", "plain"]),
        ("app in (web,db)", vec!["db", "web"]),
        ("app notin (web)", vec!["db", "plain"]),
        ("tier", vec!["db", "web"]),
        ("!tier", vec!["plain"]),
        ("app=web,tier=front", vec!["web"]),
    ];
    for (sel, want) in cases {
        let got = names(a.list(&ListParams::default().labels(sel)).await.unwrap());
        assert_eq!(got, want, "selector {sel}");
    }
    let got = names(
        a.list(&ListParams::default().fields("metadata.name=db"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["db"]);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let l = all
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let mut where_: Vec<String> = l
        .items
        .iter()
        .map(|c| c.metadata.namespace.clone().unwrap())
        .collect();
    where_.sort();
    assert_eq!(where_, vec!["a", "b"]);
    let l = all
        .list(&ListParams::default().fields("metadata.namespace=b"))
        .await
        .unwrap();
    assert!(
        l.items
            .iter()
            .all(|c| c.metadata.namespace.as_deref() == Some("b"))
    );
    assert!(l.metadata.resource_version.is_some());
    let (code, _) = api_err(
        a.list(&ListParams::default().fields("spec.nope=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
}

#[tokio::test]
async fn paginated_list() {
    let (_sim, client) = common::start().await;
    make_ns(&client, "pages").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "pages");
    for i in 0..23 {
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:02}"), &[("page", "yes")]),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    let mut list_rv = None;
    loop {
        let mut lp = ListParams::default().labels("page=yes").limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        list_rv.get_or_insert(page.metadata.resource_version.clone());
        assert_eq!(
            page.metadata.resource_version,
            *list_rv.as_ref().unwrap(),
            "pages share the list RV"
        );
        seen.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => {
                assert!(page.metadata.remaining_item_count.unwrap() > 0);
                token = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..23).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn watch_sees_every_change_in_order() {
    let (_sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start = api
        .create(&PostParams::default(), &cm("w0", &[]))
        .await
        .unwrap();
    let from = rv(&start);
    // Changes made before the watch starts are replayed from `from`.
    api.create(&PostParams::default(), &cm("w1", &[]))
        .await
        .unwrap();
    let p = json!({"data": {"k": "changed"}});
    api.patch("w1", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(5), &from)
        .await
        .unwrap();
    let mut stream = Box::pin(stream);
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("w2", &[]))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut last_rv = from.parse::<u64>().unwrap();
    while got.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (ty, obj) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            other => panic!("unexpected {other:?}"),
        };
        let r: u64 = rv(&obj).parse().unwrap();
        assert!(r > last_rv, "resourceVersions grow");
        last_rv = r;
        got.push(format!("{ty} {}", obj.metadata.name.unwrap()));
    }
    assert_eq!(got, ["ADDED w1", "MODIFIED w1", "DELETED w1", "ADDED w2"]);
}

#[tokio::test]
async fn watch_from_expired_rv_is_gone() {
    let (sim, client) = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &cm("old", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("new", &[]))
        .await
        .unwrap();
    sim.compact();
    let stream = api
        .watch(&WatchParams::default().timeout(5), &rv(&first))
        .await
        .unwrap();
    let mut stream = Box::pin(stream);
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message.starts_with("too old resource version"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(stream.next().await.is_none(), "stream ends after the error");
}

#[tokio::test]
async fn bookmarks_and_label_filtered_watch() {
    let opts = kubesim::Options {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let (_sim, client) = common::start_with(opts).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let base = api
        .create(&PostParams::default(), &cm("x", &[]))
        .await
        .unwrap();
    let wp = WatchParams::default().labels("app=yes").timeout(5);
    let mut stream = Box::pin(api.watch(&wp, &rv(&base)).await.unwrap());
    api.create(&PostParams::default(), &cm("hidden", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("shown", &[("app", "yes")]))
        .await
        .unwrap();
    // Leaving the selection is a DELETED event for this watcher.
    let p = json!({"metadata": {"labels": {"app": "no"}}});
    api.patch("shown", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut bookmarks = 0;
    while events.len() < 2 || bookmarks == 0 {
        match tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => events.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => events.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(b) => {
                assert!(!b.metadata.resource_version.is_empty());
                bookmarks += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(events, ["ADDED shown", "DELETED shown"]);
}

#[tokio::test]
async fn runtime_watcher_follows_changes() {
    let (sim, client) = common::start().await;
    make_ns(&client, "rt").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rt");
    api.create(&PostParams::default(), &cm("pre", &[]))
        .await
        .unwrap();
    let mut stream = Box::pin(watcher(api.clone(), watcher::Config::default()).applied_objects());
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        first.metadata.name.as_deref(),
        Some("pre" | "kube-root-ca.crt")
    ));
    api.create(&PostParams::default(), &cm("post", &[]))
        .await
        .unwrap();
    // A dropped watch is resumed by the watcher without losing the change.
    sim.faults().drop_watches();
    let p = json!({"data": {"k": "after-drop"}});
    api.patch("post", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let o = stream.try_next().await.unwrap().unwrap();
            if o.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("after-drop") {
                return o;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.metadata.name.as_deref(), Some("post"));
}

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
    match api
        .patch("web", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_err()
    {
        KubeError::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            let fields: Vec<String> = s
                .details
                .unwrap()
                .causes
                .into_iter()
                .map(|c| c.field)
                .collect();
            assert!(fields.contains(&"spec.selector".to_string()), "{fields:?}");
        }
        other => panic!("{other:?}"),
    }
    let bad: Deployment = serde_json::from_value(json!({"metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"containers": []}}}}))
    .unwrap();
    match api.create(&PostParams::default(), &bad).await.unwrap_err() {
        KubeError::Api(s) => {
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
        other => panic!("{other:?}"),
    }
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
    match err {
        KubeError::Api(s) => {
            assert_eq!(s.code, 400);
            assert!(s.message.contains("strict decoding error: unknown field \"metadata.bogus\", unknown field \"extra\""), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
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
    match client.request::<ConfigMap>(req).await.unwrap_err() {
        KubeError::Api(s) => assert!(
            s.message.contains("duplicate field \"metadata.name\""),
            "{}",
            s.message
        ),
        other => panic!("{other:?}"),
    }
}

/// Timing, not an assertion: 10,000 ConfigMaps of ~1.5 KB read through
/// the HTTP API the way kube-runtime's watcher does (pages of 500), and as
/// a streaming list (watch with sendInitialEvents). Run with
/// `cargo test -p kubesim --release --test kube_api list_timing_over_http -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing; run explicitly with --release --nocapture"]
async fn list_timing_over_http() {
    let (sim, client) = common::start().await;
    make_ns(&client, "bench").await;
    {
        let cluster = sim.cluster();
        let mut state = cluster.lock();
        let rt = state.registry.lookup("", "v1", "configmaps").unwrap();
        let t = kubesim::cluster::Target {
            rt,
            version: "v1".into(),
            namespace: Some("bench".into()),
            status: false,
        };
        let value = "x".repeat(375);
        for i in 0..10_000 {
            let obj = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i:05}"), "namespace": "bench", "labels": {"app": "bench"}},
                "data": {"a": value, "b": value, "c": value, "d": value},
            });
            kubesim::engine::write::create(&mut state, &t, obj, &[], &Default::default()).unwrap();
        }
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    for round in 0..3 {
        let start = std::time::Instant::now();
        let (mut n, mut pages) = (0, 0);
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().limit(500);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api.list(&lp).await.unwrap();
            pages += 1;
            n += page.items.len();
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => token = Some(c),
                None => break,
            }
        }
        let paged = start.elapsed();
        // 10,000 plus the namespace's kube-root-ca.crt.
        assert!(n > 10_000);
        assert_eq!(pages, 21);
        let start = std::time::Instant::now();
        let cfg = watcher::Config::default().streaming_lists();
        let mut stream = watcher(api.clone(), cfg).boxed();
        let mut n = 0;
        while let Some(ev) = stream.try_next().await.unwrap() {
            match ev {
                watcher::Event::InitApply(_) => n += 1,
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
        let streamed = start.elapsed();
        assert!(n > 10_000);
        println!(
            "round {round}: 10,000 ConfigMaps over HTTP: list in pages of 500 {:.1} ms; \
             streaming list (watch, sendInitialEvents) {:.1} ms",
            paged.as_secs_f64() * 1000.0,
            streamed.as_secs_f64() * 1000.0
        );
    }
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
