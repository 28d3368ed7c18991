//! End-to-end: an app's `dashboards/` and `alerts/` delivered by the real
//! `plumb` binary into two kubesim clusters — one with the Grafana sidecar
//! profile, one with grafana-operator — and a broken dashboard or rule
//! blocking the whole app's revision, with file and line, in `plumb sync
//! --once` and offline in `plumb validate`.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Sim, TestRepo, text};
use serde_json::Value;

const CONFIG: &str = "\
clusters:
  a:
    dashboards: { folder_annotation: grafana_folder }
    alerts: { labels: { release: kps } }
  b:
    dashboards: { mode: operator, instance_selector: { dashboards: grafana }, namespace: monitoring }
    alerts: { labels: { release: kps } }
apps:
  platform:
    path: apps/platform
    cluster_scoped: true
  shop:
    path: apps/shop
    namespace: shop
    namespaces: [shop, monitoring]
    depends_on: [platform]
    dashboards: { folder: Shop }
";

/// Minimal CRDs for the two kinds plumb generates (schemas left open).
fn crd(group: &str, version: &str, kind: &str, plural: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{ kind: {kind}, plural: {plural}, singular: {}, listKind: {kind}List }}\n  versions:\n    - name: {version}\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema: {{ type: object, x-kubernetes-preserve-unknown-fields: true }}\n",
        kind.to_lowercase()
    )
}

fn platform() -> String {
    [
        crd(
            "monitoring.coreos.com",
            "v1",
            "PrometheusRule",
            "prometheusrules",
        ),
        crd(
            "grafana.integreatly.org",
            "v1beta1",
            "GrafanaDashboard",
            "grafanadashboards",
        ),
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n".into(),
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: monitoring }\n".into(),
    ]
    .join("---\n")
}

fn dashboard(title: &str) -> String {
    format!(
        "{{\n  \"uid\": \"shop-overview\",\n  \"title\": \"{title}\",\n  \"panels\": [\n    {{ \"type\": \"stat\", \"datasource\": {{ \"uid\": \"${{datasource}}\" }} }}\n  ],\n  \"schemaVersion\": 39\n}}\n"
    )
}

const RULES: &str = "\
groups:
  - name: shop
    rules:
      - alert: ShopDown
        expr: up{job=\"shop\"} == 0
        for: 5m
        labels: { severity: critical }
        annotations:
          summary: '{{ $labels.instance }} is down'
";

const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { value: v1 }\n";

/// App `shop` with settings, a dashboard and alert rules, on clusters a
/// (Grafana sidecar) and b (grafana-operator).
async fn env() -> Env {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG)
        .write("apps/platform/platform.yaml", &platform())
        .write("apps/shop/settings.yaml", SETTINGS)
        .write(
            "apps/shop/dashboards/overview.json",
            &dashboard("Shop overview"),
        )
        .write("apps/shop/alerts/shop.yaml", RULES);
    repo.commit("shop with a dashboard and alerts");
    Env::new(repo, &["a", "b"]).await
}

/// `plumb validate`'s exit code and output.
async fn validate(env: &Env) -> (Option<i32>, String) {
    let out = env.validate().await;
    (out.status.code(), text(&out))
}

/// `plumb validate` and `plumb sync --once` both refuse the revision,
/// naming the place `where_`.
async fn refused_at(env: &Env, where_: &str) {
    let (code, out) = validate(env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(where_), "{out}");
    let (code, out) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(where_), "{out}");
}

const RULE_A: &str = "/apis/monitoring.coreos.com/v1/namespaces/shop/prometheusrules/shop-shop";
const DASH_B: &str = "/apis/grafana.integreatly.org/v1beta1/namespaces/monitoring/grafanadashboards/shop-shop-overview";

async fn dashboard_title(env: &Env) -> (Option<String>, Option<String>) {
    let title = |json: &str| {
        serde_json::from_str::<Value>(json).unwrap()["title"]
            .as_str()
            .map(str::to_string)
    };
    let cm = env
        .a()
        .configmap("shop", "shop-dashboard-shop-overview")
        .await;
    let a = cm.and_then(|c| {
        c["data"]["shop_shop-overview.json"]
            .as_str()
            .and_then(title)
    });
    let gd = env.sim("b").get(DASH_B).await;
    let b = gd.and_then(|d| d["spec"]["json"].as_str().and_then(title));
    (a, b)
}

async fn settings(sim: &Sim) -> Option<String> {
    let cm = sim.configmap("shop", "settings").await?;
    cm["data"]["value"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_are_delivered_and_a_broken_one_blocks_the_app() {
    let env = env().await;
    let (code, out) = validate(&env).await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(0), "{out}");

    // Cluster a: the sidecar's ConfigMap and a PrometheusRule.
    let cm = env
        .a()
        .configmap("shop", "shop-dashboard-shop-overview")
        .await
        .expect("dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["labels"]["plumb.dev/app"], "shop");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Shop");
    let rule = env.a().get(RULE_A).await.expect("PrometheusRule on a");
    assert_eq!(rule["metadata"]["labels"]["release"], "kps");
    assert_eq!(rule["spec"]["groups"][0]["rules"][0]["alert"], "ShopDown");
    // Cluster b: a GrafanaDashboard in the profile's namespace.
    let gd = env
        .sim("b")
        .get(DASH_B)
        .await
        .expect("GrafanaDashboard on b");
    assert_eq!(
        gd["spec"]["instanceSelector"]["matchLabels"]["dashboards"],
        "grafana"
    );
    assert_eq!(gd["spec"]["folder"], "Shop");
    assert!(
        env.sim("b").get(RULE_A).await.is_some(),
        "PrometheusRule on b"
    );
    assert_eq!(
        dashboard_title(&env).await,
        (Some("Shop overview".into()), Some("Shop overview".into()))
    );

    // A broken expression: nothing of the revision is applied anywhere.
    env.repo
        .write(
            "apps/shop/settings.yaml",
            &SETTINGS.replace("value: v1", "value: v2"),
        )
        .write("apps/shop/dashboards/overview.json", &dashboard("Shop v2"))
        .write("apps/shop/alerts/shop.yaml", &RULES.replace("== 0", "== "));
    env.repo.commit("broken rule");
    let where_ = "apps/shop/alerts/shop.yaml:5:9: group \"shop\", rule 1 \"ShopDown\": could not parse expression";
    refused_at(&env, where_).await;
    for sim in [env.a(), env.sim("b")] {
        assert_eq!(
            settings(sim).await.as_deref(),
            Some("v1"),
            "cluster {}",
            sim.name
        );
    }
    assert_eq!(
        dashboard_title(&env).await,
        (Some("Shop overview".into()), Some("Shop overview".into()))
    );

    // A broken dashboard (an export "for sharing externally") does the same.
    env.repo.write("apps/shop/alerts/shop.yaml", RULES).write(
        "apps/shop/dashboards/overview.json",
        &dashboard("Shop v2").replace("${datasource}", "${DS_PROMETHEUS}"),
    );
    env.repo.commit("import placeholder");
    let where_ = "apps/shop/dashboards/overview.json:5:39: $.panels[0].datasource.uid: \"${DS_PROMETHEUS}\" is an import placeholder";
    refused_at(&env, where_).await;
    assert_eq!(settings(env.a()).await.as_deref(), Some("v1"));

    // Fixed: the whole revision goes out; a removed dashboard is pruned.
    env.repo
        .write("apps/shop/dashboards/overview.json", &dashboard("Shop v2"));
    env.repo.commit("fixed");
    let (code, out) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(settings(env.sim("b")).await.as_deref(), Some("v2"));
    assert_eq!(
        dashboard_title(&env).await,
        (Some("Shop v2".into()), Some("Shop v2".into()))
    );
    env.repo.remove("apps/shop/dashboards/overview.json");
    env.repo.commit("drop the dashboard");
    let (code, out) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(dashboard_title(&env).await, (None, None));
    assert!(env.a().get(RULE_A).await.is_some(), "the rules stay");
}
