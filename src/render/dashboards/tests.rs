use std::io::Read;

use super::*;
use crate::config::repo::DashboardProfile;

const DASH: &str = r#"{
  "title": "Checkout overview",
  "uid": "checkout-overview",
  "id": 42,
  "panels": [
    {
      "type": "timeseries",
      "datasource": { "type": "prometheus", "uid": "${datasource}" },
      "targets": [ { "expr": "sum(rate(http_requests_total[$__rate_interval]))" } ]
    }
  ],
  "templating": { "list": [ { "name": "datasource", "type": "datasource", "query": "prometheus" } ] },
  "schemaVersion": 39
}
"#;

const PATH: &str = "apps/checkout/dashboards/overview.json";

fn check(text: &str) -> Result<Dashboard, Vec<String>> {
    check_dashboard(PATH, text.as_bytes(), &yaml::Limits::default())
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

fn file() -> SourceFile {
    SourceFile {
        path: PATH.into(),
        rel: "dashboards/overview.json".into(),
        content: DASH.as_bytes().to_vec(),
    }
}

fn target() -> Target<'static> {
    Target {
        app: "checkout",
        namespace: "checkout".into(),
    }
}

#[test]
fn a_valid_dashboard_is_compacted_and_its_id_nulled() {
    let d = check(DASH).unwrap();
    assert_eq!(d.uid, "checkout-overview");
    assert_eq!(d.title, "Checkout overview");
    assert!(
        d.json.starts_with(
            r#"{"title":"Checkout overview","uid":"checkout-overview","id":null,"panels":"#
        ),
        "key order kept, compact, id nulled: {}",
        d.json
    );
    assert_eq!(d.uid_origin.to_string(), format!("{PATH}:3:3"));
}

#[test]
fn uid_and_title_problems_name_line_and_json_path() {
    let errs = check(&DASH.replace("\"checkout-overview\"", "\"checkout overview!\"")).unwrap_err();
    assert_eq!(
        errs,
        [format!(
            "{PATH}:3:3: $.uid: invalid uid \"checkout overview!\": 1 to 40 letters, digits, '-' and '_'"
        )]
    );
    let long = DASH.replace("checkout-overview", &"x".repeat(41));
    assert!(check(&long).unwrap_err()[0].contains("$.uid: invalid uid"));
    let errs = check(&DASH.replace("  \"uid\": \"checkout-overview\",\n", "")).unwrap_err();
    assert!(
        errs[0].starts_with(&format!("{PATH}:1:1: $: missing \"uid\"")),
        "{errs:?}"
    );
    let errs = check(&DASH.replace("\"Checkout overview\"", "7")).unwrap_err();
    assert_eq!(
        errs,
        [format!("{PATH}:2:3: $.title: must be a string, found 7")]
    );
}

#[test]
fn import_placeholders_are_errors_but_unused_inputs_pass() {
    let with_inputs = DASH.replacen(
        "{\n",
        "{\n  \"__inputs\": [ { \"name\": \"DS_PROM\", \"type\": \"datasource\" } ],\n",
        1,
    );
    assert!(
        check(&with_inputs).is_ok(),
        "an __inputs list nobody uses is harmless"
    );
    let used = with_inputs.replace("${datasource}", "${DS_PROM}");
    let errs = check(&used).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "{PATH}:9:45: $.panels[0].datasource.uid: \"${{DS_PROM}}\" is an import placeholder"
        )),
        "{errs:?}"
    );
    let undeclared = DASH.replace("${datasource}", "${DS_PROMETHEUS}");
    assert!(check(&undeclared).unwrap_err()[0].contains("\"${DS_PROMETHEUS}\""));
}

#[test]
fn broken_json_and_other_shapes_are_named() {
    let errs = check("{\n  \"uid\": \"a\",\n  \"title\": \"b\" oops\n}").unwrap_err();
    assert_eq!(
        errs,
        [format!(
            "{PATH}:3:16: $: not valid JSON: expected `,` or `}}`"
        )]
    );
    let errs = check("[1, 2]").unwrap_err();
    assert!(
        errs[0].contains("$: a dashboard must be a JSON object"),
        "{errs:?}"
    );
    let v2 = r#"{"apiVersion": "dashboard.grafana.app/v2beta1", "kind": "Dashboard", "spec": {}}"#;
    assert!(
        check(v2).unwrap_err()[0].contains("$.apiVersion: a Kubernetes-style dashboard resource")
    );
    let api = format!(r#"{{"dashboard": {DASH}, "meta": {{}}}}"#);
    assert!(check(&api).unwrap_err()[0].contains("$.dashboard: this is a Grafana API response"));
}

#[test]
fn the_sidecar_gets_a_labelled_configmap_with_a_cluster_unique_key() {
    let profile = Dashboards::resolve(
        Some(&DashboardProfile {
            folder_annotation: Some("grafana_folder".into()),
            ..Default::default()
        }),
        None,
    );
    let d = check(DASH).unwrap();
    let (obj, entry) = dashboard_object(&target(), &profile, &file(), &d).unwrap();
    let v = &obj.value;
    assert_eq!(
        (v["apiVersion"].as_str(), v["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    assert_eq!(
        v["metadata"]["name"],
        "checkout-dashboard-checkout-overview"
    );
    assert_eq!(v["metadata"]["namespace"], "checkout");
    assert_eq!(v["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(v["metadata"]["annotations"]["grafana_folder"], "checkout");
    assert_eq!(
        v["data"]["checkout_checkout-overview.json"],
        d.json.as_str()
    );
    assert_eq!(entry.folder, "checkout");
    assert_eq!(obj.origin().to_string(), format!("{PATH}:1:1"));
}

#[test]
fn the_operator_gets_json_or_gzip_json_above_the_threshold() {
    let mut cluster = DashboardProfile {
        mode: Some(DashboardMode::Operator),
        instance_selector: Some(
            [(
                "dashboards".to_string(),
                crate::config::Scalar("grafana".into()),
            )]
            .into(),
        ),
        folder: Some("Checkout".into()),
        ..Default::default()
    };
    let d = check(DASH).unwrap();
    let profile = Dashboards::resolve(Some(&cluster), None);
    let (obj, _) = dashboard_object(&target(), &profile, &file(), &d).unwrap();
    let spec = &obj.value["spec"];
    assert_eq!(obj.value["apiVersion"], "grafana.integreatly.org/v1beta1");
    assert_eq!(obj.value["kind"], "GrafanaDashboard");
    assert_eq!(obj.value["metadata"]["name"], "checkout-checkout-overview");
    assert_eq!(
        spec["instanceSelector"]["matchLabels"]["dashboards"],
        "grafana"
    );
    assert_eq!(spec["allowCrossNamespaceImport"], true);
    assert_eq!(spec["folder"], "Checkout");
    assert_eq!(spec["json"], d.json.as_str());
    assert!(
        spec.get("uid").is_none(),
        "spec.uid is immutable: left to the model"
    );

    cluster.gzip_above = Some(crate::config::repo::profiles::ByteSize(100));
    let profile = Dashboards::resolve(Some(&cluster), None);
    let (obj, _) = dashboard_object(&target(), &profile, &file(), &d).unwrap();
    let packed = obj.value["spec"]["gzipJson"].as_str().unwrap();
    assert!(obj.value["spec"].get("json").is_none());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(packed)
        .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, d.json);
    let (again, _) = dashboard_object(&target(), &profile, &file(), &d).unwrap();
    assert_eq!(again.value, obj.value, "gzip output is deterministic");
}

#[test]
fn a_dashboard_over_the_budget_is_refused() {
    let big = DASH.replace(
        "\"schemaVersion\": 39",
        &format!(
            "\"description\": \"{}\", \"schemaVersion\": 39",
            "x".repeat(CONFIGMAP_MAX_BYTES)
        ),
    );
    let d = check(&big).unwrap();
    let profile = Dashboards::resolve(None, None);
    let e = dashboard_object(&target(), &profile, &file(), &d).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{PATH}:1:1: $: the dashboard takes")),
        "{e}"
    );
    assert!(e.message.contains("over the limit of 1048576 bytes"), "{e}");
}

#[test]
fn tab_indented_json_is_fine_and_errors_still_have_a_place() {
    let tabbed = DASH.replace("  ", "\t");
    assert!(check(&tabbed).is_ok());
    let errs = check(&tabbed.replace("\"checkout-overview\"", "\"bad uid\"")).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(PATH) && errs[0].contains(": $.uid: invalid uid"),
        "{errs:?}"
    );
}
