//! Answers to the create-only resources (TokenReview, the access reviews,
//! SelfSubjectReview, Binding), shaped as the real server's (see the
//! reference captures under `reviews/`). kubesim has one user, an admin
//! (`system:masters`) that may do everything; a request impersonating
//! another identity (see [`crate::rbac`]) gets that identity's answers: the
//! self reviews are evaluated with RBAC for it, as `kubectl auth can-i
//! --as=…` expects, and a SubjectAccessReview for the user it names.
//!
//! Nothing here is stored except what a Binding does to its pod.

use serde_json::{Value, json};

use crate::cluster::{State, Target};
use crate::error::ApiError;
use crate::rbac::{self, Identity};
use crate::registry::ResKey;
use crate::util::{get_str, meta_str, now_rfc3339};

/// The response body and status code of a create on a create-only
/// resource, made by `who`.
pub fn answer(
    state: &mut State,
    t: &Target,
    mut obj: Value,
    who: &Identity,
) -> Result<(u16, Value), ApiError> {
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
            json!({"userInfo": {"username": who.user, "groups": who.groups}})
        }
        "SelfSubjectRulesReview" if who.is_master() => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        "SelfSubjectRulesReview" => {
            let ns = get_str(&obj, &["spec", "namespace"]).unwrap_or_default();
            json!({
                "resourceRules": rbac::rules_for(&state.store, who, ns),
                "nonResourceRules": [],
                "incomplete": false,
            })
        }
        "SelfSubjectAccessReview" => access(&state.store, who, &obj, t),
        // SubjectAccessReview, LocalSubjectAccessReview.
        _ => {
            let subject = Identity {
                user: get_str(&obj, &["spec", "user"])
                    .unwrap_or_default()
                    .to_string(),
                groups: obj["spec"]["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            access(&state.store, &subject, &obj, t)
        }
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

/// The status of an access review of `spec.resourceAttributes` for `who`
/// (a LocalSubjectAccessReview is about its own namespace).
fn access(store: &crate::store::Store, who: &Identity, obj: &Value, t: &Target) -> Value {
    let ra = |k: &str| {
        get_str(obj, &["spec", "resourceAttributes", k])
            .unwrap_or_default()
            .to_string()
    };
    let mut a = rbac::Attributes {
        verb: ra("verb"),
        group: ra("group"),
        resource: ra("resource"),
        subresource: ra("subresource"),
        namespace: ra("namespace"),
        name: ra("name"),
        path: String::new(),
    };
    if t.rt.kind == "LocalSubjectAccessReview" {
        a.namespace = t.ns().to_string();
    }
    if obj["spec"].get("resourceAttributes").is_none() {
        let nra = |k: &str| {
            get_str(obj, &["spec", "nonResourceAttributes", k])
                .unwrap_or_default()
                .to_string()
        };
        a.verb = nra("verb");
        a.path = nra("path");
    }
    if who.is_master() {
        return json!({"allowed": true});
    }
    match rbac::authorize(store, who, &a) {
        rbac::Decision::Allowed(reason) => json!({"allowed": true, "reason": reason}),
        rbac::Decision::Denied(reason) if reason.is_empty() => json!({"allowed": false}),
        rbac::Decision::Denied(reason) => json!({"allowed": false, "reason": reason}),
    }
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
