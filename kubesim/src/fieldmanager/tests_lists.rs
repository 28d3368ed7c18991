//! Server-side apply scenarios: list semantics (list-maps, sets, atomic lists,
//! CRD schemas).

use serde_json::{Value, json};

use super::test_util::*;
use super::*;

#[test]
fn containers_are_merged_by_name_between_two_appliers() {
    let app = deployment(pod_spec(json!([{"name": "app", "image": "app:1"}])));
    let sidecar = deployment(pod_spec(json!([{"name": "proxy", "image": "envoy:1"}])));
    let first = apply(None, &app, "plumb", false, &deploy_keys(), T1).unwrap();
    let both = apply(Some(&first), &sidecar, "mesh", false, &deploy_keys(), T2).unwrap();
    assert_eq!(
        both["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "app:1"}, {"name": "proxy", "image": "envoy:1"}])
    );
    let mesh = fields(&both, "mesh", "Apply");
    assert_eq!(
        mesh,
        &json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    let updated = apply(
        Some(&both),
        &deployment(pod_spec(json!([{"name": "app", "image": "app:2"}]))),
        "plumb",
        false,
        &deploy_keys(),
        T3,
    )
    .unwrap();
    assert_eq!(
        updated["spec"]["template"]["spec"]["containers"][1]["image"],
        "envoy:1"
    );
    assert_eq!(
        updated["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:2"
    );
}

#[test]
fn dropping_a_container_from_the_config_removes_only_that_container() {
    let two = deployment(pod_spec(
        json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]),
    ));
    let first = apply(None, &two, "plumb", false, &deploy_keys(), T1).unwrap();
    let one = deployment(pod_spec(json!([{"name": "b", "image": "b"}])));
    let second = apply(Some(&first), &one, "plumb", false, &deploy_keys(), T2).unwrap();
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"],
        json!([{"name": "b", "image": "b"}])
    );
}

#[test]
fn container_ports_are_keyed_by_port_and_defaulted_protocol() {
    let ports = json!([{"containerPort": 53, "name": "dns"}, {"containerPort": 53, "protocol": "UDP", "name": "dns-udp"}]);
    let config = deployment(pod_spec(json!([{"name": "app", "ports": ports}])));
    let first = apply(None, &config, "plumb", false, &deploy_keys(), T1).unwrap();
    let ports_fields = &fields(&first, "plumb", "Apply")["f:spec"]["f:template"]["f:spec"]["f:containers"]
        ["k:{\"name\":\"app\"}"]["f:ports"];
    assert_eq!(
        ports_fields,
        &json!({"k:{\"containerPort\":53,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}},
            "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}})
    );
    let mut renamed = config.clone();
    renamed["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = json!("other");
    let causes = conflicts(apply(
        Some(&first),
        &renamed,
        "intruder",
        false,
        &deploy_keys(),
        T2,
    ));
    assert_eq!(
        causes[0].field,
        r#".spec.template.spec.containers[name="app"].ports[containerPort=53,protocol="TCP"].name"#
    );
}

#[test]
fn finalizers_are_a_set_shared_between_appliers() {
    let with = |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": f}});
    let first = apply(None, &with(json!(["a.io/x"])), "one", false, &cm_keys(), T1).unwrap();
    let both = apply(
        Some(&first),
        &with(json!(["b.io/y"])),
        "two",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(both["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
    assert_eq!(
        fields(&both, "two", "Apply"),
        &json!({"f:metadata": {"f:finalizers": {"v:\"b.io/y\"": {}}}})
    );
    let dropped = apply(Some(&both), &with(json!([])), "one", false, &cm_keys(), T3).unwrap();
    assert_eq!(dropped["metadata"]["finalizers"], json!(["b.io/y"]));
}

#[test]
fn atomic_lists_are_replaced_and_owned_whole() {
    let with = |t: Value| deployment(json!({"template": {"spec": {"tolerations": t}}}));
    let first = apply(
        None,
        &with(json!([{"key": "a"}, {"key": "b"}])),
        "plumb",
        false,
        &deploy_keys(),
        T1,
    )
    .unwrap();
    let causes = conflicts(apply(
        Some(&first),
        &with(json!([{"key": "c"}])),
        "other",
        false,
        &deploy_keys(),
        T2,
    ));
    assert_eq!(causes[0].field, ".spec.template.spec.tolerations");
    let forced = apply(
        Some(&first),
        &with(json!([{"key": "c"}])),
        "other",
        true,
        &deploy_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        forced["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "c"}])
    );
    assert_eq!(
        fields(&forced, "other", "Apply"),
        &json!({"f:spec": {"f:template": {"f:spec": {"f:tolerations": {}}}}})
    );
}

fn crd_keys() -> ListKeys {
    ListKeys::from_openapi_schema(
        &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": {"type": "object", "properties": {"port": {"type": "integer"},
                "protocol": {"type": "string", "default": "TCP"}, "name": {"type": "string"}}}},
        "hosts": {"type": "array", "items": {"type": "string"}}}}}}),
    )
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

#[test]
fn crd_list_map_keys_let_two_appliers_own_separate_elements() {
    let first = apply(
        None,
        &widget(json!({"ports": [{"port": 80, "name": "http"}], "hosts": ["a"]})),
        "one",
        false,
        &crd_keys(),
        T1,
    )
    .unwrap();
    let both = apply(
        Some(&first),
        &widget(json!({"ports": [{"port": 443, "name": "https"}]})),
        "two",
        false,
        &crd_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        both["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https"}])
    );
    assert_eq!(
        fields(&both, "two", "Apply"),
        &json!({"f:spec": {"f:ports": {"k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
    let causes = conflicts(apply(
        Some(&both),
        &widget(json!({"hosts": ["b"]})),
        "two",
        false,
        &crd_keys(),
        T3,
    ));
    assert_eq!(causes[0].field, ".spec.hosts");
}

#[test]
fn crd_list_elements_missing_a_key_without_default_are_invalid() {
    let keys =
        ListKeys::from_openapi_schema(&json!({"properties": {"spec": {"properties": {"items": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
        "items": {"type": "object"}}}}}}));
    let err = apply(
        None,
        &widget(json!({"items": [{"x": 1}]})),
        "one",
        false,
        &keys,
        T1,
    )
    .unwrap_err();
    assert!(
        matches!(err, FieldManagerError::Invalid(ref m) if m.contains("omits key field \"id\"")),
        "{err}"
    );
}

#[test]
fn a_nginx_deployment_apply_records_what_kubectl_apply_server_side_records() {
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}}}});
    let out = apply(None, &config, "kubectl", false, &deploy_keys(), T1).unwrap();
    let want = r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;
    assert_eq!(fields(&out, "kubectl", "Apply").to_string(), want);
}
