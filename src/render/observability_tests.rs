//! Dashboards and alerts through `render_cluster`: profiles, namespaces,
//! cross-app conflicts, failure of the whole app.

use super::*;
use crate::config::RepoConfig;

const REPO: &str = "\
clusters:
  prod:
    dashboards: { folder_annotation: grafana_folder }
    alerts: { labels: { release: kps } }
  ops:
    dashboards: { mode: operator, instance_selector: { dashboards: grafana }, namespace: monitoring }
    alerts: { enabled: false }
apps:
  checkout:
    path: apps/checkout
    namespace: checkout
    namespaces: [checkout, monitoring]
    dashboards: { folder: Checkout }
  payments:
    path: apps/payments
    namespace: payments
";

fn dashboard(uid: &str, title: &str) -> String {
    format!("{{\n  \"uid\": \"{uid}\",\n  \"title\": \"{title}\",\n  \"panels\": []\n}}\n")
}

const RULES: &str = "\
groups:
  - name: checkout
    rules:
      - alert: CheckoutDown
        expr: up{job=\"checkout\"} == 0
        for: 5m
        annotations: { summary: '{{ $labels.instance }} is down' }
";

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { a: b }\n";

fn file(path: &str, text: &str) -> SourceFile {
    let rel = path.splitn(3, '/').nth(2).unwrap_or(path).to_string();
    SourceFile {
        path: path.into(),
        rel,
        content: text.as_bytes().to_vec(),
    }
}

fn render(repo: &str, cluster: &str, files: &[(&str, &str)]) -> ClusterRender {
    let repo = RepoConfig::parse("plumb.yaml", repo).unwrap();
    let by_app: BTreeMap<String, Vec<SourceFile>> =
        files.iter().fold(BTreeMap::new(), |mut m, (p, t)| {
            let app = p.split('/').nth(1).unwrap_or_default().to_string();
            m.entry(app).or_default().push(file(p, t));
            m
        });
    render_cluster(
        &repo,
        cluster,
        "rev1",
        &RenderLimits::default(),
        |name, _| Ok(by_app.get(name).cloned().unwrap_or_default()),
    )
}

fn errors(r: &ClusterRender, app: &str) -> Vec<String> {
    r.apps[app]
        .as_ref()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn manifests_dashboards_and_rules_render_into_one_desired_set() {
    let r = render(
        REPO,
        "prod",
        &[
            ("apps/checkout/config.yaml", CM),
            (
                "apps/checkout/dashboards/overview.json",
                &dashboard("checkout-overview", "Overview"),
            ),
            ("apps/checkout/alerts/checkout.yaml", RULES),
        ],
    );
    let set = r.apps["checkout"].as_ref().unwrap();
    let ids: Vec<String> = set.objects.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "ConfigMap/checkout/checkout-dashboard-checkout-overview",
            "ConfigMap/checkout/settings",
            "PrometheusRule.monitoring.coreos.com/checkout/checkout-checkout",
        ]
    );
    let cm = &set.objects[0];
    assert_eq!(
        cm.origin.to_string(),
        "apps/checkout/dashboards/overview.json:1:1"
    );
    let labels = &cm.manifest.value()["metadata"]["labels"];
    assert_eq!(labels["grafana_dashboard"], "1");
    assert_eq!(labels["plumb.dev/app"], "checkout");
    assert_eq!(
        cm.manifest.value()["metadata"]["annotations"]["grafana_folder"],
        "Checkout"
    );
    let rule = &set.objects[2];
    assert_eq!(
        rule.manifest.value()["metadata"]["labels"]["release"],
        "kps"
    );
    assert_eq!(
        rule.origin.to_string(),
        "apps/checkout/alerts/checkout.yaml:2:5"
    );
}

#[test]
fn the_operator_profile_and_its_namespace_apply_per_cluster() {
    let files = [
        (
            "apps/checkout/dashboards/overview.json",
            dashboard("checkout-overview", "Overview"),
        ),
        ("apps/checkout/alerts/checkout.yaml", RULES.to_string()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let r = render(REPO, "ops", &files);
    let set = r.apps["checkout"].as_ref().unwrap();
    assert_eq!(set.objects.len(), 1, "alerts are disabled on ops");
    let d = &set.objects[0];
    assert_eq!(
        d.id.to_string(),
        "GrafanaDashboard.grafana.integreatly.org/monitoring/checkout-checkout-overview"
    );
    assert_eq!(d.manifest.value()["spec"]["folder"], "Checkout");
    // payments may not touch `monitoring`: a clear error, nothing rendered.
    let r = render(
        REPO,
        "ops",
        &[("apps/payments/dashboards/p.json", &dashboard("pay", "Pay"))],
    );
    assert_eq!(
        errors(&r, "payments"),
        [
            "apps/payments/dashboards/p.json:1:1: dashboards go to namespace \"monitoring\" (dashboards.namespace), which apps.payments may not touch [payments]: add it to apps.payments.namespaces"
        ]
    );
}

#[test]
fn a_uid_used_by_two_apps_fails_both() {
    let r = render(
        REPO,
        "prod",
        &[
            ("apps/checkout/dashboards/a.json", &dashboard("shared", "A")),
            ("apps/payments/dashboards/b.json", &dashboard("shared", "B")),
        ],
    );
    assert_eq!(
        errors(&r, "checkout"),
        [
            "apps/checkout/dashboards/a.json:2:3: $.uid: dashboard uid \"shared\" is also used by apps/payments/dashboards/b.json:2:3 (app payments) on this cluster"
        ]
    );
    assert_eq!(errors(&r, "payments").len(), 1);
}

#[test]
fn titles_must_be_unique_within_a_folder() {
    let same_folder = REPO.replace("    dashboards: { folder: Checkout }\n", "");
    let files = [
        (
            "apps/checkout/dashboards/a.json",
            dashboard("a", "Overview"),
        ),
        (
            "apps/payments/dashboards/b.json",
            dashboard("b", "Overview"),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    // Folders default to the app name: different folders, no conflict.
    assert!(render(&same_folder, "prod", &files).apps["checkout"].is_ok());
    // Without a folder annotation the sidecar has one folder for all.
    let one_folder = same_folder.replace(
        "dashboards: { folder_annotation: grafana_folder }",
        "dashboards: {}",
    );
    let r = render(&one_folder, "prod", &files);
    assert_eq!(
        errors(&r, "payments"),
        [
            "apps/payments/dashboards/b.json:3:3: $.title: dashboard title \"Overview\" in the sidecar's folder is also used by apps/checkout/dashboards/a.json:3:3 (app checkout) on this cluster"
        ]
    );
}

#[test]
fn a_broken_rule_file_fails_the_whole_app_and_only_that_app() {
    let broken = RULES.replace("== 0", "== ");
    let r = render(
        REPO,
        "prod",
        &[
            ("apps/checkout/config.yaml", CM),
            ("apps/checkout/alerts/checkout.yaml", &broken),
            ("apps/payments/config.yaml", CM),
        ],
    );
    let errs = errors(&r, "checkout");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("apps/checkout/alerts/checkout.yaml:5:9: group \"checkout\", rule 1 \"CheckoutDown\": could not parse expression"), "{errs:?}");
    assert!(r.apps["payments"].is_ok());
}

#[test]
fn disabled_delivery_still_validates() {
    let r = render(
        REPO,
        "ops",
        &[(
            "apps/checkout/alerts/a.yaml",
            "groups: [{name: x, rules: [{alert: A}]}]\n",
        )],
    );
    let errs = errors(&r, "checkout");
    assert!(
        errs[0].ends_with("field 'expr' must be set in rule"),
        "{errs:?}"
    );
}

#[test]
fn an_app_without_a_namespace_is_told_where_to_set_one() {
    let repo = format!("{REPO}  tools:\n    path: apps/tools\n");
    let r = render(&repo, "prod", &[("apps/tools/alerts/a.yaml", RULES)]);
    assert_eq!(
        errors(&r, "tools"),
        [
            "apps/tools/alerts/a.yaml:1:1: no namespace for the objects of alerts/: set apps.tools.namespace or alerts.namespace"
        ]
    );
}

#[test]
fn the_same_input_renders_byte_identical_objects() {
    let files = [
        (
            "apps/checkout/dashboards/overview.json",
            dashboard("checkout-overview", "Overview"),
        ),
        ("apps/checkout/alerts/checkout.yaml", RULES.to_string()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let once = serde_json::to_string(r_ok(&render(REPO, "prod", &files))).unwrap();
    let twice = serde_json::to_string(r_ok(&render(REPO, "prod", &files))).unwrap();
    assert_eq!(once, twice);
}

fn r_ok(r: &ClusterRender) -> &DesiredSet {
    r.apps["checkout"].as_ref().unwrap()
}
