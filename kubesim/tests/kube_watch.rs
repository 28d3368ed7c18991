//! Conformance through the `kube` client: watches (replay, expiry,
//! bookmarks, label filters) and kube-runtime's watcher over them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use common::{cm, make_ns, rv};

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
