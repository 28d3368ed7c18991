//! The merge-relevant part of a kind's schema: which lists are sets or maps
//! (and by which keys), which maps are atomic, which map keys are declared
//! struct fields, and what the Go zero value of a built-in object looks like.
//! Everything not described is a granular struct whose lists are atomic,
//! which is what the API server assumes for unannotated fields.
//!
//! This is the bottom of the schema modules: it reads OpenAPI schemas into
//! [`Node`] trees and must not know any kind (`builtin` and `openapi` build
//! the built-in trees on it, `list_keys` picks a tree per kind).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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
