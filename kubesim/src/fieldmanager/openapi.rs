//! The merge schema of a built-in kind, derived as the API server derives
//! it (kube-openapi `schemaconv`): the kind's OpenAPI definition (generated
//! from the k8s-openapi types) with the merge annotations the real server
//! publishes (`merge-keys-v1.28.json`: every `x-kubernetes-list-type`,
//! `-list-map-keys`, `-map-type`, `-patch-strategy` and `-patch-merge-key`
//! of a v1.28 server's `/openapi/v2`), plus what v1.28 did not publish:
//! struct-level `+structType=atomic` and the kinds added since.
//!
//! It only produces a [`Node`] tree; `builtin` overlays Go zero values and
//! key defaults that no schema carries.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::schema::Node;
use crate::schema::builtin::schemas;

const REF_PREFIX: &str = "#/components/schemas/";

/// Definition name → field (`.name`) → annotations.
fn annotations() -> &'static Map<String, Value> {
    static CELL: OnceLock<Map<String, Value>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut m: Map<String, Value> =
            serde_json::from_str(include_str!("merge-keys-v1.28.json")).unwrap_or_default();
        for (def, field, ann) in SINCE_V1_28 {
            let entry = m
                .entry(def.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(e) = entry.as_object_mut() {
                e.insert(format!(".{field}"), ann());
            }
        }
        m
    })
}

fn list_map(keys: &[&str]) -> Value {
    json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys})
}

type Annotation = fn() -> Value;

/// Merge annotations of kinds GA after v1.28 (upstream `types.go` markers).
const SINCE_V1_28: &[(&str, &str, Annotation)] = &[
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        "matchConditions",
        || list_map(&["name"]),
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
        "conditions",
        || list_map(&["type"]),
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
        "validationActions",
        || json!({"x-kubernetes-list-type": "set"}),
    ),
    (
        "io.k8s.api.networking.v1.ServiceCIDRStatus",
        "conditions",
        || list_map(&["type"]),
    ),
    (
        "io.k8s.api.resource.v1.ResourceClaimStatus",
        "devices",
        || list_map(&["driver", "device", "pool", "shareID"]),
    ),
    (
        "io.k8s.api.resource.v1.ResourceClaimStatus",
        "reservedFor",
        || list_map(&["uid"]),
    ),
    (
        "io.k8s.api.resource.v1.AllocatedDeviceStatus",
        "conditions",
        || list_map(&["type"]),
    ),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", || {
        list_map(&["ip"])
    }),
];

/// Structs the upstream types mark `+structType=atomic` (OpenAPI v2 of v1.28
/// carries them on the definition, which the captured file does not hold).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.rbac.v1.RoleRef",
];

/// Arbitrary JSON that structured-merge-diff owns as one value
/// (`__untyped_atomic_`): a ControllerRevision's `data`, a CRD's defaults.
const UNTYPED_ATOMIC: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
];

/// The annotations of `field` in definition `def`. flowcontrol v1 has the
/// same types as v1beta3, which v1.28 served.
fn field_annotations(def: &str, field: &str) -> Option<&'static Map<String, Value>> {
    let all = annotations();
    let key = format!(".{field}");
    let find = |d: &str| all.get(d)?.get(&key)?.as_object();
    find(def).or_else(|| {
        def.strip_prefix("io.k8s.api.flowcontrol.v1.")
            .and_then(|rest| find(&format!("io.k8s.api.flowcontrol.v1beta3.{rest}")))
    })
}

/// The merge schema of a built-in kind, if k8s-openapi describes it.
pub(crate) fn root(group: &str, kind: &str) -> Option<Node> {
    let s = schemas();
    let name = s.def_name(group, kind)?;
    let mut stack = BTreeSet::new();
    let inline = inline_def(&s.defs, name, &mut stack);
    Some(super::schema::node_from_schema(&inline))
}

/// The definition `name` with `$ref`s resolved and merge annotations added.
/// A definition already being expanded on this path (JSONSchemaProps) is
/// schemaless there.
fn inline_def(defs: &Map<String, Value>, name: &str, stack: &mut BTreeSet<String>) -> Value {
    if UNTYPED_ATOMIC.contains(&name) {
        return json!({"type": "object", "x-kubernetes-map-type": "atomic"});
    }
    let Some(def) = defs.get(name) else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    if !stack.insert(name.to_string()) {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    }
    let mut out = inline(defs, def, stack);
    if let Some(props) = out.get_mut("properties").and_then(Value::as_object_mut) {
        for (field, schema) in props.iter_mut() {
            if let Some(ann) = field_annotations(name, field) {
                annotate(schema, ann);
            }
        }
    }
    if ATOMIC_STRUCTS.contains(&name)
        && let Some(m) = out.as_object_mut()
    {
        m.insert("x-kubernetes-map-type".into(), json!("atomic"));
    }
    stack.remove(name);
    out
}

fn inline(defs: &Map<String, Value>, s: &Value, stack: &mut BTreeSet<String>) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    if let Some(name) = m
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
    {
        return inline_def(defs, name, stack);
    }
    // schemars wraps a `$ref` with siblings (a description) in `allOf`.
    if let Some(Value::Array(all)) = m.get("allOf")
        && let [single] = all.as_slice()
    {
        return inline(defs, single, stack);
    }
    let mut out = Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "properties" => match v {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(pk, pv)| (pk.clone(), inline(defs, pv, stack)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" => inline(defs, v, stack),
            "description" => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Adds `x-kubernetes-*` list and map semantics as kube-openapi reads them:
/// an explicit list type wins; otherwise `patch-strategy: merge` makes a map
/// keyed by the patch merge key, or a set without one.
fn annotate(schema: &mut Value, ann: &Map<String, Value>) {
    let Some(m) = schema.as_object_mut() else {
        return;
    };
    if let Some(t) = ann.get("x-kubernetes-map-type") {
        m.insert("x-kubernetes-map-type".into(), t.clone());
    }
    let merge = ann
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|p| p == "merge"));
    let (list_type, keys) = match ann.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some(t) => (
            t.to_string(),
            ann.get("x-kubernetes-list-map-keys").cloned(),
        ),
        None if merge => match ann.get("x-kubernetes-patch-merge-key") {
            Some(k) => ("map".to_string(), Some(json!([k]))),
            None => ("set".to_string(), None),
        },
        None => return,
    };
    m.insert("x-kubernetes-list-type".into(), json!(list_type));
    if let Some(keys) = keys {
        key_defaults(m, &keys);
        m.insert("x-kubernetes-list-map-keys".into(), keys);
    }
}

/// A missing key field takes its declared default (`protocol: TCP`) or the
/// Go zero value of its type, as structured-merge-diff keys it.
fn key_defaults(list: &mut Map<String, Value>, keys: &Value) {
    let Some(props) = list
        .get_mut("items")
        .and_then(|i| i.get_mut("properties"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for key in keys
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let Some(Value::Object(p)) = props.get_mut(key) else {
            continue;
        };
        if p.contains_key("default") {
            continue;
        }
        let zero = match (key, p.get("type").and_then(Value::as_str)) {
            ("protocol", _) => json!("TCP"),
            (_, Some("integer")) => json!(0),
            (_, Some("boolean")) => json!(false),
            _ => json!(""),
        };
        p.insert("default".into(), zero);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldmanager::schema::ListType;

    fn at<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(n, |n, seg| match *seg {
            "[]" => n.item(),
            s => n.child(s).0,
        })
    }

    #[test]
    fn pod_spec_lists_are_keyed_as_the_real_server_keys_them() {
        let root = root("apps", "Deployment").unwrap();
        let spec = at(&root, &["spec", "template", "spec"]);
        assert_eq!(
            at(spec, &["containers"]).list,
            ListType::Map(vec!["name".into()])
        );
        let ports = at(spec, &["containers", "[]", "ports"]);
        assert_eq!(
            ports.list,
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(at(ports, &["[]", "protocol"]).default, Some(json!("TCP")));
        assert_eq!(at(spec, &["tolerations"]).list, ListType::Atomic);
        assert!(at(&root, &["spec", "selector"]).atomic_map);
        assert!(
            !at(spec, &["nodeSelector"]).child("disk").1,
            "free-form map keys"
        );
    }

    #[test]
    fn webhooks_merge_by_name_through_their_patch_merge_key() {
        let root = root(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
        )
        .unwrap();
        assert_eq!(
            at(&root, &["webhooks"]).list,
            ListType::Map(vec!["name".into()])
        );
        assert!(at(&root, &["webhooks", "[]", "namespaceSelector"]).atomic_map);
        assert_eq!(
            at(&root, &["webhooks", "[]", "rules"]).list,
            ListType::Atomic
        );
    }

    #[test]
    fn flowcontrol_v1_takes_v1beta3_annotations_and_crds_stay_finite() {
        let fs = root("flowcontrol.apiserver.k8s.io", "FlowSchema").unwrap();
        assert_eq!(
            at(&fs, &["status", "conditions"]).list,
            ListType::Map(vec!["type".into()])
        );
        assert!(root("apiextensions.k8s.io", "CustomResourceDefinition").is_some());
    }

    #[test]
    fn csi_driver_modes_are_a_set_and_hpa_conditions_a_map() {
        let csi = root("storage.k8s.io", "CSIDriver").unwrap();
        assert_eq!(
            at(&csi, &["spec", "volumeLifecycleModes"]).list,
            ListType::Set
        );
        let hpa = root("autoscaling", "HorizontalPodAutoscaler").unwrap();
        assert_eq!(
            at(&hpa, &["status", "conditions"]).list,
            ListType::Map(vec!["type".into()])
        );
        assert_eq!(at(&hpa, &["spec", "metrics"]).list, ListType::Atomic);
    }
}
