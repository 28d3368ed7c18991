//! A structural-schema walker: prunes unknown fields (reporting them for
//! `fieldValidation`), checks types, and for custom resources also applies
//! `default`s and checks `required`, `enum`, bounds and lengths, as the
//! apiextensions-apiserver does with a CRD's `openAPIV3Schema`.

pub mod builtin;

use serde_json::{Map, Value};

use crate::error::{Cause, field};

const REF_PREFIX: &str = "#/components/schemas/";

/// How a schema is applied.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// `components.schemas` that `$ref`s point into.
    pub defs: &'a Map<String, Value>,
    /// Custom-resource semantics (defaults, required, enum, bounds).
    pub custom: bool,
}

/// What walking an object found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Paths of pruned unknown fields, e.g. `spec.template.spec.foo`.
    pub unknown: Vec<String>,
    /// Values of the wrong JSON type (a decode error for built-in kinds).
    pub type_errors: Vec<Cause>,
    /// Schema validation failures (custom resources).
    pub invalid: Vec<Cause>,
}

/// Walks `value` against `schema`, pruning unknown fields in place.
pub fn walk(schema: &Value, value: &mut Value, ctx: &Ctx) -> Outcome {
    let mut out = Outcome::default();
    node(schema, value, "", ctx, &mut out);
    out
}

fn resolve<'a>(mut s: &'a Value, ctx: &'a Ctx) -> &'a Value {
    for _ in 0..32 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix(REF_PREFIX).and_then(|n| ctx.defs.get(n)) {
                Some(target) => s = target,
                None => return &Value::Null,
            }
        } else if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = only;
        } else {
            return s;
        }
    }
    s
}

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn node(schema: &Value, value: &mut Value, path: &str, ctx: &Ctx, out: &mut Outcome) {
    let s = resolve(schema, ctx);
    if value.is_null() || s.is_null() {
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_matches("integer", value)) {
            out.type_errors
                .push(type_error(path, value, "integer or string"));
        }
        return;
    }
    if let Some(alts) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        let pick = alts.iter().find(|alt| {
            let a = resolve(alt, ctx);
            a.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| type_matches(t, value))
        });
        if let Some(alt) = pick {
            node(alt, value, path, ctx, out);
        }
        return;
    }
    let ty = s.get("type").and_then(Value::as_str);
    if let Some(t) = ty
        && !type_matches(t, value)
    {
        out.type_errors.push(type_error(path, value, t));
        return;
    }
    match value {
        Value::Object(map) if ty == Some("object") || s.get("properties").is_some() => {
            object(s, map, path, ctx, out);
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    node(item_schema, item, &format!("{path}[{i}]"), ctx, out);
                }
            }
            if ctx.custom {
                bounds(s, value, path, out);
            }
        }
        _ => {
            if ctx.custom {
                bounds(s, value, path, out);
            }
        }
    }
}

fn object(s: &Value, map: &mut Map<String, Value>, path: &str, ctx: &Ctx, out: &mut Outcome) {
    let empty = Map::new();
    let props = s
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let addl = s.get("additionalProperties");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if ctx.custom {
        apply_defaults(props, map, ctx);
    }
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let child = join(path, &k);
        let Some(v) = map.get_mut(&k) else { continue };
        if let Some(ps) = props.get(&k) {
            if v.is_null() {
                if !flag(resolve(ps, ctx), "nullable") {
                    map.remove(&k);
                }
                continue;
            }
            node(ps, v, &child, ctx, out);
        } else if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        } else if let Some(a) = addl.filter(|a| a.is_object()) {
            node(a, v, &child, ctx, out);
        } else if preserve || addl.and_then(Value::as_bool) == Some(true) {
            continue;
        } else {
            out.unknown.push(child);
            map.remove(&k);
        }
    }
    if ctx.custom {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str()
                && !map.contains_key(r)
            {
                out.invalid.push(field::required(&join(path, r)));
            }
        }
    }
}

fn apply_defaults(props: &Map<String, Value>, map: &mut Map<String, Value>, ctx: &Ctx) {
    for (k, ps) in props {
        let ps = resolve(ps, ctx);
        let Some(d) = ps.get("default") else { continue };
        let absent = match map.get(k) {
            None => true,
            Some(Value::Null) => !flag(ps, "nullable"),
            Some(_) => false,
        };
        if absent {
            map.insert(k.clone(), d.clone());
        }
    }
}

fn type_error(path: &str, value: &Value, want: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => format!("{:?}", type_name(other)),
    };
    Cause::new(
        "FieldValueTypeInvalid",
        format!(
            "Invalid value: {shown}: {path} in body must be of type {want}: {:?}",
            type_name(value)
        ),
        path,
    )
}

fn bounds(s: &Value, v: &Value, path: &str, out: &mut Outcome) {
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| a.to_string())
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        out.invalid.push(field::not_supported(path, v, &refs));
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    if let (Some(x), Some(min)) = (v.as_f64(), num("minimum"))
        && x < min
    {
        let msg = format!("{path} in body should be greater than or equal to {min}");
        out.invalid.push(field::invalid(path, v, &msg));
    }
    if let (Some(x), Some(max)) = (v.as_f64(), num("maximum"))
        && x > max
    {
        let msg = format!("{path} in body should be less than or equal to {max}");
        out.invalid.push(field::invalid(path, v, &msg));
    }
    let len = match v {
        Value::String(st) => Some((st.chars().count() as f64, "chars long")),
        Value::Array(a) => Some((a.len() as f64, "items")),
        _ => None,
    };
    if let Some((n, unit)) = len {
        let (min_key, max_key) = if v.is_string() {
            ("minLength", "maxLength")
        } else {
            ("minItems", "maxItems")
        };
        if let Some(min) = num(min_key).filter(|m| n < *m) {
            let msg = format!("{path} in body should be at least {min} {unit}");
            out.invalid.push(field::invalid(path, v, &msg));
        }
        if let Some(max) = num(max_key).filter(|m| n > *m) {
            let msg = format!("{path} in body should be at most {max} {unit}");
            out.invalid.push(field::invalid(path, v, &msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_defaults_and_checks() {
        let defs = Map::new();
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true},
        }}}});
        let mut v = json!({"spec": {"size": 20, "junk": 1, "free": {"x": {"y": 1}},
            "tags": {"a": "b"}, "port": "http"}, "extra": true});
        let out = walk(
            &schema,
            &mut v,
            &Ctx {
                defs: &defs,
                custom: true,
            },
        );
        assert_eq!(
            out.unknown,
            vec!["spec.junk".to_string(), "extra".to_string()]
        );
        assert_eq!(v["spec"]["mode"], json!("a"));
        assert_eq!(v["spec"]["free"], json!({"x": {"y": 1}}));
        assert_eq!(out.invalid.len(), 1, "{:?}", out.invalid);
        let mut v = json!({"spec": {"size": "big", "mode": "c"}});
        let out = walk(
            &schema,
            &mut v,
            &Ctx {
                defs: &defs,
                custom: true,
            },
        );
        assert_eq!(out.type_errors.len(), 1);
        assert_eq!(out.invalid.len(), 1);
        let mut v = json!({"spec": {"mode": "a"}});
        let out = walk(
            &schema,
            &mut v,
            &Ctx {
                defs: &defs,
                custom: true,
            },
        );
        assert_eq!(out.invalid[0].field, "spec.size");
    }
}
