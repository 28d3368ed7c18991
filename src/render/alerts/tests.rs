use serde_json::json;

use super::*;

const GOOD: &str = "\
groups:
  - name: api
    interval: 1m
    rules:
      - alert: HighErrorRate
        expr: sum(rate(http_errors_total[5m])) > 1
        for: 10m
        labels:
          severity: 2
        annotations:
          summary: '{{ $labels.job }} fails: {{ $value | humanize }}'
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
";

fn check(text: &str) -> Result<RuleFile, Vec<String>> {
    check_rule_file(
        "apps/web/alerts/api.yaml",
        text,
        RuleOptions::default(),
        &yaml::Limits::default(),
    )
    .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

#[test]
fn a_valid_file_becomes_normalised_groups() {
    let file = check(GOOD).unwrap();
    assert_eq!(file.start, Pos { line: 2, column: 5 });
    assert_eq!(
        file.groups,
        vec![json!({
            "name": "api",
            "interval": "1m",
            "rules": [
                {
                    "alert": "HighErrorRate",
                    "expr": "sum(rate(http_errors_total[5m])) > 1",
                    "for": "10m",
                    "labels": {"severity": "2"},
                    "annotations": {"summary": "{{ $labels.job }} fails: {{ $value | humanize }}"}
                },
                {"record": "job:http_requests:rate5m", "expr": "sum by (job) (rate(http_requests_total[5m]))"}
            ]
        })],
        "label values become strings, as Prometheus reads them"
    );
}

#[test]
fn errors_name_the_line_the_group_and_the_rule() {
    let errs =
        check(&GOOD.replace("sum(rate(http_errors_total[5m])) > 1", "rat(x[5m])")).unwrap_err();
    assert_eq!(
        errs,
        [
            "apps/web/alerts/api.yaml:6:9: group \"api\", rule 1 \"HighErrorRate\": could not parse expression: unknown function with name 'rat'"
        ]
    );
    let errs = check(&GOOD.replace("for: 10m", "for: 1.5m")).unwrap_err();
    assert_eq!(
        errs,
        [
            "apps/web/alerts/api.yaml:7:9: group \"api\", rule 1 \"HighErrorRate\": for: not a valid duration string: \"1.5m\""
        ]
    );
}

#[test]
fn every_problem_of_a_recording_rule_is_reported() {
    let text = GOOD.replace(
        "        expr: sum by (job) (rate(http_requests_total[5m]))\n",
        "        expr: sum by (job) (rate(http_requests_total[5m]))\n        for: 5m\n        annotations: { a: b }\n",
    );
    let errs =
        check(&text.replace("record: job:http_requests:rate5m", "record: 'job{x}'")).unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].contains("12:9: ") && errs[0].ends_with("invalid recording rule name: job{x}"),
        "{errs:#?}"
    );
    assert!(
        errs[1]
            .ends_with("braces present in the recording rule name; should it be in expr?: job{x}")
    );
    assert!(
        errs[2].contains("14:9: ") && errs[2].ends_with("invalid field 'for' in recording rule")
    );
    assert!(
        errs[3].contains("15:9: ")
            && errs[3].ends_with("invalid field 'annotations' in recording rule")
    );
}

#[test]
fn structure_mistakes_are_caught() {
    let dup = format!("{GOOD}  - name: api\n    rules: []\n");
    assert_eq!(
        check(&dup).unwrap_err(),
        [
            "apps/web/alerts/api.yaml:14:5: group name \"api\" is repeated in the same file (first at line 2)"
        ]
    );
    let typo = GOOD.replace("for: 10m", "fro: 10m");
    assert_eq!(
        check(&typo).unwrap_err(),
        [
            "apps/web/alerts/api.yaml:7:9: group \"api\", rule 1 \"HighErrorRate\": unknown field \"fro\" (allowed: record, alert, expr, for, keep_firing_for, labels, annotations)"
        ]
    );
    let both = GOOD.replace(
        "- alert: HighErrorRate",
        "- alert: HighErrorRate\n        record: x",
    );
    assert!(check(&both).unwrap_err()[0].ends_with("only one of 'record' and 'alert' must be set"));
    let neither = GOOD.replace("- alert: HighErrorRate", "- keep_firing_for: 1m");
    let errs = check(&neither).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.ends_with("one of 'record' or 'alert' must be set")),
        "{errs:?}"
    );
    let label = GOOD.replace("severity: 2", "team-name: x");
    assert!(check(&label).unwrap_err()[0].ends_with("invalid label name: team-name"));
}

#[test]
fn templates_of_alerting_rules_are_checked() {
    let bad = GOOD.replace("{{ $value | humanize }}", "{{ $value | humanise }}");
    assert_eq!(
        check(&bad).unwrap_err(),
        [
            "apps/web/alerts/api.yaml:11:11: group \"api\", rule 1 \"HighErrorRate\": annotation \"summary\": template: __alert_HighErrorRate:1: function \"humanise\" not defined"
        ]
    );
}

#[test]
fn experimental_promql_needs_the_profile_switch() {
    let text = GOOD.replace(
        "sum(rate(http_errors_total[5m])) > 1",
        "sort_by_label(up, \"job\")",
    );
    assert!(check(&text).is_err());
    let opts = RuleOptions {
        experimental_functions: true,
    };
    assert!(check_rule_file("a.yaml", &text, opts, &yaml::Limits::default()).is_ok());
}

#[test]
fn empty_files_and_null_fields_are_fine() {
    assert_eq!(check("").unwrap().groups, Vec::<Value>::new());
    assert_eq!(check("groups:\n").unwrap().groups, Vec::<Value>::new());
    let null_rules = check("groups:\n  - name: g\n    rules:\n").unwrap();
    assert_eq!(null_rules.groups, vec![json!({"name": "g", "rules": []})]);
}

#[test]
fn a_prometheus_rule_carries_the_profile_labels() {
    let file = SourceFile {
        path: "apps/web/alerts/api.rules.yaml".into(),
        rel: "alerts/api.rules.yaml".into(),
        content: GOOD.as_bytes().to_vec(),
    };
    let rules = check(GOOD).unwrap();
    let profile = Alerts {
        enabled: true,
        namespace: None,
        labels: [("release".to_string(), "kps".to_string())].into(),
        experimental_functions: false,
    };
    let target = Target {
        app: "web",
        namespace: "web".into(),
    };
    let obj = rule_object(&target, &profile, &file, &rules)
        .unwrap()
        .unwrap();
    assert_eq!(obj.value["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(obj.value["kind"], "PrometheusRule");
    assert_eq!(obj.value["metadata"]["labels"], json!({"release": "kps"}));
    let name = obj.value["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("web-api-rules-") && name.len() == "web-api-rules-".len() + 8,
        "{name}"
    );
    assert_eq!(obj.value["spec"]["groups"], json!(rules.groups));
    assert_eq!(
        obj.origin().to_string(),
        "apps/web/alerts/api.rules.yaml:2:5"
    );
    let empty = check("groups: []\n").unwrap();
    assert!(
        rule_object(&target, &profile, &file, &empty)
            .unwrap()
            .is_none()
    );
}
