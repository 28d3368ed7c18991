//! Helpers shared by the apply scenario tests.

use serde_json::{Value, json};

use super::{ConflictCause, FieldManagerError, ListKeys};

pub(crate) const T1: &str = "2024-01-01T00:00:00Z";
pub(crate) const T2: &str = "2024-01-02T00:00:00Z";
pub(crate) const T3: &str = "2024-01-03T00:00:00Z";

pub(crate) fn cm_keys() -> ListKeys {
    ListKeys::builtin("", "ConfigMap")
}

pub(crate) fn deploy_keys() -> ListKeys {
    ListKeys::builtin("apps", "Deployment")
}

pub(crate) fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}, "data": data})
}

pub(crate) fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

pub(crate) fn pod_spec(containers: Value) -> Value {
    json!({"template": {"spec": {"containers": containers}}})
}

pub(crate) fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

pub(crate) fn fields<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    &entry(obj, manager, operation).expect("entry")["fieldsV1"]
}

pub(crate) fn conflicts(result: Result<Value, FieldManagerError>) -> Vec<ConflictCause> {
    match result {
        Err(FieldManagerError::Conflict(causes)) => causes,
        other => panic!("expected a conflict, got {other:?}"),
    }
}
