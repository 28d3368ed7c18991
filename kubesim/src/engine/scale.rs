//! The `scale` subresource (`autoscaling/v1` Scale) of Deployments,
//! StatefulSets and custom resources that declare one.

use serde_json::{Value, json};

use super::write;
use crate::cluster::{State, Target, WriteOpts, WriteOutcome, at_version};
use crate::error::{ApiError, field};
use crate::patch::{self, PatchType};
use crate::registry::ScalePaths;
use crate::util::{get_path, meta_str};

fn paths(t: &Target) -> Result<&ScalePaths, ApiError> {
    t.rt.scale.as_ref().ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })
}

fn dotted<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let parts: Vec<&str> = path.split('.').collect();
    get_path(obj, &parts)
}

/// `metav1.LabelSelector` as the string form Scale carries.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_string()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.sort();
    parts.join(",")
}

/// The Scale view of an object.
fn scale_of(t: &Target, obj: &Value) -> Result<Value, ApiError> {
    let p = paths(t)?;
    let spec = dotted(obj, &p.spec_replicas).cloned().unwrap_or(json!(0));
    let status = dotted(obj, &p.status_replicas).cloned().unwrap_or(json!(0));
    let selector = match &p.label_selector {
        Some(path) => dotted(obj, path).cloned(),
        None => get_path(obj, &["spec", "selector"]).map(|s| json!(selector_string(s))),
    };
    let m = |k: &str| meta_str(obj, k).map(|v| json!(v)).unwrap_or(Value::Null);
    let mut status_obj = json!({"replicas": status});
    if let Some(sel) = selector {
        status_obj["selector"] = sel;
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m("name"), "namespace": m("namespace"), "uid": m("uid"),
                     "resourceVersion": m("resourceVersion"), "creationTimestamp": m("creationTimestamp")},
        "spec": {"replicas": spec},
        "status": status_obj,
    }))
}

pub fn get(state: &State, t: &Target, name: &str) -> Result<Value, ApiError> {
    let obj = super::read::get(state, t, name)?;
    scale_of(t, &obj)
}

/// PUT or PATCH of the scale: only the replica count changes.
pub fn write(
    state: &mut State,
    t: &Target,
    name: &str,
    change: ScaleChange<'_>,
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    let Some(obj) = state.store.get(&t.rt.key(), t.ns(), name) else {
        return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name));
    };
    let obj = at_version(&obj, &t.rt, &t.version);
    let current = scale_of(t, &obj)?;
    let new_scale = match change {
        ScaleChange::Replace(v) => v,
        ScaleChange::Patch(PatchType::Apply, body) => {
            let mut merged = current.clone();
            json_patch::merge(&mut merged, &patch::parse_yaml(body)?);
            merged
        }
        ScaleChange::Patch(ptype, body) => patch::apply_patch(ptype, &current, body, false)?,
    };
    let replicas = get_path(&new_scale, &["spec", "replicas"]).and_then(Value::as_i64);
    let Some(replicas) = replicas.filter(|r| *r >= 0) else {
        let v = get_path(&new_scale, &["spec", "replicas"])
            .cloned()
            .unwrap_or(Value::Null);
        let c = field::invalid("spec.replicas", &v, "must be greater than or equal to 0");
        return Err(ApiError::invalid("autoscaling", "Scale", name, vec![c]));
    };
    if let Some(rv) = meta_str(&new_scale, "resourceVersion").filter(|r| !r.is_empty())
        && Some(rv) != meta_str(&obj, "resourceVersion")
    {
        return Err(ApiError::stale(&t.rt.group, &t.rt.plural, name));
    }
    let mut spec_patch = json!({});
    let p = paths(t)?;
    crate::util::set_path(
        &mut spec_patch,
        &p.spec_replicas.split('.').collect::<Vec<_>>(),
        json!(replicas),
    );
    let body = serde_json::to_vec(&spec_patch).unwrap_or_default();
    let out = write::patch(state, t, name, PatchType::Merge, &body, opts)?;
    Ok(WriteOutcome {
        object: scale_of(t, &out.object)?,
        ..out
    })
}

pub enum ScaleChange<'a> {
    Replace(Value),
    Patch(PatchType, &'a [u8]),
}
