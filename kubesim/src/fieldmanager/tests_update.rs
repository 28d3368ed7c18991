//! Non-apply writes (create, update, patch) and the FieldsV1 encoding,
//! checked against managedFields written by real API servers.

use serde_json::{Value, json};

use super::*;

const T1: &str = "2024-01-01T00:00:00Z";
const T2: &str = "2024-01-02T00:00:00Z";

fn cm_keys() -> ListKeys {
    ListKeys::builtin("", "ConfigMap")
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "labels": {"app": "x"}}, "data": data})
}

fn entries(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap().to_string(),
                        e["operation"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fields<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    let list = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    &list
        .iter()
        .find(|e| e["manager"] == manager)
        .expect("entry")["fieldsV1"]
}

#[test]
fn create_owns_every_field_and_marks_the_maps_it_created() {
    let out = update(
        None,
        &cm(json!({"key": "v"})),
        "kubectl-create",
        &cm_keys(),
        T1,
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:key": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}])
    );
    assert_eq!(managed::strip(&out), cm(json!({"key": "v"})));
}

/// A pod as `kubectl create` sends it after defaulting, and the entry a
/// real API server recorded for it.
#[test]
fn create_of_a_pod_matches_a_real_api_server() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "myfirstpod", "namespace": "default"},
        "spec": {"containers": [{"name": "container1", "image": "aamirpinger/helloworld:latest",
            "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30},
        "status": {"phase": "Pending"}});
    let out = update(None, &pod, "kubectl", &ListKeys::builtin("", "Pod"), T1).unwrap();
    let want = r#"{"f:spec":{"f:containers":{"k:{\"name\":\"container1\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}"#;
    assert_eq!(fields(&out, "kubectl").to_string(), want);
}

/// A Deployment create recorded by a real API server (manager `okhttp`).
const REAL_DEPLOYMENT_FIELDS: &str = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:alibabacloud.com/compute-class":{},"f:alibabacloud.com/compute-qos":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{".":{},"f:limits":{".":{},"f:cpu":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#;

#[test]
fn create_of_a_deployment_matches_a_real_api_server() {
    let labels = json!({"alibabacloud.com/compute-class": "general-purpose", "alibabacloud.com/compute-qos": "default", "app": "nginx"});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {"progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
                "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "1"}}, "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30}}}});
    let out = update(
        None,
        &deployment,
        "okhttp",
        &ListKeys::builtin("apps", "Deployment"),
        T1,
    )
    .unwrap();
    assert_eq!(fields(&out, "okhttp").to_string(), REAL_DEPLOYMENT_FIELDS);
}

#[test]
fn fields_v1_from_real_servers_round_trip_unchanged() {
    let real: Value = serde_json::from_str(REAL_DEPLOYMENT_FIELDS).unwrap();
    let set = set::FieldSet::from_fields_v1(&real).unwrap();
    assert_eq!(set.to_fields_v1().to_string(), REAL_DEPLOYMENT_FIELDS);
    let finalizers = r#"{"f:metadata":{"f:finalizers":{".":{},"v:\"kubernetes.io/pvc-protection\"":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"633ee2e7-5687-41ed-9fd4-0711155d0b0e\"}":{}}}}"#;
    let set = set::FieldSet::from_fields_v1(&serde_json::from_str(finalizers).unwrap()).unwrap();
    assert_eq!(set.to_fields_v1().to_string(), finalizers);
}

#[test]
fn changing_one_field_moves_only_that_field() {
    let created = update(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        "kubectl-create",
        &cm_keys(),
        T1,
    )
    .unwrap();
    let edited = update(
        Some(&created),
        &cm(json!({"a": "1", "b": "3"})),
        "kubectl-edit",
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        fields(&edited, "kubectl-edit"),
        &json!({"f:data": {"f:b": {}}})
    );
    assert_eq!(
        fields(&edited, "kubectl-create"),
        &json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
}

#[test]
fn removed_fields_leave_every_set_and_empty_managers_are_dropped() {
    let created = update(None, &cm(json!({"a": "1"})), "creator", &cm_keys(), T1).unwrap();
    let edited = update(
        Some(&created),
        &cm(json!({"a": "1", "b": "2"})),
        "editor",
        &cm_keys(),
        T2,
    )
    .unwrap();
    let trimmed = update(
        Some(&edited),
        &cm(json!({"a": "1"})),
        "trimmer",
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        entries(&trimmed),
        [("creator".to_string(), "Update".to_string())]
    );
}

#[test]
fn an_update_that_changes_nothing_keeps_the_entries_and_their_times() {
    let created = update(None, &cm(json!({"a": "1"})), "creator", &cm_keys(), T1).unwrap();
    let same = update(
        Some(&created),
        &cm(json!({"a": "1"})),
        "someone",
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(same, created);
}

#[test]
fn the_same_manager_keeps_one_update_entry_per_api_version() {
    let created = update(None, &cm(json!({"a": "1"})), "ctl", &cm_keys(), T1).unwrap();
    let more = update(
        Some(&created),
        &cm(json!({"a": "1", "b": "2"})),
        "ctl",
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(entries(&more).len(), 1);
    assert_eq!(
        fields(&more, "ctl")["f:data"],
        json!({".": {}, "f:a": {}, "f:b": {}})
    );
    assert_eq!(more["metadata"]["managedFields"][0]["time"], T2);
}

#[test]
fn managed_fields_sent_with_the_request_replace_the_live_ones() {
    let created = update(None, &cm(json!({"a": "1"})), "creator", &cm_keys(), T1).unwrap();
    let mut rewritten = created.clone();
    rewritten["metadata"]["managedFields"][0]["manager"] = json!("renamed");
    let out = update(
        Some(&created),
        &rewritten,
        "kubectl-replace",
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        entries(&out),
        [("renamed".to_string(), "Update".to_string())]
    );
    let mut reset = created.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let cleared = update(Some(&created), &reset, "kubectl-patch", &cm_keys(), T2).unwrap();
    assert!(cleared["metadata"].get("managedFields").is_none());
    let mut emptied = created.clone();
    emptied["metadata"]["managedFields"] = json!([]);
    let kept = update(Some(&created), &emptied, "kubectl-patch", &cm_keys(), T2).unwrap();
    assert_eq!(
        entries(&kept),
        [("creator".to_string(), "Update".to_string())]
    );
}

#[test]
fn status_changes_are_not_recorded_behind_a_status_subresource() {
    let keys = ListKeys::builtin("apps", "Deployment");
    let d = |replicas: i64, ready: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"replicas": replicas}, "status": {"readyReplicas": ready}})
    };
    let created = update(None, &d(1, 0), "creator", &keys, T1).unwrap();
    assert_eq!(
        fields(&created, "creator"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
    let scaled = update(Some(&created), &d(1, 1), "controller", &keys, T2).unwrap();
    assert_eq!(
        entries(&scaled),
        [("creator".to_string(), "Update".to_string())]
    );
}

#[test]
fn an_apply_after_an_update_conflicts_on_what_the_update_changed() {
    let keys = ListKeys::builtin("apps", "Deployment");
    let d = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let applied = apply(None, &d("app:1"), "plumb", false, &keys, T1).unwrap();
    let mut edited = applied.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("app:hotfix");
    let edited = update(Some(&applied), &edited, "kubectl-edit", &keys, T2).unwrap();
    let Err(FieldManagerError::Conflict(causes)) =
        apply(Some(&edited), &d("app:1"), "plumb", false, &keys, T2)
    else {
        panic!("expected a conflict");
    };
    assert_eq!(
        conflict_message(&causes),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.template.spec.containers[name="app"].image"#
    );
}

#[test]
fn update_no_errors_strips_managed_fields_when_the_object_cannot_be_tracked() {
    let keys = ListKeys::from_openapi_schema(
        &json!({"properties": {"spec": {"properties": {"items": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]}}}}}),
    );
    let mut obj = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"},
        "spec": {"items": [{"x": 1}]}});
    obj["metadata"]["managedFields"] = json!([]);
    assert!(update(None, &obj, "m", &keys, T1).is_err());
    let out = update_no_errors(None, &obj, "m", &keys, T1);
    assert!(out["metadata"].get("managedFields").is_none());
    assert_eq!(out["spec"], obj["spec"]);
}

#[test]
fn creating_a_custom_resource_marks_spec_as_created() {
    let keys = ListKeys::from_openapi_schema(&json!({"type": "object"}));
    let obj = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let out = update(None, &obj, "kubectl-create", &keys, T1).unwrap();
    assert_eq!(
        fields(&out, "kubectl-create"),
        &json!({"f:spec": {".": {}, "f:size": {}}})
    );
}

#[test]
fn updates_that_are_not_objects_are_invalid() {
    assert!(matches!(
        update(None, &json!([]), "m", &cm_keys(), T1),
        Err(FieldManagerError::Invalid(_))
    ));
}
