use serde_json::{Value, json};

use super::*;
use crate::fieldmanager::list_keys::ListKeys;
use crate::fieldmanager::schema;

fn deploy() -> ListKeys {
    ListKeys::builtin("apps", "Deployment")
}

fn fields_v1(set: &FieldSet) -> Value {
    set.to_fields_v1()
}

#[test]
fn the_field_set_of_a_config_marks_list_elements_but_not_maps() {
    let keys = deploy();
    let config = json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
        "template": {"spec": {"containers": [{"name": "app", "image": "nginx",
            "ports": [{"containerPort": 80}]}]}}}});
    let set = to_field_set(&config, keys.root(), true).unwrap();
    assert_eq!(
        fields_v1(&set),
        json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
}

#[test]
fn duplicate_keys_in_a_config_are_reported_with_their_path() {
    let config =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
    let err = to_field_set(&config, deploy().root(), true).unwrap_err();
    assert_eq!(
        err,
        r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#
    );
}

#[test]
fn set_elements_must_be_scalars() {
    let config = json!({"metadata": {"finalizers": [{"a": 1}]}});
    let err = to_field_set(&config, deploy().root(), true).unwrap_err();
    assert!(
        err.starts_with(".metadata.finalizers: element 0: "),
        "{err}"
    );
}

#[test]
fn compare_marks_created_maps_and_elements_as_added() {
    let old = json!({"data": {"a": "1"}});
    let new = json!({"data": {"a": "2"}, "metadata": {"labels": {"x": "y"}}});
    let cmp = compare(&old, &new, &schema::Node::default()).unwrap();
    assert_eq!(fields_v1(&cmp.modified), json!({"f:data": {"f:a": {}}}));
    assert_eq!(
        fields_v1(&cmp.added),
        json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:x": {}}}})
    );
    assert!(cmp.removed.is_empty());
}

#[test]
fn compare_treats_empty_maps_as_leaves() {
    let cmp = compare(
        &json!({}),
        &json!({"resources": {}}),
        &schema::Node::default(),
    )
    .unwrap();
    assert_eq!(fields_v1(&cmp.added), json!({"f:resources": {}}));
}

#[test]
fn reordering_a_keyed_list_is_not_a_change() {
    let keys = deploy();
    let old =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}});
    let new =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "b"}, {"name": "a"}]}}}});
    let cmp = compare(&old, &new, keys.root()).unwrap();
    assert!(cmp.changed().is_empty() && cmp.removed.is_empty());
}

#[test]
fn merging_follows_the_config_order_for_shared_items() {
    let node = {
        let mut n = schema::Node::default();
        n.at("items").list = schema::ListType::Set;
        n
    };
    let cases = [
        (
            json!(["a", "b", "c"]),
            json!(["c", "d"]),
            json!(["a", "b", "c", "d"]),
        ),
        (json!(["a", "b"]), json!(["b", "a"]), json!(["b", "a"])),
        (
            json!(["a", "b", "c"]),
            json!(["d", "a"]),
            json!(["d", "a", "b", "c"]),
        ),
    ];
    for (live, config, want) in cases {
        let merged = merge(
            Some(&json!({"items": live})),
            Some(&json!({"items": config})),
            &node,
            &mut Vec::new(),
        );
        assert_eq!(merged.unwrap().unwrap()["items"], want);
    }
}

#[test]
fn merging_replaces_atomic_lists_and_merges_keyed_elements() {
    let keys = deploy();
    let live = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "a"}],
        "containers": [{"name": "app", "image": "v1", "args": ["x"]}]}}}});
    let config = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}],
        "containers": [{"name": "app", "image": "v2"}]}}}});
    let merged = merge(Some(&live), Some(&config), keys.root(), &mut Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(
        merged,
        json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}],
            "containers": [{"name": "app", "image": "v2", "args": ["x"]}]}}}})
    );
}

#[test]
fn removing_the_last_key_of_a_map_drops_the_map() {
    let mut set = FieldSet::default();
    set.insert(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("a".into()),
    ]);
    let out = remove_items(
        &json!({"metadata": {"name": "n", "labels": {"a": "1"}}}),
        &set,
        &schema::Node::default(),
    );
    assert_eq!(out, Some(json!({"metadata": {"name": "n"}})));
}

#[test]
fn named_fields_become_members_but_map_keys_do_not() {
    let keys = ListKeys::builtin("", "ConfigMap");
    let mut set = FieldSet::default();
    set.insert(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("a".into()),
    ]);
    let ensured = ensure_named(&set, keys.root());
    assert_eq!(
        fields_v1(&ensured),
        json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:a": {}}}})
    );
}
