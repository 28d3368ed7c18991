//! Conformance through the `kube` client: CRUD, generated names, lists,
//! selectors and pagination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use common::{api_err, cm, make_ns, rv, status};

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
    let s = status(e);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"nowhere\" not found");
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
