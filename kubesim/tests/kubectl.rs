//! Conformance through the real `kubectl` (from `$KUBECTL` or PATH): apply,
//! re-apply, diff, conflicts, watch and delete. The tests fail, not skip,
//! when kubectl is missing. kubesim runs in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use kubesim::Options;
use serde_json::Value;

use common::kubectl::{Kctl, kubectl_path};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
              color: {type: string}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec: {color: red}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo}
data: {key: value, other: x}
"#;

fn rvs(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_reapply_diff_prune_field() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    let out = k.apply_with_crd(&file).await;
    for what in [
        "namespace/demo",
        "widgets.example.com",
        "widget.example.com/w1",
        "deployment.apps/web",
        "configmap/cfg",
    ] {
        assert!(out.contains(what), "{what} missing from:\n{out}");
    }

    // Server defaults are visible to kubectl.
    let d = k.json(&["get", "deployment", "web", "-n", "demo"]).await;
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    let yaml = k
        .ok(&["get", "widget", "w1", "-n", "demo", "-o", "yaml"])
        .await;
    assert!(yaml.contains("size: 3"), "CRD schema default:\n{yaml}");
    let table = k.ok(&["get", "wd", "-n", "demo"]).await;
    assert!(table.contains("COLOR") && table.contains("red"), "{table}");

    // Re-applying unchanged: nothing is written.
    let before = k.json(&["get", "deploy,cm,widgets", "-n", "demo"]).await;
    let rv_before = k.sim.resource_version();
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    let after = k.json(&["get", "deploy,cm,widgets", "-n", "demo"]).await;
    assert_eq!(rvs(&before), rvs(&after));
    assert_eq!(k.sim.resource_version(), rv_before);

    // diff: nothing to show, then a change.
    let same = k.run(&["diff", "--server-side", "-f", &file]).await;
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    let changed = k.write(
        "changed.yaml",
        &MANIFEST.replace("key: value", "key: changed"),
    );
    let diff = k.run(&["diff", "--server-side", "-f", &changed]).await;
    assert_eq!(diff.code, 1, "{}{}", diff.stdout, diff.stderr);
    assert!(
        diff.stdout.contains("-  key: value") && diff.stdout.contains("+  key: changed"),
        "{}",
        diff.stdout
    );
    assert_eq!(k.sim.resource_version(), rv_before, "diff is a dry run");

    // Removing a field from the applied file removes it from the object.
    let smaller = k.write(
        "smaller.yaml",
        &MANIFEST.replace("key: value, other: x", "key: value"),
    );
    k.ok(&["apply", "--server-side", "-f", &smaller]).await;
    let cm = k.json(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_eq!(cm["data"], serde_json::json!({"key": "value"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_and_force_conflicts() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    k.apply_with_crd(&file).await;
    k.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"key":"theirs"}}"#,
        "--field-manager",
        "other",
    ])
    .await;
    let r = k.run(&["apply", "--server-side", "-f", &file]).await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(r#"conflict with "other" using v1: .data.key"#),
        "{}",
        r.stderr
    );
    let cm = k.json(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_eq!(cm["data"]["key"], "theirs");

    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        .await;
    let cm = k
        .json(&["get", "cm", "cfg", "-n", "demo", "--show-managed-fields"])
        .await;
    assert_eq!(cm["data"]["key"], "value");
    let owners: Vec<(String, String)> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        owners.contains(&("kubectl".into(), "Apply".into())),
        "{owners:?}"
    );
    let kubectl_fields = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "kubectl")
        .unwrap()["fieldsV1"]
        .to_string();
    assert!(kubectl_fields.contains("f:key"), "{kubectl_fields}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_delete() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    k.apply_with_crd(&file).await;
    let mut watch = k
        .command(&["get", "cm", "-n", "demo", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    k.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"third":"3"}}"#,
    ])
    .await;
    k.ok(&["delete", "cm", "cfg", "-n", "demo"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" cfg ")).collect();
    assert_eq!(lines.len(), 3, "watch output:\n{text}");
    assert!(
        lines[0].starts_with("ADDED")
            && lines[1].starts_with("MODIFIED")
            && lines[2].starts_with("DELETED"),
        "{text}"
    );
    assert!(
        lines[1].contains(" 3 "),
        "the DATA column follows the change:\n{text}"
    );

    let gone = k.run(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("NotFound") || gone.stderr.contains("not found"),
        "{}",
        gone.stderr
    );

    // Deleting the CRD removes its kind; deleting the namespace its content.
    k.ok(&["delete", "crd", "widgets.example.com"]).await;
    let r = k.run(&["get", "widgets", "-n", "demo"]).await;
    assert_ne!(r.code, 0, "{}", r.stdout);
    k.ok(&[
        "delete",
        "-f",
        &k.write(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
        ),
    ])
    .await;
    let deploys = k.json(&["get", "deployments", "-A"]).await;
    assert!(deploys["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls() {
    let k = Kctl::start_with(Options {
        tls: true,
        ..Default::default()
    })
    .await;
    let out = k.ok(&["get", "ns", "kube-system", "-o", "name"]).await;
    assert_eq!(out.trim(), "namespace/kube-system");
    k.ok(&["create", "ns", "secure"]).await;
}

#[test]
fn kubectl_is_available() {
    let bin = kubectl_path();
    assert!(Path::new(&bin).exists());
}
