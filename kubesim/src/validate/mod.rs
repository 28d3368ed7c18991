//! Validation of objects before they are stored (422 Invalid causes), for
//! the common mistakes and immutable fields of the built-in kinds.

pub mod names;
mod workloads;

use serde_json::Value;

use crate::error::{Cause, field};
use crate::registry::ResourceType;
use crate::util::{get_path, get_str, meta_str};
use names::NameRule;

/// Largest ConfigMap / Secret payload (1 MiB).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
/// Largest total annotation size (256 KiB).
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

/// Every validation failure of `obj` (`old`: the stored object on update).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    metadata(rt, obj, &mut out);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") => config_map(obj, old, &mut out),
        ("", "Secret") => secret(obj, old, &mut out),
        ("", "Service") => workloads::service(obj, old, &mut out),
        ("", "PersistentVolumeClaim") => pvc(obj, &mut out),
        ("", "Pod") => {
            workloads::pod_template(Some(obj), "", &["Always", "OnFailure", "Never"], &mut out)
        }
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            workloads::apps(&rt.kind, obj, old, &mut out);
        }
        ("batch", "Job") => workloads::job(obj, old, &mut out),
        ("batch", "CronJob") => workloads::cronjob(obj, &mut out),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            role_binding(obj, old, &mut out);
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj, old, &mut out),
        _ => {}
    }
    out
}

fn name_rule(rt: &ResourceType) -> NameRule {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

fn metadata(rt: &ResourceType, obj: &Value, out: &mut Vec<Cause>) {
    match meta_str(obj, "name") {
        None | Some("") => out.push(field::required_msg(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => out.extend(names::check_name(name_rule(rt), name, "metadata.name")),
    }
    if let Some(labels) = get_path(obj, &["metadata", "labels"]) {
        names::check_labels(labels, "metadata.labels", out);
    }
    if let Some(Value::Object(ann)) = get_path(obj, &["metadata", "annotations"]) {
        let mut size = 0;
        for (k, v) in ann {
            names::check_qualified_name(&k.to_ascii_lowercase(), "metadata.annotations", out);
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > MAX_ANNOTATIONS_SIZE {
            out.push(field::too_long(
                "metadata.annotations",
                MAX_ANNOTATIONS_SIZE,
            ));
        }
    }
}

fn data_size(obj: &Value, out: &mut Vec<Cause>) {
    let mut size = 0;
    for key in ["data", "binaryData"] {
        if let Some(Value::Object(m)) = obj.get(key) {
            for (k, v) in m {
                names::check_config_key(k, key, out);
                size += k.len() + v.as_str().map_or(0, str::len);
            }
        }
    }
    if size > MAX_DATA_SIZE {
        // Upstream reports this on the root path: `[]: Too long: ...`.
        out.push(field::too_long("[]", MAX_DATA_SIZE));
    }
}

fn immutable_data(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(old) = old else { return };
    if old.get("immutable") != Some(&Value::Bool(true)) {
        return;
    }
    for key in ["data", "binaryData"] {
        if obj.get(key) != old.get(key) {
            out.push(field::forbidden(
                key,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if obj.get("immutable") != Some(&Value::Bool(true)) {
        out.push(field::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
}

fn config_map(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    data_size(obj, out);
    immutable_data(obj, old, out);
}

fn secret(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    data_size(obj, out);
    immutable_data(obj, old, out);
    if let Some(old) = old
        && old.get("type") != obj.get("type")
    {
        out.push(field::immutable(
            "type",
            obj.get("type").unwrap_or(&Value::Null),
        ));
    }
}

fn pvc(obj: &Value, out: &mut Vec<Cause>) {
    if get_path(obj, &["spec", "accessModes"])
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        out.push(field::required_msg(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    if get_path(obj, &["spec", "resources", "requests", "storage"]).is_none() {
        out.push(field::required("spec.resources[storage]"));
    }
}

fn role_binding(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(role_ref) = obj.get("roleRef") else {
        out.push(field::required("roleRef"));
        return;
    };
    for f in ["kind", "name"] {
        if get_str(role_ref, &[f]).is_none_or(str::is_empty) {
            out.push(field::required(&format!("roleRef.{f}")));
        }
    }
    if let Some(old) = old
        && old.get("roleRef") != Some(role_ref)
    {
        out.push(field::invalid("roleRef", role_ref, "cannot change roleRef"));
    }
}

fn crd(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let group = get_str(obj, &["spec", "group"]).unwrap_or_default();
    let plural = get_str(obj, &["spec", "names", "plural"]).unwrap_or_default();
    let name = meta_str(obj, "name").unwrap_or_default();
    if group.is_empty() {
        out.push(field::required("spec.group"));
    } else if !group.contains('.') {
        out.push(field::invalid(
            "spec.group",
            &Value::String(group.into()),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        out.push(field::required("spec.names.plural"));
    }
    if get_str(obj, &["spec", "names", "kind"]).is_none_or(str::is_empty) {
        out.push(field::required("spec.names.kind"));
    }
    if name != format!("{plural}.{group}") {
        let v = Value::String(name.to_string());
        out.push(field::invalid(
            "metadata.name",
            &v,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = obj
        .get("spec")
        .and_then(|s| s.get("scope"))
        .cloned()
        .unwrap_or(Value::Null);
    if !matches!(scope.as_str(), Some("Namespaced" | "Cluster")) {
        out.push(field::not_supported(
            "spec.scope",
            &scope,
            &["Cluster", "Namespaced"],
        ));
    }
    if let Some(old) = old
        && get_path(old, &["spec", "scope"]) != Some(&scope)
    {
        out.push(field::immutable("spec.scope", &scope));
    }
    crd_versions(obj, out);
}

fn crd_versions(obj: &Value, out: &mut Vec<Cause>) {
    let versions = get_path(obj, &["spec", "versions"]).and_then(Value::as_array);
    let Some(versions) = versions.filter(|v| !v.is_empty()) else {
        out.push(field::required_msg(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    };
    let storage = versions
        .iter()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .count();
    if storage != 1 {
        let v = Value::Array(versions.clone());
        out.push(field::invalid(
            "spec.versions",
            &v,
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if get_str(v, &["name"]).is_none_or(str::is_empty) {
            out.push(field::required(&format!("spec.versions[{i}].name")));
        }
        if get_path(v, &["schema", "openAPIV3Schema"]).is_none() {
            out.push(field::required_msg(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn config_map_limits() {
        let reg = Registry::new();
        let rt = reg.by_kind("", "ConfigMap").unwrap();
        let big = "x".repeat(MAX_DATA_SIZE + 1);
        let errs = validate(
            &rt,
            &json!({"metadata": {"name": "Bad_Name"}, "data": {"k": big, "bad key": "v"}}),
            None,
        );
        let fields: Vec<&str> = errs.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "data", "[]"]);
    }

    #[test]
    fn crd_rules() {
        let reg = Registry::new();
        let rt = reg
            .by_kind("apiextensions.k8s.io", "CustomResourceDefinition")
            .unwrap();
        let ok = json!({"metadata": {"name": "foos.ex.com"}, "spec": {"group": "ex.com", "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        assert!(validate(&rt, &ok, None).is_empty());
        let mut bad = ok.clone();
        bad["metadata"]["name"] = json!("bars.ex.com");
        bad["spec"]["scope"] = json!("Cluster");
        let errs = validate(&rt, &bad, Some(&ok));
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
