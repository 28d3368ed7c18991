//! `${var}` substitution, as Flux's `postBuild.substitute` users know it:
//! `${name}` is replaced, `${name:=default}` falls back to a default, `$${`
//! is a literal `${`, and an undefined variable is an error at its place.
//!
//! Opt-in: it runs only for an app with `substitute: true` (render decides),
//! and an object annotated `plumb.dev/substitute: disabled` is left as
//! written. It works on parsed values, never on text: each string scalar is
//! expanded on its own, so a value holding newlines, `: `, `#` or `---`
//! lands as one scalar and can never change the document's structure. A
//! plain (unquoted) scalar is then read as YAML reads a plain scalar
//! (`replicas: ${n}` with `n: 3` is the number 3); a quoted one stays a
//! string. Map keys are not substituted.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ParsedObject, RenderError};
use crate::yaml::{self, Pos, join_index, join_key};

/// The annotation with which one object opts out of substitution.
pub const OPT_OUT_ANNOTATION: &str = "plumb.dev/substitute";
/// Its value that opts out.
pub const OPT_OUT_VALUE: &str = "disabled";

/// An undefined variable, or an unterminated `${`, in one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// Byte offset of the `${` in the string.
    pub offset: usize,
    /// The reference as written (`${name}`), to find it in a source text.
    pub reference: String,
    pub message: String,
}

/// Expands every reference of one string. Returns every error found.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<VarError>> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut errors = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let offset = s.len() - rest.len() + at;
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(body_start) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            let reference = tail.lines().next().unwrap_or(tail).to_string();
            errors.push(VarError {
                offset,
                reference,
                message: "unterminated ${ (write $${ for a literal ${)".into(),
            });
            out.push_str(tail);
            rest = "";
            break;
        };
        let body = &body_start[..end];
        match resolve(body, vars) {
            Ok(v) => out.push_str(&v),
            Err(message) => errors.push(VarError {
                offset,
                reference: format!("${{{body}}}"),
                message,
            }),
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn resolve(body: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let (name, default) = match body.split_once(":=") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    if !crate::names::is_var_name(name) {
        return Err(format!("invalid variable reference ${{{body}}}"));
    }
    match (vars.get(name), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!("undefined variable \"{name}\"")),
    }
}

/// Whether an object opted out with `plumb.dev/substitute: disabled`.
pub fn opted_out(value: &Value) -> bool {
    value["metadata"]["annotations"][OPT_OUT_ANNOTATION].as_str() == Some(OPT_OUT_VALUE)
}

/// Substitutes inside every string value of one parsed object (unless it
/// opted out). `source` is the text it was parsed from, to place errors at
/// the reference's own line and column (else at its scalar's start).
pub fn substitute_object(
    obj: &mut ParsedObject,
    vars: &BTreeMap<String, String>,
    source: &str,
) -> Vec<RenderError> {
    if opted_out(&obj.value) {
        return Vec::new();
    }
    let mut walk = Walk {
        obj_path: &obj.path,
        doc: &obj.doc,
        vars,
        source,
        errors: Vec::new(),
    };
    walk.value(&mut obj.value, &obj.prefix);
    walk.errors
}

struct Walk<'a> {
    obj_path: &'a str,
    doc: &'a yaml::Document,
    vars: &'a BTreeMap<String, String>,
    source: &'a str,
    errors: Vec<RenderError>,
}

impl Walk<'_> {
    fn value(&mut self, v: &mut Value, path: &str) {
        match v {
            Value::String(s) if s.contains('$') => match expand(s, self.vars) {
                Ok(new) => {
                    *v = if self.doc.is_plain(path) {
                        yaml::resolve_plain(new)
                    } else {
                        Value::String(new)
                    };
                }
                Err(errs) => {
                    let at = self.doc.position(path);
                    for e in errs {
                        let pos = locate(self.source, at, &e.reference);
                        self.errors
                            .push(RenderError::at(self.obj_path, pos, e.message));
                    }
                }
            },
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(item, &join_index(path, i));
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.value(item, &join_key(path, k));
                }
            }
            _ => {}
        }
    }
}

/// The place of `reference` in `source` at or after `from` (a scalar's
/// start); `from` itself when it cannot be found (an escaped or folded
/// scalar).
pub fn locate(source: &str, from: Pos, reference: &str) -> Pos {
    let Some(start) = offset_of(source, from) else {
        return from;
    };
    let Some(found) = source[start..].find(reference).map(|i| start + i) else {
        return from;
    };
    let before = &source[..found];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line,
        column: source[line_start..found].chars().count() + 1,
    }
}

/// The byte offset of a 1-based line and (character) column.
fn offset_of(source: &str, pos: Pos) -> Option<usize> {
    let mut line_start = 0;
    for _ in 1..pos.line {
        line_start += source[line_start..].find('\n')? + 1;
    }
    let line = &source[line_start..];
    let col = line
        .char_indices()
        .nth(pos.column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    Some(line_start + col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("replicas".into(), "3".into()),
            ("domain".into(), "eu.example.com".into()),
        ])
    }

    #[test]
    fn variables_are_replaced_in_place() {
        assert_eq!(
            expand("api.${domain}", &vars()).unwrap(),
            "api.eu.example.com"
        );
    }

    #[test]
    fn defaults_apply_only_when_undefined() {
        assert_eq!(
            expand("${missing:=x}/${replicas:=9}", &vars()).unwrap(),
            "x/3"
        );
    }

    #[test]
    fn double_dollar_escapes_and_lone_dollars_stay() {
        let out = expand("echo $${HOME} $PATH costs $5", &vars()).unwrap();
        assert_eq!(out, "echo ${HOME} $PATH costs $5");
    }

    #[test]
    fn every_undefined_variable_is_reported_with_its_offset() {
        let errs = expand("x-${nope}-${replicas}-${alsonope}", &vars()).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].offset, 2);
        assert_eq!(errs[0].message, "undefined variable \"nope\"");
        assert_eq!(errs[1].reference, "${alsonope}");
    }

    #[test]
    fn an_unterminated_reference_is_an_error() {
        let errs = expand("a ${oops", &vars()).unwrap_err();
        assert_eq!(errs[0].offset, 2);
        assert!(errs[0].message.starts_with("unterminated"));
    }

    #[test]
    fn a_reference_is_located_after_its_scalar_start() {
        let src = "a: ${x}\nb: |\n  one ${x}\n";
        let at = locate(src, Pos { line: 2, column: 4 }, "${x}");
        assert_eq!(at, Pos { line: 3, column: 7 });
        let missing = locate(src, Pos { line: 2, column: 4 }, "${y}");
        assert_eq!(missing, Pos { line: 2, column: 4 });
    }
}
