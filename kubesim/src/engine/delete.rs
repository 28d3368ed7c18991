//! Deletion: finalizers, namespace termination, CRD removal and
//! ownerReference garbage collection (done at once, synchronously).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::{State, Target, WriteOutcome, at_version};
use crate::crd;
use crate::error::ApiError;
use crate::registry::{ResKey, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::util::{self, get_path, meta_str, now_rfc3339};

/// DeleteOptions that matter here.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

fn is_namespace(key: &ResKey) -> bool {
    key.group.is_empty() && key.resource == "namespaces"
}

fn is_crd(key: &ResKey) -> bool {
    key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions"
}

/// Kinds whose DELETE answers with the object rather than a Status.
fn returns_object(rt: &ResourceType) -> bool {
    rt.is_custom() || is_namespace(&rt.key()) || is_crd(&rt.key())
}

fn has_finalizers(obj: &Value) -> bool {
    get_path(obj, &["metadata", "finalizers"])
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// A deleted object whose last finalizer is gone.
pub fn finalizers_done(obj: &Value) -> bool {
    get_path(obj, &["metadata", "deletionTimestamp"]).is_some() && !has_finalizers(obj)
}

/// Completes the deletion of `obj` (its finalizers were just removed).
pub fn finalize(state: &mut State, t: &Target, obj: &Value) -> Value {
    let key = t.rt.key();
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let last = at_version(obj, &t.rt, t.rt.storage_version());
    let out = remove(state, &key, t.ns(), &name, None, Some(last));
    out.map(|o| at_version(&o, &t.rt, &t.version))
        .unwrap_or_else(|| obj.clone())
}

fn success_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details = json!({"name": meta_str(obj, "name").unwrap_or_default()});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    details["kind"] = json!(rt.plural);
    details["uid"] = json!(meta_str(obj, "uid").unwrap_or_default());
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn check_preconditions(t: &Target, obj: &Value, opts: &DeleteOpts) -> Result<(), ApiError> {
    let name = meta_str(obj, "name").unwrap_or_default();
    let uid = meta_str(obj, "uid").unwrap_or_default();
    let rv = meta_str(obj, "resourceVersion").unwrap_or_default();
    if let Some(p) = opts.precondition_uid.as_deref().filter(|p| *p != uid) {
        let d = format!("Precondition failed: UID in precondition: {p}, UID in object meta: {uid}");
        return Err(ApiError::conflict(&t.rt.group, &t.rt.plural, name, &d));
    }
    if let Some(p) = opts.precondition_rv.as_deref().filter(|p| *p != rv) {
        let d = format!(
            "Precondition failed: ResourceVersion in precondition: {p}, ResourceVersion in object meta: {rv}"
        );
        return Err(ApiError::conflict(&t.rt.group, &t.rt.plural, name, &d));
    }
    Ok(())
}

/// DELETE of one object.
pub fn delete(
    state: &mut State,
    t: &Target,
    name: &str,
    opts: &DeleteOpts,
) -> Result<WriteOutcome, ApiError> {
    if t.status {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let key = t.rt.key();
    let Some(obj) = state.store.get(&key, t.ns(), name) else {
        return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name));
    };
    let obj = at_version(&obj, &t.rt, &t.version);
    check_preconditions(t, &obj, opts)?;
    let object = if opts.dry_run {
        dry_run_answer(t, &obj)
    } else if is_namespace(&key) {
        terminate_namespace(state, &t.rt, &obj)
    } else if has_finalizers(&obj) {
        mark_deleting(state, &key, &obj).map_or(obj, |o| at_version(&o, &t.rt, &t.version))
    } else {
        let gone = remove(state, &key, t.ns(), name, opts.propagation.as_deref(), None);
        answer(t, gone.map_or(obj, |g| at_version(&g, &t.rt, &t.version)))
    };
    Ok(WriteOutcome {
        object,
        code: 200,
        warnings: Vec::new(),
    })
}

/// The deleted object, or a Status for kinds that answer with one.
fn answer(t: &Target, last: Value) -> Value {
    if returns_object(&t.rt) {
        last
    } else {
        success_status(&t.rt, &last)
    }
}

/// What a deletion would answer, without deleting.
fn dry_run_answer(t: &Target, obj: &Value) -> Value {
    if has_finalizers(obj) || is_namespace(&t.rt.key()) {
        marked(&t.rt, obj)
    } else {
        answer(t, obj.clone())
    }
}

/// DELETE on a collection: deletes every matching object, returns them.
pub fn delete_collection(
    state: &mut State,
    t: &Target,
    labels: &LabelSelector,
    fields: &FieldSelector,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let key = t.rt.key();
    let matching: Vec<Value> = state
        .store
        .list(&key, t.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .map(|o| at_version(&o, &t.rt, &t.version))
        .collect();
    let mut items = Vec::new();
    for obj in matching {
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let sub = Target {
            namespace: Some(ns).filter(|n| !n.is_empty()),
            ..t.clone()
        };
        items.push(delete(state, &sub, &name, opts)?.object);
    }
    Ok(json!({
        "kind": t.rt.list_kind(),
        "apiVersion": t.rt.api_version(&t.version),
        "metadata": {"resourceVersion": state.store.current_rv().to_string()},
        "items": items,
    }))
}

/// `obj` with deletionTimestamp set (generation bumped for spec kinds).
fn marked(rt: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if get_path(&out, &["metadata", "deletionTimestamp"]).is_some() {
        return out;
    }
    let m = util::ensure_object(&mut out, &["metadata"]);
    m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
    if rt.tracks_generation {
        let g = m.get("generation").and_then(Value::as_i64).unwrap_or(1);
        m.insert("generation".into(), json!(g + 1));
    }
    if is_namespace(&rt.key()) {
        util::set_path(&mut out, &["status", "phase"], json!("Terminating"));
    }
    out
}

/// Sets deletionTimestamp on an object that has finalizers.
fn mark_deleting(state: &mut State, key: &ResKey, obj: &Value) -> Option<Arc<Value>> {
    let rt = state.registry.get(key)?;
    if get_path(obj, &["metadata", "deletionTimestamp"]).is_some() {
        return None;
    }
    let m = marked(&rt, obj);
    Some(
        state
            .store
            .put(key, at_version(&m, &rt, rt.storage_version())),
    )
}

/// The namespace controller: the namespace goes Terminating, its content
/// is deleted, and it disappears once empty.
fn terminate_namespace(state: &mut State, rt: &ResourceType, ns_obj: &Value) -> Value {
    let ns = meta_str(ns_obj, "name").unwrap_or_default().to_string();
    let key = rt.key();
    let current = mark_deleting(state, &key, ns_obj)
        .map(|o| (*o).clone())
        .unwrap_or_else(|| ns_obj.clone());
    for (k, name) in state.store.keys_in_namespace(&ns) {
        delete_or_mark(state, &k, &ns, &name, None);
    }
    maybe_finish_namespace(state, &ns);
    current
}

fn maybe_finish_namespace(state: &mut State, ns: &str) {
    let key = ResKey::new("", "namespaces");
    let terminating = state
        .store
        .get(&key, "", ns)
        .is_some_and(|o| get_path(&o, &["metadata", "deletionTimestamp"]).is_some());
    if terminating && state.store.keys_in_namespace(ns).is_empty() {
        state.store.delete(&key, "", ns);
    }
}

fn delete_or_mark(
    state: &mut State,
    key: &ResKey,
    ns: &str,
    name: &str,
    propagation: Option<&str>,
) {
    let Some(obj) = state.store.get(key, ns, name) else {
        return;
    };
    if has_finalizers(&obj) {
        mark_deleting(state, key, &obj);
    } else {
        remove(state, key, ns, name, propagation, None);
    }
}

/// Removes an object and runs what follows: CRD kinds go away, dependents
/// are collected (or orphaned), an emptied terminating namespace goes.
fn remove(
    state: &mut State,
    key: &ResKey,
    ns: &str,
    name: &str,
    propagation: Option<&str>,
    last: Option<Value>,
) -> Option<Arc<Value>> {
    let gone = state.store.delete_as(key, ns, name, last)?;
    if is_crd(key) {
        crd::on_deleted(state, &gone);
    }
    if let Some(uid) = meta_str(&gone, "uid") {
        collect_dependents(state, uid, propagation == Some("Orphan"));
    }
    if is_namespace(key) {
        return Some(gone);
    }
    if !ns.is_empty() {
        maybe_finish_namespace(state, ns);
    }
    Some(gone)
}

/// The garbage collector: dependents of a deleted owner are deleted, or
/// with `Orphan` propagation lose their ownerReference.
fn collect_dependents(state: &mut State, owner_uid: &str, orphan: bool) {
    let owned_by = |o: &Value| {
        get_path(o, &["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
            })
    };
    let deps: Vec<(ResKey, String, String, Value)> = state
        .store
        .iter_all()
        .filter(|(_, _, _, o)| owned_by(o))
        .map(|(k, ns, n, o)| (k.clone(), ns.to_string(), n.to_string(), (**o).clone()))
        .collect();
    for (key, ns, name, mut obj) in deps {
        if orphan {
            if let Some(Value::Array(refs)) = obj
                .get_mut("metadata")
                .and_then(|m| m.get_mut("ownerReferences"))
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            state.store.put(&key, obj);
        } else {
            delete_or_mark(state, &key, &ns, &name, None);
        }
    }
}
