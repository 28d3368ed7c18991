//! CustomResourceDefinitions: the kinds they define, their status, and the
//! effect of creating / deleting them on the registry and store.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::cluster::State;
use crate::fieldmanager::ListKeys;
use crate::registry::{CrdInfo, ResKey, ResourceType, ScalePaths, sort_versions};
use crate::schema::builtin::OBJECT_META;
use crate::util::{get_path, get_str, meta_str, now_rfc3339};

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The CRD's `scale` subresource paths.
fn scale_paths(sc: &Value) -> ScalePaths {
    let path = |k: &str| get_str(sc, &[k]).map(|p| p.trim_start_matches('.').to_string());
    ScalePaths {
        spec_replicas: path("specReplicasPath").unwrap_or_else(|| "spec.replicas".into()),
        status_replicas: path("statusReplicasPath").unwrap_or_else(|| "status.replicas".into()),
        label_selector: path("labelSelectorPath"),
    }
}

/// Served versions (sorted by priority), filling in the per-version parts
/// of `info`, and the scale subresource if any version has one.
fn served_versions(spec: &Value, info: &mut CrdInfo) -> (Vec<String>, Option<ScalePaths>) {
    let mut versions = Vec::new();
    let mut scale = None;
    let all = spec.get("versions").and_then(Value::as_array);
    for v in all.into_iter().flatten() {
        let Some(name) = get_str(v, &["name"]) else {
            continue;
        };
        if v.get("served") != Some(&Value::Bool(true)) {
            continue;
        }
        versions.push(name.to_string());
        if let Some(s) = get_path(v, &["schema", "openAPIV3Schema"]) {
            info.schemas.insert(name.to_string(), s.clone());
        }
        if let Some(Value::Array(cols)) = v.get("additionalPrinterColumns") {
            info.printer_columns.insert(name.to_string(), cols.clone());
        }
        if get_path(v, &["subresources", "status"]).is_some() {
            info.status_versions.push(name.to_string());
        }
        if let Some(sc) = get_path(v, &["subresources", "scale"]) {
            scale = Some(scale_paths(sc));
        }
    }
    sort_versions(&mut versions);
    (versions, scale)
}

/// The resource type a CRD defines (None if it is malformed).
pub fn resource_type(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let kind = get_str(names, &["kind"])?.to_string();
    let mut info = CrdInfo {
        crd_name: meta_str(crd, "name").unwrap_or_default().to_string(),
        schemas: BTreeMap::new(),
        printer_columns: BTreeMap::new(),
        status_versions: Vec::new(),
    };
    let (versions, scale) = served_versions(spec, &mut info);
    let has_status = !info.status_versions.is_empty();
    let list_keys = versions
        .first()
        .and_then(|v| info.schemas.get(v))
        .map(ListKeys::from_openapi_schema)
        .unwrap_or_default()
        .with_status_subresource(has_status);
    Some(ResourceType {
        group: get_str(spec, &["group"])?.to_string(),
        plural: get_str(names, &["plural"])?.to_string(),
        singular: get_str(names, &["singular"])
            .map_or_else(|| kind.to_ascii_lowercase(), str::to_string),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        namespaced: get_str(spec, &["scope"]) != Some("Cluster"),
        has_status,
        tracks_generation: true,
        versions: Some(versions).filter(|v| !v.is_empty())?,
        kind,
        list_keys,
        crd: Some(info),
        scale,
        verbs: crate::registry::Verbs::Full,
    })
}

/// The schema a custom resource is checked against: the version's
/// `openAPIV3Schema` with `apiVersion`, `kind` and `metadata` as the real
/// server adds them.
pub fn cr_root_schema(schema: &Value) -> Value {
    let mut root = schema.clone();
    if let Some(m) = root.as_object_mut() {
        let props = m
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            p.insert(
                "metadata".into(),
                json!({"$ref": format!("#/components/schemas/{OBJECT_META}")}),
            );
        }
    }
    root
}

/// Sets the status the apiextensions controllers would: names accepted,
/// established, stored versions. Transition times carry over from `old`.
pub fn set_status(crd: &mut Value, old: Option<&Value>) {
    let names = get_path(crd, &["spec", "names"])
        .cloned()
        .unwrap_or(Value::Null);
    let storage = get_path(crd, &["spec", "versions"])
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage") == Some(&Value::Bool(true)))
        })
        .and_then(|v| get_str(v, &["name"]))
        .map(str::to_string);
    let mut stored = strings(old.and_then(|o| get_path(o, &["status", "storedVersions"])));
    if let Some(s) = storage
        && !stored.contains(&s)
    {
        stored.push(s);
    }
    let since = |ty: &str| {
        old.and_then(|o| get_path(o, &["status", "conditions"]))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| get_str(c, &["type"]) == Some(ty)))
            .and_then(|c| get_str(c, &["lastTransitionTime"]))
            .map(str::to_string)
            .unwrap_or_else(now_rfc3339)
    };
    let status = json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": since("NamesAccepted"),
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": since("Established"),
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": stored,
    });
    if let Some(m) = crd.as_object_mut() {
        m.insert("status".into(), status);
    }
}

/// Registers (or re-registers) the kind of a stored CRD.
pub fn on_stored(state: &mut State, crd: &Value) {
    if let Some(rt) = resource_type(crd) {
        state.registry.insert(rt);
    }
}

/// Deletes every object of a removed CRD's kind, then the kind itself.
pub fn on_deleted(state: &mut State, crd: &Value) {
    let (Some(group), Some(plural)) = (
        get_str(crd, &["spec", "group"]),
        get_str(crd, &["spec", "names", "plural"]),
    ) else {
        return;
    };
    let key = ResKey::new(group, plural);
    if state.registry.get(&key).is_none_or(|rt| rt.crd.is_none()) {
        return;
    }
    let objs = state.store.list(&key, None);
    for o in objs {
        let ns = meta_str(&o, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&o, "name").unwrap_or_default().to_string();
        state.store.delete(&key, &ns, &name);
    }
    state.registry.remove(&key);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.ex.com"}, "spec": {"group": "ex.com", "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v0", "served": false, "storage": false}]}})
    }

    #[test]
    fn type_from_crd() {
        let rt = resource_type(&crd()).unwrap();
        assert_eq!(rt.versions, ["v1", "v1beta1"]);
        assert!(!rt.namespaced);
        assert_eq!(rt.singular, "widget");
        assert!(rt.status_subresource("v1"));
        assert!(!rt.status_subresource("v1beta1"));
    }

    #[test]
    fn status_keeps_times() {
        let mut c = crd();
        let mut old = crd();
        set_status(&mut old, None);
        old["status"]["conditions"][0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_status(&mut c, Some(&old));
        assert_eq!(
            c["status"]["conditions"][0]["lastTransitionTime"],
            json!("2020-01-01T00:00:00Z")
        );
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c["status"]["acceptedNames"]["kind"], json!("Widget"));
    }
}
