//! The request engine: reads, the write pipeline (decode → merge → default
//! → field manager → validate → compare → store) and deletion. Everything
//! here runs under the state lock and never awaits.

pub mod delete;
pub mod read;
pub mod scale;
pub mod write;

use serde_json::{Map, Value};

use crate::cluster::{State, Target, at_version};
use crate::crd;
use crate::error::ApiError;
use crate::error::Cause;
use crate::fieldmanager::{self, FieldManagerError};
use crate::registry::ResourceType;
use crate::util::{self, get_path, meta_str};

/// Server-managed metadata a client may not set.
const SERVER_META: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Checks a request body is an object of the endpoint's kind and fills in
/// `apiVersion` / `kind` when absent.
pub fn prepare_body(t: &Target, body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut m) = body else {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in request body",
        ));
    };
    let want_av = t.rt.api_version(&t.version);
    match m.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("apiVersion".into(), Value::String(want_av));
        }
        Some(av) if av != want_av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
        Some(_) => {}
    }
    match m.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("kind".into(), Value::String(t.rt.kind.clone()));
        }
        Some(k) if k != t.rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                t.rt.kind
            )));
        }
        Some(_) => {}
    }
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".into(), Value::Object(Map::new()));
    }
    Ok(Value::Object(m))
}

/// Checks the body's name / namespace against the URL.
pub fn check_identity(t: &Target, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    match meta_str(obj, "name") {
        None | Some("") => util::set_path(obj, &["metadata", "name"], Value::String(name.into())),
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
    }
    set_namespace(t, obj)
}

/// Sets `metadata.namespace` from the URL (clears it for cluster scope).
pub fn set_namespace(t: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if !t.rt.namespaced {
        util::remove_path(obj, &["metadata", "namespace"]);
        return Ok(());
    }
    let ns = t.ns();
    match meta_str(obj, "namespace") {
        Some(n) if !n.is_empty() && n != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            util::set_path(obj, &["metadata", "namespace"], Value::String(ns.into()));
            Ok(())
        }
    }
}

pub fn strip_server_meta(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_META {
            m.remove(*k);
        }
    }
}

/// uid, creationTimestamp and (for spec kinds) generation 1.
pub fn stamp_new(rt: &ResourceType, obj: &mut Value) {
    let m = util::ensure_object(obj, &["metadata"]);
    m.insert("uid".into(), Value::String(util::new_uid()));
    m.insert(
        "creationTimestamp".into(),
        Value::String(util::now_rfc3339()),
    );
    if rt.tracks_generation {
        m.insert("generation".into(), Value::from(1));
    }
}

/// Copies the server-managed metadata of `old` onto `new`.
pub fn carry_server_meta(old: &Value, new: &mut Value) {
    let m = util::ensure_object(new, &["metadata"]);
    for k in SERVER_META {
        m.remove(*k);
        if let Some(v) = old.get("metadata").and_then(|om| om.get(*k)) {
            m.insert(k.to_string(), v.clone());
        }
    }
}

/// Bumps `metadata.generation` when anything outside metadata (and status,
/// for kinds with a status subresource) changed.
pub fn bump_generation(t: &Target, old: &Value, new: &mut Value) {
    if !t.rt.tracks_generation {
        return;
    }
    let status_sub = t.rt.status_subresource(&t.version);
    let spec_of = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        let server = matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
                        !(server || (status_sub && k.as_str() == "status"))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_gen = get_path(old, &["metadata", "generation"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let deleting = get_path(new, &["metadata", "deletionTimestamp"]).is_some()
        && get_path(old, &["metadata", "deletionTimestamp"]).is_none();
    let next = if spec_of(old) != spec_of(new) || deleting {
        old_gen + 1
    } else {
        old_gen
    };
    util::set_path(new, &["metadata", "generation"], Value::from(next));
}

/// Equality ignoring managedFields timestamps: a write that changes
/// nothing else is not stored.
pub fn unchanged(old: &Value, new: &Value) -> bool {
    fn clear_times(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(Value::Array(mf)) = v
            .get_mut("metadata")
            .and_then(|m| m.get_mut("managedFields"))
        {
            for e in mf.iter_mut() {
                if let Some(m) = e.as_object_mut() {
                    m.remove("time");
                }
            }
        }
        v
    }
    clear_times(old) == clear_times(new)
}

/// Server-maintained status parts that writes cannot set.
pub fn server_status(t: &Target, obj: &mut Value, old: Option<&Value>) {
    match (t.rt.group.as_str(), t.rt.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::set_status(obj, old),
        ("", "PersistentVolumeClaim") if old.is_none() => {
            util::default_path(obj, &["status", "phase"], Value::String("Pending".into()));
        }
        (group, kind) if old.is_none() => {
            if let Some(status) = crate::defaults::initial_status(group, kind) {
                util::default_path(obj, &["status"], status);
            }
        }
        _ => {}
    }
}

/// Stores `obj` (at the storage version) and runs the side effects.
pub fn commit(state: &mut State, t: &Target, obj: &Value) -> Value {
    let stored = at_version(obj, &t.rt, t.rt.storage_version());
    let out = state.store.put(&t.rt.key(), stored);
    if t.rt.group == "apiextensions.k8s.io" && t.rt.kind == "CustomResourceDefinition" {
        crd::on_stored(state, &out);
    }
    at_version(&out, &t.rt, &t.version)
}

/// Maps field manager errors to the API errors the real server returns:
/// a conflict is 409 with one `FieldManagerConflict` cause per field and
/// upstream's `Apply failed with N conflict(s)` message (no details name).
pub fn manager_error(e: FieldManagerError) -> ApiError {
    match e {
        FieldManagerError::Invalid(msg) => ApiError::bad_request(msg),
        FieldManagerError::Conflict(causes) => {
            let mut err = ApiError::new(409, "Conflict", fieldmanager::conflict_message(&causes));
            err.causes = causes
                .iter()
                .map(|c| Cause::new("FieldManagerConflict", c.message(), c.field.clone()))
                .collect();
            err
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conflict_status() {
        let cause = crate::fieldmanager::ConflictCause {
            manager: "other".into(),
            field: ".data.key".into(),
            operation: "Update".into(),
            api_version: "v1".into(),
        };
        let e = manager_error(FieldManagerError::Conflict(vec![cause]));
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"other\" using v1: .data.key"
        );
        assert_eq!(e.causes[0].message, "conflict with \"other\" using v1");
        assert_eq!(
            e.to_status()["details"]["causes"][0]["reason"],
            json!("FieldManagerConflict")
        );
    }

    #[test]
    fn unchanged_ignores_times() {
        let a = json!({"metadata": {"managedFields": [{"manager": "m", "time": "1"}]}, "data": {"a": "1"}});
        let b = json!({"metadata": {"managedFields": [{"manager": "m", "time": "2"}]}, "data": {"a": "1"}});
        assert!(unchanged(&a, &b));
        let c = json!({"metadata": {"managedFields": [{"manager": "n", "time": "2"}]}, "data": {"a": "1"}});
        assert!(!unchanged(&a, &c));
    }
}
