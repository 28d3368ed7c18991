//! [`ListKeys`]: the merge schema of one kind, as the rest of field
//! management sees it: the built-in tree (`builtin`) or the tree a CRD's
//! schema declares (`schema`), plus the status-subresource flag. It only
//! picks and wraps trees; it must not derive them.

use std::sync::Arc;

use serde_json::Value;

use super::builtin;
use super::schema::{Node, node_from_schema};

/// Describes the list semantics of one kind. Built by the resource registry
/// (built-in kinds: the well-known keys; CRDs: `x-kubernetes-list-type` /
/// `x-kubernetes-list-map-keys` from the CRD schema).
///
/// It also says whether the kind has a `status` subresource: if so, `status`
/// is not a field of the main resource for field management (an apply to the
/// main resource neither owns nor changes it, an update does not record it).
/// [`ListKeys::builtin`] sets it for the built-in kinds that have one; for
/// CRDs call [`ListKeys::with_status_subresource`] with the CRD's
/// `subresources.status` presence.
#[derive(Debug, Clone, Default)]
pub struct ListKeys {
    root: Arc<Node>,
    status_subresource: bool,
}

impl ListKeys {
    /// The list semantics for a built-in kind (`group` "" for core).
    pub fn builtin(group: &str, kind: &str) -> ListKeys {
        let (root, status_subresource) = builtin::root(group, kind);
        ListKeys {
            root: Arc::new(root),
            status_subresource,
        }
    }

    /// The list semantics declared in a CRD version's `openAPIV3Schema`:
    /// `x-kubernetes-list-type` (`atomic`, the default, `set`, `map`),
    /// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type: atomic`,
    /// `additionalProperties` and `x-kubernetes-preserve-unknown-fields`.
    /// `metadata` always gets the ObjectMeta semantics, as on the server.
    pub fn from_openapi_schema(schema: &Value) -> ListKeys {
        let mut root = node_from_schema(schema);
        root.fields
            .insert("metadata".to_string(), builtin::object_meta());
        ListKeys {
            root: Arc::new(root),
            status_subresource: false,
        }
    }

    /// Declare whether the kind has a `status` subresource.
    pub fn with_status_subresource(mut self, has_status_subresource: bool) -> ListKeys {
        self.status_subresource = has_status_subresource;
        self
    }

    /// Whether `status` is ignored by writes to the main resource.
    pub fn has_status_subresource(&self) -> bool {
        self.status_subresource
    }

    pub(crate) fn root(&self) -> &Node {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldmanager::schema::ListType;
    use serde_json::json;

    #[test]
    fn crd_list_annotations_become_list_types() {
        let keys = ListKeys::from_openapi_schema(&json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {"type": "object", "properties": {
                        "port": {"type": "integer"},
                        "protocol": {"type": "string", "default": "TCP"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                    "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"}
            }}}
        }));
        let spec = keys.root().child("spec").0;
        let ports = spec.child("ports").0;
        assert_eq!(
            ports.list,
            ListType::Map(vec!["port".into(), "protocol".into()])
        );
        assert_eq!(ports.item().child("protocol").0.default, Some(json!("TCP")));
        assert_eq!(spec.child("tags").0.list, ListType::Set);
        assert_eq!(spec.child("args").0.list, ListType::Atomic);
        assert!(spec.child("selector").0.atomic_map);
    }

    #[test]
    fn crd_metadata_gets_object_meta_semantics() {
        let keys = ListKeys::from_openapi_schema(&json!({"type": "object"}));
        let meta = keys.root().child("metadata").0;
        assert_eq!(meta.child("finalizers").0.list, ListType::Set);
        assert!(!meta.child("labels").0.child("app").1);
    }

    #[test]
    fn additional_properties_are_undeclared_map_keys() {
        let keys = ListKeys::from_openapi_schema(&json!({"properties": {"spec": {
            "properties": {"env": {"additionalProperties": {"type": "object"}}},
            "x-kubernetes-preserve-unknown-fields": true}}}));
        let spec = keys.root().child("spec").0;
        assert!(spec.child("env").1, "env is declared");
        assert!(!spec.child("env").0.child("FOO").1, "keys of env are not");
        assert!(!spec.child("unknown").1);
        assert!(spec.child("unknown").0.deduced);
    }
}
