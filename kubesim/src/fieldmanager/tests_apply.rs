//! Server-side apply scenarios: ownership, pruning, conflicts.

use serde_json::json;

use super::test_util::*;
use super::*;

#[test]
fn first_apply_owns_exactly_the_config_fields() {
    // The example object of the Kubernetes server-side apply documentation.
    let mut config = cm(json!({"key": "some value"}));
    config["metadata"]["labels"] = json!({"test-label": "test"});
    let out = apply(None, &config, "kubectl", false, &cm_keys(), T1).unwrap();
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key": {}},
                "f:metadata": {"f:labels": {"f:test-label": {}}}}}])
    );
    assert_eq!(managed::strip(&out), config);
}

#[test]
fn reapplying_an_identical_config_returns_the_live_object_unchanged() {
    let config = cm(json!({"a": "1", "b": "2"}));
    let first = apply(None, &config, "plumb", false, &cm_keys(), T1).unwrap();
    let edited = update(
        Some(&first),
        &cm(json!({"a": "1", "b": "2", "c": "3"})),
        "kubectl-edit",
        &cm_keys(),
        T2,
    )
    .unwrap();
    let again = apply(Some(&edited), &config, "plumb", false, &cm_keys(), T3).unwrap();
    assert_eq!(again, edited);
}

#[test]
fn an_apply_that_changes_the_object_refreshes_the_time() {
    let first = apply(None, &cm(json!({"a": "1"})), "plumb", false, &cm_keys(), T1).unwrap();
    let second = apply(
        Some(&first),
        &cm(json!({"a": "2"})),
        "plumb",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(entry(&second, "plumb", "Apply").unwrap()["time"], T2);
    assert_eq!(second["data"], json!({"a": "2"}));
}

#[test]
fn removing_a_field_from_the_config_removes_it_from_the_object() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let second = apply(
        Some(&first),
        &cm(json!({"a": "1"})),
        "plumb",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(second["data"], json!({"a": "1"}));
    assert_eq!(
        fields(&second, "plumb", "Apply"),
        &json!({"f:data": {"f:a": {}}})
    );
}

#[test]
fn removing_every_field_of_a_map_removes_the_map() {
    let mut config = cm(json!({"a": "1"}));
    config["metadata"]["labels"] = json!({"team": "x"});
    let first = apply(None, &config, "plumb", false, &cm_keys(), T1).unwrap();
    let second = apply(
        Some(&first),
        &cm(json!({"a": "1"})),
        "plumb",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert!(second["metadata"].get("labels").is_none(), "{second}");
    assert_eq!(second["metadata"]["name"], "c");
}

#[test]
fn removing_a_field_another_applier_also_applies_keeps_it() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let shared = apply(
        Some(&first),
        &cm(json!({"b": "2"})),
        "other",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    let dropped = apply(
        Some(&shared),
        &cm(json!({"a": "1"})),
        "plumb",
        false,
        &cm_keys(),
        T3,
    )
    .unwrap();
    assert_eq!(dropped["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        fields(&dropped, "plumb", "Apply"),
        &json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(
        fields(&dropped, "other", "Apply"),
        &json!({"f:data": {"f:b": {}}})
    );
}

#[test]
fn removing_a_field_an_update_manager_took_over_keeps_its_value() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let mut edited = first.clone();
    edited["data"]["b"] = json!("edited");
    let edited = update(Some(&first), &edited, "kubectl-edit", &cm_keys(), T2).unwrap();
    let dropped = apply(
        Some(&edited),
        &cm(json!({"a": "1"})),
        "plumb",
        false,
        &cm_keys(),
        T3,
    )
    .unwrap();
    assert_eq!(dropped["data"], json!({"a": "1", "b": "edited"}));
}

#[test]
fn changing_a_field_an_update_manager_owns_is_a_conflict() {
    let first = apply(
        None,
        &cm(json!({"key": "v1"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let edited = update(
        Some(&first),
        &cm(json!({"key": "v2"})),
        "kubectl-edit",
        &cm_keys(),
        T2,
    )
    .unwrap();
    let causes = conflicts(apply(
        Some(&edited),
        &cm(json!({"key": "v1"})),
        "plumb",
        false,
        &cm_keys(),
        T3,
    ));
    assert_eq!(
        causes,
        [ConflictCause {
            manager: "kubectl-edit".into(),
            field: ".data.key".into(),
            operation: "Update".into(),
            api_version: "v1".into(),
        }]
    );
    assert_eq!(
        causes[0].message(),
        r#"conflict with "kubectl-edit" using v1"#
    );
    assert_eq!(
        FieldManagerError::Conflict(causes).to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.key"#
    );
}

#[test]
fn applying_the_value_another_manager_set_shares_ownership_without_conflict() {
    let first = apply(
        None,
        &cm(json!({"key": "v1"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let edited = update(
        Some(&first),
        &cm(json!({"key": "v2"})),
        "kubectl-edit",
        &cm_keys(),
        T2,
    )
    .unwrap();
    let shared = apply(
        Some(&edited),
        &cm(json!({"key": "v2"})),
        "plumb",
        false,
        &cm_keys(),
        T3,
    )
    .unwrap();
    assert_eq!(
        fields(&shared, "plumb", "Apply"),
        &json!({"f:data": {"f:key": {}}})
    );
    assert_eq!(
        fields(&shared, "kubectl-edit", "Update"),
        &json!({"f:data": {"f:key": {}}})
    );
}

#[test]
fn force_takes_the_field_and_drops_an_emptied_manager() {
    let first = apply(
        None,
        &cm(json!({"key": "v1"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let edited = update(
        Some(&first),
        &cm(json!({"key": "v2"})),
        "kubectl-edit",
        &cm_keys(),
        T2,
    )
    .unwrap();
    let forced = apply(
        Some(&edited),
        &cm(json!({"key": "v1"})),
        "plumb",
        true,
        &cm_keys(),
        T3,
    )
    .unwrap();
    assert_eq!(forced["data"]["key"], "v1");
    assert!(entry(&forced, "kubectl-edit", "Update").is_none());
    assert_eq!(
        fields(&forced, "plumb", "Apply"),
        &json!({"f:data": {"f:key": {}}})
    );
}

#[test]
fn force_only_moves_the_conflicting_fields() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "1"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let forced = apply(
        Some(&first),
        &cm(json!({"a": "2"})),
        "other",
        true,
        &cm_keys(),
        T2,
    )
    .unwrap();
    assert_eq!(
        fields(&forced, "plumb", "Apply"),
        &json!({"f:data": {"f:b": {}}})
    );
    assert_eq!(
        fields(&forced, "other", "Apply"),
        &json!({"f:data": {"f:a": {}}})
    );
}

#[test]
fn conflicts_with_several_managers_are_grouped_and_sorted() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "1", "c": "1"})),
        "zeta",
        false,
        &cm_keys(),
        T1,
    )
    .unwrap();
    let other = apply(
        Some(&first),
        &cm(json!({"c": "1"})),
        "alpha",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    let causes = conflicts(apply(
        Some(&other),
        &cm(json!({"a": "2", "b": "2", "c": "2"})),
        "me",
        false,
        &cm_keys(),
        T3,
    ));
    let got: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.manager.as_str(), c.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("alpha", ".data.c"),
            ("zeta", ".data.a"),
            ("zeta", ".data.b"),
            ("zeta", ".data.c")
        ]
    );
    assert_eq!(
        conflict_message(&causes),
        "Apply failed with 4 conflicts: conflicts with \"alpha\":\n- .data.c\nconflicts with \"zeta\":\n- .data.a\n- .data.b\n- .data.c"
    );
}

#[test]
fn malformed_configs_are_invalid() {
    let keys = deploy_keys();
    let dup = deployment(pod_spec(json!([{"name": "a"}, {"name": "a"}])));
    let mut with_managed = cm(json!({}));
    with_managed["metadata"]["managedFields"] = json!([{"manager": "x"}]);
    for bad in [
        json!([1]),
        json!("x"),
        dup,
        with_managed,
        json!({"kind": "ConfigMap"}),
    ] {
        assert!(
            matches!(
                apply(None, &bad, "m", false, &keys, T1),
                Err(FieldManagerError::Invalid(_))
            ),
            "{bad}"
        );
    }
    let dup_err = apply(
        None,
        &deployment(pod_spec(json!([{"name": "a"}, {"name": "a"}]))),
        "m",
        false,
        &keys,
        T1,
    );
    assert_eq!(
        dup_err.unwrap_err().to_string(),
        r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#
    );
}

#[test]
fn status_is_ignored_when_the_kind_has_a_status_subresource() {
    let live = apply(
        None,
        &deployment(json!({"replicas": 1})),
        "plumb",
        false,
        &deploy_keys(),
        T1,
    )
    .unwrap();
    let mut live = live;
    live["status"] = json!({"replicas": 1});
    let mut config = deployment(json!({"replicas": 1}));
    config["status"] = json!({"replicas": 5});
    let out = apply(Some(&live), &config, "plumb", false, &deploy_keys(), T2).unwrap();
    assert_eq!(out["status"], json!({"replicas": 1}));
    assert!(fields(&out, "plumb", "Apply").get("f:status").is_none());
    let plain = deploy_keys().with_status_subresource(false);
    let tracked = apply(Some(&live), &config, "plumb", false, &plain, T2).unwrap();
    assert_eq!(tracked["status"], json!({"replicas": 5}));
}

#[test]
fn server_managed_metadata_keeps_its_live_values() {
    let mut live = apply(None, &cm(json!({"a": "1"})), "plumb", false, &cm_keys(), T1).unwrap();
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["resourceVersion"] = json!("7");
    let mut config = cm(json!({"a": "1"}));
    config["metadata"]["uid"] = json!("forged");
    let out = apply(Some(&live), &config, "plumb", false, &cm_keys(), T2).unwrap();
    assert_eq!(out["metadata"]["uid"], "u-1");
    assert_eq!(out["metadata"]["resourceVersion"], "7");
}

#[test]
fn the_first_apply_to_an_unmanaged_object_conflicts_with_before_first_apply() {
    let live = cm(json!({"key": "old"}));
    let causes = conflicts(apply(
        Some(&live),
        &cm(json!({"key": "new"})),
        "plumb",
        false,
        &cm_keys(),
        T1,
    ));
    assert_eq!(
        causes[0].message(),
        r#"conflict with "before-first-apply" using v1"#
    );
    assert_eq!(causes[0].field, ".data.key");
    let forced = apply(
        Some(&live),
        &cm(json!({"key": "new"})),
        "plumb",
        true,
        &cm_keys(),
        T1,
    )
    .unwrap();
    // Upstream keeps the `.` of the map it created: only the leaf moves.
    assert_eq!(
        fields(&forced, "before-first-apply", "Update"),
        &json!({"f:data": {}})
    );
    assert_eq!(
        fields(&forced, "plumb", "Apply"),
        &json!({"f:data": {"f:key": {}}})
    );
}

#[test]
fn managed_fields_come_out_in_a_stable_server_order() {
    let first = apply(
        None,
        &cm(json!({"a": "1"})),
        "zz-applier",
        false,
        &cm_keys(),
        T2,
    )
    .unwrap();
    let edited = update(
        Some(&first),
        &cm(json!({"a": "1", "b": "2"})),
        "aa-editor",
        &cm_keys(),
        T1,
    )
    .unwrap();
    let again = apply(
        Some(&edited),
        &cm(json!({"a": "1", "c": "3"})),
        "mm-applier",
        false,
        &cm_keys(),
        T3,
    )
    .unwrap();
    let order: Vec<&str> = again["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["zz-applier", "mm-applier", "aa-editor"]);
}
