//! The fingerprint of the fields plumb owns on a live object: its
//! `managedFields` entry (manager `plumb`, operation `Apply`) together with
//! the values at exactly those fields.
//!
//! Drift detection compares the fingerprint of the live object with the one
//! recorded from the server's answer to plumb's last apply. Server defaults
//! (fields plumb never set) and normalisation (the server's answer is what is
//! recorded) cannot make it flap; any other writer that changes or removes a
//! field plumb set changes both the ownership and the value, so it shows.

use serde_json::{Map, Value};

use crate::model::{CanonicalHasher, FIELD_MANAGER};

/// The 16-hex fingerprint, or `""` when plumb owns no field of the object.
/// It is the content hash of `{"fields": <plumb's fieldsV1>, "values": <the
/// object's values at those fields>}`, hashed as it is walked: the live
/// object is never copied.
pub fn fingerprint(obj: &Value) -> String {
    let Some(fields) = plumb_fields(obj) else {
        return String::new();
    };
    let mut h = CanonicalHasher::default();
    h.begin_object();
    h.key("fields");
    h.map(fields);
    h.end_member();
    h.key("values");
    hash_projection(fields, obj, &mut h);
    h.end_member();
    h.end_object();
    h.finish()[..16].to_string()
}

/// plumb's `fieldsV1` from `metadata.managedFields`.
pub fn plumb_fields(obj: &Value) -> Option<&Map<String, Value>> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|m| m["manager"] == FIELD_MANAGER && m["operation"] == "Apply")
        .and_then(|m| m["fieldsV1"].as_object())
}

/// The managers other than plumb that own fields of the object.
pub fn other_managers(obj: &Value) -> Vec<String> {
    let mut v: Vec<String> = obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .filter(|m| *m != FIELD_MANAGER)
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Hashes the values of `obj` at the fields of a FieldsV1 set, as the
/// canonical JSON object: field key → value (a nested set → the projection
/// of the child; a missing child → null; a set member `v:` → whether it is
/// present).
fn hash_projection(fields: &Map<String, Value>, obj: &Value, h: &mut CanonicalHasher) {
    let mut keys: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(k, _)| ["f:", "k:", "v:", "i:"].iter().any(|p| k.starts_with(p)))
        .collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
    h.begin_object();
    for (key, sub) in keys {
        h.key(key);
        if let Some(v) = key.strip_prefix("v:") {
            // A set member: its presence is the value.
            let wanted: Value = serde_json::from_str(v).unwrap_or(Value::Null);
            let present = obj.as_array().is_some_and(|a| a.contains(&wanted));
            h.value(&Value::Bool(present));
        } else {
            let child = if let Some(name) = key.strip_prefix("f:") {
                obj.get(name)
            } else if let Some(k) = key.strip_prefix("k:") {
                list_item_by_keys(obj, k)
            } else {
                key.strip_prefix("i:")
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| obj.get(i))
            };
            match (child, sub.as_object()) {
                (None, _) => h.value(&Value::Null),
                (Some(c), Some(subfields)) if !subfields.is_empty() && !is_only_dot(subfields) => {
                    hash_projection(subfields, c, h)
                }
                (Some(c), _) => h.value(c),
            }
        }
        h.end_member();
    }
    h.end_object();
}

fn is_only_dot(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.contains_key(".")
}

/// The element of a list whose key fields equal the JSON object `keys`.
fn list_item_by_keys<'a>(list: &'a Value, keys: &str) -> Option<&'a Value> {
    let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
    list.as_array()?
        .iter()
        .find(|item| keys.iter().all(|(k, v)| item.get(k) == Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(replicas: i64, image: &str, owner_of_replicas: &str) -> Value {
        let plumb_fields = if owner_of_replicas == "plumb" {
            json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        } else {
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        };
        let mut managed =
            vec![json!({"manager": "plumb", "operation": "Apply", "fieldsV1": plumb_fields})];
        if owner_of_replicas != "plumb" {
            managed.push(json!({"manager": owner_of_replicas, "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}));
        }
        json!({
            "metadata": {"name": "d", "resourceVersion": "7", "managedFields": managed},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}
            ]}}}
        })
    }

    #[test]
    fn server_defaults_outside_plumbs_fields_do_not_change_it() {
        let a = obj(3, "nginx:1", "plumb");
        let mut b = a.clone();
        b["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");
        b["metadata"]["resourceVersion"] = json!("8");
        b["status"] = json!({"readyReplicas": 3});
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn a_changed_value_of_a_plumb_field_changes_it() {
        assert_ne!(
            fingerprint(&obj(3, "nginx:1", "plumb")),
            fingerprint(&obj(3, "nginx:2", "plumb"))
        );
    }

    #[test]
    fn another_manager_taking_a_field_changes_it() {
        assert_ne!(
            fingerprint(&obj(3, "nginx:1", "plumb")),
            fingerprint(&obj(5, "nginx:1", "kubectl-edit"))
        );
        assert_eq!(
            other_managers(&obj(5, "nginx:1", "kubectl-edit")),
            ["kubectl-edit"]
        );
    }

    #[test]
    fn no_plumb_fields_means_no_fingerprint() {
        assert_eq!(fingerprint(&json!({"metadata": {"name": "x"}})), "");
    }

    /// The fingerprint as first computed (the projection built as a tree,
    /// then hashed): fingerprints are stored in inventories, so the
    /// streaming version must give the very same value.
    fn reference(obj: &Value) -> String {
        let fields = plumb_fields(obj).unwrap();
        let projected = project_tree(fields, obj);
        crate::model::content_hash(&json!({ "fields": fields, "values": projected }))[..16]
            .to_string()
    }

    /// The values of `obj` at the fields of a FieldsV1 set.
    fn project_tree(fields: &Map<String, Value>, obj: &Value) -> Value {
        let mut out = Map::new();
        for (key, sub) in fields {
            let child = if let Some(name) = key.strip_prefix("f:") {
                obj.get(name)
            } else if let Some(k) = key.strip_prefix("k:") {
                list_item_by_keys(obj, k)
            } else if let Some(v) = key.strip_prefix("v:") {
                // A set member: its presence is the value.
                let wanted: Value = serde_json::from_str(v).unwrap_or(Value::Null);
                let present = obj.as_array().is_some_and(|a| a.contains(&wanted));
                out.insert(key.clone(), Value::Bool(present));
                continue;
            } else if let Some(i) = key.strip_prefix("i:") {
                i.parse::<usize>().ok().and_then(|i| obj.get(i))
            } else {
                continue; // "." marks the node itself
            };
            let value = match (child, sub.as_object()) {
                (None, _) => Value::Null,
                (Some(c), Some(subfields)) if !subfields.is_empty() && !is_only_dot(subfields) => {
                    project_tree(subfields, c)
                }
                (Some(c), _) => c.clone(),
            };
            out.insert(key.clone(), value);
        }
        Value::Object(out)
    }

    #[test]
    fn the_streamed_fingerprint_equals_the_tree_one() {
        let mut objs = vec![
            obj(3, "nginx:1", "plumb"),
            obj(5, "nginx:2", "kubectl-edit"),
        ];
        objs.push(json!({
            "metadata": {"name": "x", "managedFields": [{"manager": "plumb", "operation": "Apply",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:gone": {}},
                             "f:spec": {"f:finalizers": {"v:\"a\"": {}, "v:\"z\"": {}},
                                        "f:items": {"i:1": {}, "i:9": {}}},
                             "f:metadata": {"f:labels": {"f:app": {}}}}}]},
            "data": {"a": "x\n\u{e9}\"q", "b": "not plumb's"},
            "spec": {"finalizers": ["a", "b"], "items": [1, {"deep": [true, null]}]}
        }));
        for o in &objs {
            assert_eq!(fingerprint(o), reference(o), "{o}");
        }
    }
}
