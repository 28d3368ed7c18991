//! One YAML document → one desired object: required fields, names, scope and
//! namespace permissions, plumb's labels, and the values the API server
//! would fail to decode (base64 of a Secret's `data`). Every error names the
//! key's place.

use serde_json::{Map, Value};

use super::{AppContext, RenderError};
use crate::model::{
    APP_LABEL, DesiredObject, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, Origin,
};
use crate::names;
use crate::render::scope::Scopes;
use crate::yaml::{Document, join_key};

/// A parsed manifest document (or one item of a `kind: List`).
#[derive(Debug, Clone)]
pub struct ParsedObject {
    pub value: Value,
    /// The file, repo-relative.
    pub path: String,
    /// The document it came from, for key positions.
    pub doc: std::sync::Arc<Document>,
    /// Key path of this object inside the document (`""`, or `items[3]`).
    pub prefix: String,
}

impl ParsedObject {
    /// Where `key` (relative to the object) is.
    pub fn origin_of(&self, key: &str) -> Origin {
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else if key.is_empty() {
            self.prefix.clone()
        } else {
            join_key(&self.prefix, key)
        };
        let pos = self.doc.position(&full);
        Origin {
            path: self.path.clone(),
            line: pos.line,
            column: pos.column,
        }
    }

    /// Where the object itself starts.
    pub fn origin(&self) -> Origin {
        self.origin_of("")
    }

    fn error(&self, key: &str, message: impl Into<String>) -> RenderError {
        RenderError {
            origin: self.origin_of(key),
            message: message.into(),
        }
    }
}

/// Checks one object and turns it into a desired object for the app.
pub fn build_object(
    ctx: &AppContext<'_>,
    obj: &ParsedObject,
    scopes: &Scopes,
) -> Result<DesiredObject, Vec<RenderError>> {
    let mut errors = Vec::new();
    let Some(map) = obj.value.as_object() else {
        return Err(vec![obj.error(
            "",
            "a manifest must be a mapping with apiVersion, kind and metadata",
        )]);
    };
    let api_version = required_str(obj, map, "apiVersion", &mut errors);
    let kind = required_str(obj, map, "kind", &mut errors);
    let meta = map.get("metadata").and_then(Value::as_object);
    if meta.is_none() {
        errors.push(obj.error(
            "metadata",
            "missing metadata (an object with at least a name)",
        ));
    }
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    if meta.is_some() && name.is_none() {
        let msg = if meta.is_some_and(|m| m.contains_key("generateName")) {
            "metadata.generateName is not supported: plumb needs a stable metadata.name to track the object"
        } else {
            "missing metadata.name"
        };
        errors.push(obj.error("metadata", msg));
    }
    let (Some(api_version), Some(kind), Some(meta), Some(name)) = (api_version, kind, meta, name)
    else {
        return Err(errors);
    };
    let group = ObjectRef::group_of(api_version).to_string();
    check_name(obj, &group, kind, name, &mut errors);
    check_string_maps(obj, meta, &mut errors);
    check_base64_fields(obj, &group, kind, map, &mut errors);
    let namespace = resolve_namespace(ctx, obj, scopes, &group, kind, meta, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ObjectRef {
        group,
        kind: kind.to_string(),
        namespace,
        name: name.to_string(),
    };
    let manifest = finish_manifest(ctx, obj, &id).map_err(|e| vec![e])?;
    Ok(DesiredObject::new(
        id,
        api_version.to_string(),
        manifest,
        obj.origin(),
    ))
}

fn required_str<'v>(
    obj: &ParsedObject,
    map: &'v Map<String, Value>,
    key: &str,
    errors: &mut Vec<RenderError>,
) -> Option<&'v str> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(_) => {
            errors.push(obj.error(key, format!("{key} must be a non-empty string")));
            None
        }
        None => {
            errors.push(obj.error("", format!("missing {key}")));
            None
        }
    }
}

fn check_name(
    obj: &ParsedObject,
    group: &str,
    kind: &str,
    name: &str,
    errors: &mut Vec<RenderError>,
) {
    let ok = match (group, kind) {
        ("", "Namespace") | ("", "Service") => names::is_dns1123_label(name),
        ("rbac.authorization.k8s.io", _) => {
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
        }
        _ => names::is_dns1123_subdomain(name),
    };
    if !ok {
        errors.push(obj.error(
            "metadata.name",
            format!("invalid name \"{name}\" for a {kind}: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
        ));
    }
}

/// Labels and annotations must be string → string; label values are short.
fn check_string_maps(obj: &ParsedObject, meta: &Map<String, Value>, errors: &mut Vec<RenderError>) {
    for field in ["labels", "annotations"] {
        let Some(entries) = meta.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in entries {
            let key = format!("metadata.{field}.{k}");
            match v {
                Value::String(s) if field == "labels" && !names::is_label_value(s) => {
                    errors.push(obj.error(&key, format!("invalid label value \"{s}\": at most 63 characters of letters, digits, '-', '_', '.'")));
                }
                Value::String(_) => {}
                other => errors.push(obj.error(
                    &key,
                    format!("{field} values must be strings: quote {other}"),
                )),
            }
        }
    }
}

fn resolve_namespace(
    ctx: &AppContext<'_>,
    obj: &ParsedObject,
    scopes: &Scopes,
    group: &str,
    kind: &str,
    meta: &Map<String, Value>,
    errors: &mut Vec<RenderError>,
) -> Option<String> {
    let written = meta.get("namespace").and_then(Value::as_str);
    if !scopes.is_namespaced(group, kind) {
        if written.is_some() {
            errors.push(obj.error(
                "metadata.namespace",
                format!("{kind} is cluster-scoped: remove metadata.namespace"),
            ));
        }
        if !ctx.app.cluster_scoped {
            errors.push(obj.error(
                "kind",
                format!(
                    "{kind} is cluster-scoped, and apps.{}.cluster_scoped is false",
                    ctx.app_name
                ),
            ));
        }
        return None;
    }
    let (ns, key) = match (written, &ctx.app.namespace) {
        (Some(ns), _) => (ns.to_string(), "metadata.namespace"),
        (None, Some(ns)) => (ns.clone(), "metadata"),
        (None, None) => {
            errors.push(obj.error(
                "metadata",
                format!(
                    "no metadata.namespace, and apps.{}.namespace sets no default",
                    ctx.app_name
                ),
            ));
            return None;
        }
    };
    let allowed = ctx.app.allowed_namespaces();
    if !allowed.contains(&ns) {
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        errors.push(obj.error(
            key,
            format!(
                "namespace \"{ns}\" is not one of the namespaces apps.{} may touch [{}]",
                ctx.app_name,
                list.join(", ")
            ),
        ));
    }
    Some(ns)
}

/// The manifest as applied: namespace defaulted, plumb's labels added.
fn finish_manifest(
    ctx: &AppContext<'_>,
    obj: &ParsedObject,
    id: &ObjectRef,
) -> Result<Value, RenderError> {
    let mut manifest = obj.value.clone();
    let Some(meta) = manifest.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(obj.error("metadata", "missing metadata"));
    };
    if let Some(ns) = &id.namespace {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(labels) = labels.as_object_mut() else {
        return Err(obj.error("metadata.labels", "metadata.labels must be a mapping"));
    };
    if let Some(other) = labels.get(APP_LABEL).and_then(Value::as_str)
        && other != ctx.app_name
    {
        return Err(obj.error(
            &format!("metadata.labels.{APP_LABEL}"),
            format!(
                "label {APP_LABEL} says \"{other}\" but the object belongs to app \"{}\"",
                ctx.app_name
            ),
        ));
    }
    labels.insert(
        MANAGED_BY_LABEL.into(),
        Value::String(MANAGED_BY_VALUE.into()),
    );
    labels.insert(APP_LABEL.into(), Value::String(ctx.app_name.to_string()));
    Ok(manifest)
}

/// `[]byte` fields of built-in kinds, which the API server decodes from
/// base64: a value it cannot decode fails the whole object there, so it is
/// refused here, offline, at its key. The message never shows the value
/// (it is a Secret's).
fn check_base64_fields(
    obj: &ParsedObject,
    group: &str,
    kind: &str,
    map: &Map<String, Value>,
    errors: &mut Vec<RenderError>,
) {
    let field = match (group, kind) {
        ("", "Secret") => "data",
        ("", "ConfigMap") => "binaryData",
        _ => return,
    };
    let Some(entries) = map.get(field).and_then(Value::as_object) else {
        return;
    };
    for (k, v) in entries {
        let key = format!("{field}.{k}");
        match v {
            Value::String(s) => {
                if let Some(at) = go_base64_error(s) {
                    let hint = if field == "data" {
                        "; put plain text under stringData"
                    } else {
                        ""
                    };
                    errors.push(obj.error(
                        &key,
                        format!(
                            "{key} is not base64 (illegal base64 data at input byte {at}){hint}"
                        ),
                    ));
                }
            }
            Value::Null => {}
            _ => errors.push(obj.error(&key, format!("{key} must be a base64 string"))),
        }
    }
}

/// Where Go's `base64.StdEncoding` (what the API server decodes `[]byte`
/// fields with: padding required, line breaks skipped, trailing bits not
/// checked) refuses `s`: the `N` of its `illegal base64 data at input byte
/// N`, or `None` when `s` decodes. A port of Go's `decodeQuantum`.
pub(crate) fn go_base64_error(s: &str) -> Option<usize> {
    let src = s.as_bytes();
    let newline = |b: &u8| *b == b'\n' || *b == b'\r';
    let symbol = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let mut si = 0;
    loop {
        let mut j = 0;
        while j < 4 {
            let Some(&b) = src.get(si) else {
                return (j > 0).then(|| si - j);
            };
            si += 1;
            if symbol(b) {
                j += 1;
                continue;
            }
            if newline(&b) {
                continue;
            }
            if b != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first "=" is read.
                while src.get(si).is_some_and(newline) {
                    si += 1;
                }
                match src.get(si) {
                    None => return Some(src.len()),
                    Some(b'=') => si += 1,
                    Some(_) => return Some(si - 1),
                }
            }
            while src.get(si).is_some_and(newline) {
                si += 1;
            }
            return (si < src.len()).then_some(si);
        }
    }
}
