//! Path elements, as structured-merge-diff's `fieldpath.PathElement`: a map
//! field (`f:`), a list-map element by its key fields (`k:`), a set element by
//! its value (`v:`) or a list position (`i:`, read but never produced here).

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::value;

/// One step of a field path.
#[derive(Debug, Clone)]
pub(crate) enum PathElement {
    /// A field of a map or struct.
    Field(String),
    /// An element of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An element of a set, by value.
    Value(Value),
    /// An element of a list, by position.
    Index(u64),
}

/// A full path from the object root.
pub(crate) type Path = Vec<PathElement>;

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// A key element; the fields are sorted by name as the server does.
    pub(crate) fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The FieldsV1 spelling: `f:name`, `k:{"name":"app"}`, `v:"x"`, `i:0`.
    pub(crate) fn to_fields_v1(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut m = Map::new();
                for (k, v) in fields {
                    m.insert(k.clone(), v.clone());
                }
                format!("k:{}", value::go_json(&Value::Object(m)))
            }
            PathElement::Value(v) => format!("v:{}", value::go_json(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse one FieldsV1 key (anything but `.`).
    pub(crate) fn parse_fields_v1(s: &str) -> Result<PathElement, String> {
        let (prefix, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid path element {s:?}: missing prefix"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => Ok(PathElement::key(m.into_iter().collect())),
                _ => Err(format!("invalid key in path element {s:?}")),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid value in path element {s:?}: {e}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index in path element {s:?}: {e}")),
            _ => Err(format!("invalid path element {s:?}: unknown prefix")),
        }
    }
}

fn key_cmp(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((na, va), (nb, vb)) in a.iter().zip(b.iter()) {
        let c = na.cmp(nb).then_with(|| value::compare(va, vb));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for PathElement {
    /// structured-merge-diff's `PathElement.Compare`: fields < keys < values <
    /// indexes, then by content. FieldsV1 objects are written in this order.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => key_cmp(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// The spelling of conflict messages: `.replicas`, `[name="app"]`,
    /// `[containerPort=80,protocol="TCP"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value::go_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::go_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as the API server prints it, e.g. `.spec.containers[name="app"].image`.
pub(crate) fn format_path(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(s: &str) -> PathElement {
        PathElement::Field(s.to_string())
    }

    #[test]
    fn key_elements_are_written_with_sorted_compact_json() {
        let pe = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(
            pe.to_fields_v1(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
    }

    #[test]
    fn fields_v1_keys_round_trip() {
        for s in [
            "f:metadata",
            r#"k:{"name":"app"}"#,
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"v:"example.com/finalizer""#,
            "i:3",
        ] {
            let pe = PathElement::parse_fields_v1(s).unwrap();
            assert_eq!(pe.to_fields_v1(), s);
        }
    }

    #[test]
    fn malformed_fields_v1_keys_are_rejected() {
        for s in ["metadata", "x:1", "k:[1]", "v:{", "i:-1"] {
            assert!(PathElement::parse_fields_v1(s).is_err(), "{s}");
        }
    }

    #[test]
    fn paths_print_like_the_api_server() {
        let path = vec![
            field("spec"),
            field("containers"),
            PathElement::key(vec![("name".into(), json!("app"))]),
            field("image"),
        ];
        assert_eq!(format_path(&path), r#".spec.containers[name="app"].image"#);
        let set = vec![
            field("metadata"),
            field("finalizers"),
            PathElement::Value(json!("x")),
        ];
        assert_eq!(format_path(&set), r#".metadata.finalizers[="x"]"#);
    }

    #[test]
    fn fields_sort_before_keys_before_values() {
        let k = PathElement::key(vec![("name".into(), json!("a"))]);
        let v = PathElement::Value(json!("a"));
        assert!(field("zzz") < k);
        assert!(k < v);
        assert!(v < PathElement::Index(0));
    }
}
