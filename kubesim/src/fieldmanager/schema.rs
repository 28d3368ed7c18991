//! The merge-relevant part of a kind's schema: which lists are sets or maps
//! (and by which keys), which maps are atomic, which map keys are declared
//! struct fields, and what the Go zero value of a built-in object looks like.
//! Everything not described is a granular struct whose lists are atomic,
//! which is what the API server assumes for unannotated fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::builtin;

/// How a list merges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced as a whole (the default).
    #[default]
    Atomic,
    /// `x-kubernetes-list-type: set`: scalar elements, unioned.
    Set,
    /// `x-kubernetes-list-type: map`: elements merged by these key fields.
    Map(Vec<String>),
}

/// What a field holds in the Go zero value of a built-in object (only
/// `update` on create looks at it: fields present there are not "created",
/// so they get no `.` entry, like `f:spec` of a Deployment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Zero {
    #[default]
    Absent,
    /// A non-pointer struct: `{}`.
    Struct,
    /// A non-omitempty slice or pointer: `null`.
    Null,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// Declared struct fields.
    pub(crate) fields: BTreeMap<String, Node>,
    /// List items, or the values of undeclared map keys.
    pub(crate) elem: Option<Box<Node>>,
    pub(crate) list: ListType,
    pub(crate) atomic_map: bool,
    /// Keys not in `fields` are map keys (labels, additionalProperties).
    pub(crate) free_keys: bool,
    /// Unknown keys hold schemaless data (`x-kubernetes-preserve-unknown-fields`).
    pub(crate) deduced: bool,
    /// Default used when this field is a missing list-map key.
    pub(crate) default: Option<Value>,
    pub(crate) zero: Zero,
}

/// A field with no schema information: granular map, atomic lists.
static PLAIN: Node = Node {
    fields: BTreeMap::new(),
    elem: None,
    list: ListType::Atomic,
    atomic_map: false,
    free_keys: false,
    deduced: false,
    default: None,
    zero: Zero::Absent,
};

/// Schemaless data: structured-merge-diff's `__untyped_deduced_`.
static DEDUCED: Node = Node {
    fields: BTreeMap::new(),
    elem: None,
    list: ListType::Atomic,
    atomic_map: false,
    free_keys: true,
    deduced: true,
    default: None,
    zero: Zero::Absent,
};

impl Node {
    /// The schema of map key `key`, and whether it is a declared struct field
    /// (rather than a key of a free-form map).
    pub(crate) fn child(&self, key: &str) -> (&Node, bool) {
        if let Some(n) = self.fields.get(key) {
            return (n, true);
        }
        if self.deduced {
            return (&DEDUCED, false);
        }
        if let Some(e) = &self.elem {
            return (e, false);
        }
        (&PLAIN, !self.free_keys)
    }

    /// The schema of list items.
    pub(crate) fn item(&self) -> &Node {
        match &self.elem {
            Some(e) => e,
            None if self.deduced => &DEDUCED,
            None => &PLAIN,
        }
    }

    /// The node at a dotted path, created on the way; `name[]` steps into
    /// the items of list `name`.
    pub(crate) fn at(&mut self, path: &str) -> &mut Node {
        let mut node = self;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            match seg.strip_suffix("[]") {
                Some(name) => {
                    let list = node.fields.entry(name.to_string()).or_default();
                    node = list.elem.get_or_insert_with(Box::default);
                }
                None => node = node.fields.entry(seg.to_string()).or_default(),
            }
        }
        node
    }

    /// The Go zero value of this struct: fields marked [`Zero::Struct`] or
    /// [`Zero::Null`], recursively.
    pub(crate) fn zero_value(&self) -> Value {
        let mut m = Map::new();
        for (k, n) in &self.fields {
            match n.zero {
                Zero::Struct => {
                    m.insert(k.clone(), n.zero_value());
                }
                Zero::Null => {
                    m.insert(k.clone(), Value::Null);
                }
                Zero::Absent => {}
            }
        }
        Value::Object(m)
    }
}

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
        let mut root = from_schema(schema, 0);
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

/// The merge semantics an OpenAPI v3 schema (resolved, no `$ref`) declares.
pub(crate) fn node_from_schema(schema: &Value) -> Node {
    from_schema(schema, 0)
}

/// Nesting guard for hostile schemas.
const MAX_DEPTH: usize = 64;

fn from_schema(s: &Value, depth: usize) -> Node {
    let mut n = Node::default();
    if depth > MAX_DEPTH {
        n.deduced = true;
        n.free_keys = true;
        return n;
    }
    n.default = s.get("default").cloned();
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            n.fields.insert(k.clone(), from_schema(v, depth + 1));
        }
    }
    match s.get("additionalProperties") {
        Some(extra @ Value::Object(_)) => {
            n.free_keys = true;
            n.elem = Some(Box::new(from_schema(extra, depth + 1)));
        }
        Some(Value::Bool(true)) => {
            n.free_keys = true;
            n.deduced = true;
        }
        _ => {}
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        n.free_keys = true;
        n.deduced = n.elem.is_none();
    }
    if s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
        n.atomic_map = true;
    }
    if let Some(items) = s.get("items") {
        n.elem = Some(Box::new(from_schema(items, depth + 1)));
    }
    n.list = list_type(s);
    n
}

fn list_type(s: &Value) -> ListType {
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => {
            let keys = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|ks| {
                    ks.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            ListType::Map(keys)
        }
        _ => ListType::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn the_zero_value_holds_non_pointer_structs_and_null_slices() {
        let mut root = Node::default();
        root.at("spec").zero = Zero::Struct;
        root.at("spec.template").zero = Zero::Struct;
        root.at("spec.template.containers").zero = Zero::Null;
        root.at("spec.replicas");
        assert_eq!(
            root.zero_value(),
            json!({"spec": {"template": {"containers": null}}})
        );
    }
}
