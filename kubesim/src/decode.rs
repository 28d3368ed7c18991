//! Request body decoding as the real server does it: unknown fields are
//! pruned (and reported per `fieldValidation`), duplicate JSON keys are
//! detected, wrong JSON types are rejected, and custom resources are
//! defaulted and validated against their CRD schema.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::cluster::{FieldValidation, Target};
use crate::crd::cr_root_schema;
use crate::error::{ApiError, Cause};
use crate::schema::{self, Ctx, builtin::schemas};

/// The schema an object of `t` is checked against.
fn root_schema(t: &Target) -> Option<Value> {
    if t.rt.is_custom() {
        t.rt.schema(&t.version).map(cr_root_schema)
    } else {
        schemas().root(&t.rt.group, &t.rt.kind)
    }
}

fn cannot_handle(t: &Target, detail: &str) -> ApiError {
    let k = &t.rt.kind;
    ApiError::bad_request(format!(
        "{k} in version \"{}\" cannot be handled as a {k}: {detail}",
        t.version
    ))
}

/// Prunes unknown fields from a request object. Returns the warnings to
/// send; errors per `validation` (Strict) or always for apply requests.
pub fn prune(
    t: &Target,
    obj: &mut Value,
    validation: FieldValidation,
    apply: bool,
    duplicates: &[String],
) -> Result<Vec<String>, ApiError> {
    if let Some(at) = bad_base64(t, obj) {
        let detail = format!("illegal base64 data at input byte {at}");
        return Err(if apply {
            // Server-side apply fails later, converting the typed object:
            // a 500 without a reason, as the real server answers.
            let name = crate::util::meta_str(obj, "name").unwrap_or_default();
            let gvk = format!("{}/{}, Kind={}", t.rt.group, t.version, t.rt.kind);
            ApiError::new(
                500,
                "",
                format!(
                    "failed to convert new object ({}/{name}; {gvk}) to proper version: unable to convert unstructured object to {gvk}: error decoding from json: {detail}",
                    t.ns()
                ),
            )
        } else {
            cannot_handle(t, &detail)
        });
    }
    let Some(schema) = root_schema(t) else {
        return Ok(Vec::new());
    };
    let out = schema::walk(
        &schema,
        obj,
        &Ctx {
            defs: &schemas().defs,
            custom: false,
        },
    );
    if let Some(first) = out.type_errors.first() {
        if t.rt.is_custom() {
            let name = crate::util::meta_str(obj, "name").unwrap_or_default();
            return Err(ApiError::invalid(
                &t.rt.group,
                &t.rt.kind,
                name,
                out.type_errors.clone(),
            ));
        }
        return Err(cannot_handle(
            t,
            &format!("json: {}: {}", first.field, first.message),
        ));
    }
    if apply {
        if let Some(first) = out.unknown.first() {
            let gvk = format!("{}, Kind={}", t.rt.api_version(&t.version), t.rt.kind);
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({gvk}): .{first}: field not declared in schema"
            )));
        }
        return Ok(Vec::new());
    }
    let mut problems: Vec<String> = duplicates
        .iter()
        .map(|d| format!("duplicate field \"{d}\""))
        .collect();
    problems.extend(out.unknown.iter().map(|u| format!("unknown field \"{u}\"")));
    match validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(problems),
        FieldValidation::Strict if problems.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(cannot_handle(
            t,
            &format!("strict decoding error: {}", problems.join(", ")),
        )),
    }
}

/// Where the first `[]byte` field value of a built-in object (a Secret's
/// `data`, a ConfigMap's `binaryData`) fails Go's base64 decoding, which
/// fails the whole request on a real server.
fn bad_base64(t: &Target, obj: &Value) -> Option<usize> {
    let field = match (t.rt.group.as_str(), t.rt.kind.as_str()) {
        ("", "Secret") => "data",
        ("", "ConfigMap") => "binaryData",
        _ => return None,
    };
    obj.get(field)?
        .as_object()?
        .values()
        .filter_map(Value::as_str)
        .find_map(go_base64_error)
}

/// Where Go's `base64.StdEncoding` (padding required, line breaks skipped,
/// trailing bits not checked) refuses `s`: the `N` of `illegal base64 data
/// at input byte N`. A port of Go's `decodeQuantum`.
pub fn go_base64_error(s: &str) -> Option<usize> {
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

/// Custom resources: schema defaults and validation of the final object.
pub fn custom_resource(t: &Target, obj: &mut Value) -> Vec<Cause> {
    if !t.rt.is_custom() {
        return Vec::new();
    }
    let Some(schema) = root_schema(t) else {
        return Vec::new();
    };
    let out = schema::walk(
        &schema,
        obj,
        &Ctx {
            defs: &schemas().defs,
            custom: true,
        },
    );
    let mut causes = out.type_errors;
    causes.extend(out.invalid);
    causes
}

/// Paths of duplicate keys in a JSON document (`metadata.name`, `spec.x[0].y`).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Dup {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner()
}

struct Dup<'a> {
    path: String,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Dup<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Dup<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.borrow_mut().push(child.clone());
            }
            map.next_value_seed(Dup {
                path: child,
                found: self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Dup {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates() {
        let d = duplicate_fields(
            br#"{"metadata": {"name": "a", "name": "b"}, "l": [{"x": 1, "x": 2}], "k": 1, "k": 2}"#,
        );
        assert_eq!(d, ["metadata.name", "l[0].x", "k"]);
        assert!(duplicate_fields(br#"{"a": {"b": 1}, "c": [1, 2]}"#).is_empty());
    }
}
