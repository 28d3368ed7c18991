//! Answers to the create-only resources (TokenReview, the access reviews,
//! SelfSubjectReview, Binding), shaped as the real server's (see the
//! reference captures under `reviews/`). kubesim has one user, an admin
//! (`system:masters`) that may do everything, so every access review is
//! allowed.
//!
//! Nothing here is stored except what a Binding does to its pod.

use serde_json::{Value, json};

use crate::cluster::{State, Target};
use crate::error::ApiError;
use crate::registry::ResKey;
use crate::util::{get_str, meta_str, now_rfc3339};

/// The user kubesim authenticates every client as.
const USER: &str = "admin";
const GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// The response body and status code of a create on a create-only resource.
pub fn answer(state: &mut State, t: &Target, mut obj: Value) -> Result<(u16, Value), ApiError> {
    let status = match t.rt.kind.as_str() {
        "Binding" => return bind(state, t, &obj).map(|s| (201, s)),
        "TokenReview" => json!({
            "user": {},
            "error": "[invalid bearer token, kubesim issues no tokens]",
        }),
        "SelfSubjectReview" => {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            }
            json!({"userInfo": {"username": USER, "groups": GROUPS}})
        }
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        // SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview.
        _ => json!({"allowed": true, "reason": "kubesim allows every request"}),
    };
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), status);
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
    Ok((201, obj))
}

/// `bindings`: assigns the named pod to the target node, once.
fn bind(state: &mut State, t: &Target, obj: &Value) -> Result<Value, ApiError> {
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let node = get_str(obj, &["target", "name"]).unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            vec![crate::error::Cause::new(
                "FieldValueRequired",
                "Required value",
                "target.name",
            )],
        ));
    }
    let key = ResKey::new("", "pods");
    let Some(pod) = state.store.get(&key, t.ns(), &name) else {
        return Err(ApiError::not_found("", "pods", &name));
    };
    if let Some(bound) = get_str(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty()) {
        return Err(ApiError::conflict(
            "",
            "pods/binding",
            &name,
            &format!("pod {name} is already assigned to node \"{bound}\""),
        ));
    }
    let mut pod = (*pod).clone();
    crate::util::set_path(&mut pod, &["spec", "nodeName"], json!(node));
    state.store.put(&key, pod);
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}
