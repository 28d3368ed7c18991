//! Conformance through the real `kubectl`: imperative commands
//! (`create <generator>`, `scale`, `label`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::kubectl::Kctl;

/// One `kubectl create` of each generator the test checks, in order.
#[rustfmt::skip]
const CREATES: &[&[&str]] = &[
    &["create", "namespace", "imp"],
    &["create", "configmap", "c1", "-n", "imp", "--from-literal=a=1", "--from-literal=b=2"],
    &["create", "secret", "generic", "s1", "-n", "imp", "--from-literal=pw=hunter2"],
    &["create", "serviceaccount", "robot", "-n", "imp"],
    &["create", "deployment", "web", "-n", "imp", "--image=nginx:1.27", "--replicas=2", "--port=80"],
    &["create", "service", "clusterip", "web", "-n", "imp", "--tcp=80:8080"],
    &["create", "job", "once", "-n", "imp", "--image=busybox", "--", "echo", "hi"],
    &["create", "role", "reader", "-n", "imp", "--verb=get,list", "--resource=configmaps"],
    &["create", "rolebinding", "reader", "-n", "imp", "--role=reader", "--user=bob"],
];

/// `kubectl create <generator>` sends protobuf bodies; `kubectl scale`
/// uses the scale subresource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_commands() {
    let k = Kctl::start().await;
    for args in CREATES {
        k.ok(args).await;
    }

    let cm = k.json(&["get", "cm", "c1", "-n", "imp"]).await;
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    let s = k.json(&["get", "secret", "s1", "-n", "imp"]).await;
    assert_eq!(
        (s["data"]["pw"].as_str(), s["type"].as_str()),
        (Some("aHVudGVyMg=="), Some("Opaque"))
    );
    let d = k.json(&["get", "deploy", "web", "-n", "imp"]).await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let svc = k.json(&["get", "svc", "web", "-n", "imp"]).await;
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let job = k.json(&["get", "job", "once", "-n", "imp"]).await;
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    let rb = k.json(&["get", "rolebinding", "reader", "-n", "imp"]).await;
    assert_eq!(rb["roleRef"]["name"], "reader");
    assert_eq!(rb["subjects"][0]["name"], "bob");

    k.ok(&["scale", "deployment", "web", "-n", "imp", "--replicas=5"])
        .await;
    let d = k.json(&["get", "deploy", "web", "-n", "imp"]).await;
    assert_eq!(
        (
            d["spec"]["replicas"].as_i64(),
            d["metadata"]["generation"].as_i64()
        ),
        (Some(5), Some(2))
    );
    k.ok(&["label", "cm", "c1", "-n", "imp", "team=blue"]).await;
    let listed = k
        .ok(&["get", "cm", "-n", "imp", "-l", "team=blue", "-o", "name"])
        .await;
    assert_eq!(listed.trim(), "configmap/c1");
}
