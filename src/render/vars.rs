//! `${var}` substitution, as Flux's `postBuild.substitute` users know it:
//! `${name}` is replaced, `${name:=default}` falls back to a default, `$${`
//! is a literal `${`, and an undefined variable is an error at its place.
//!
//! Opt-in: it runs only for an app with `substitute: true` (render decides),
//! and an object annotated `plumb.dev/substitute: disabled` is left as
//! written. Values never go through the YAML parser: each reference is
//! first replaced by a placeholder ([`mask`]), the text is parsed (so the
//! document's structure is fixed, and references work in flow style too),
//! then the placeholders inside each parsed string are replaced by the
//! values ([`substitute_object`]). A value holding newlines, `: `, `#` or
//! `---` lands as one scalar and can never change the structure. A plain
//! (unquoted) scalar is then read as YAML reads a plain scalar (`replicas:
//! ${n}` with `n: 3` is the number 3); a quoted one stays a string. Map
//! keys are not substituted (their references stay as written).

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
    pub message: VarProblem,
}

/// What is wrong with one `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarProblem {
    #[error("unterminated ${{ (write $${{ for a literal ${{)")]
    Unterminated,
    #[error("invalid variable reference ${{{body}}}")]
    Invalid { body: String },
    #[error("undefined variable \"{name}\"")]
    Undefined { name: String },
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
                message: VarProblem::Unterminated,
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

fn resolve(body: &str, vars: &BTreeMap<String, String>) -> Result<String, VarProblem> {
    let (name, default) = match body.split_once(":=") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    if !crate::names::is_var_name(name) {
        return Err(VarProblem::Invalid {
            body: body.to_string(),
        });
    }
    match (vars.get(name), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(VarProblem::Undefined {
            name: name.to_string(),
        }),
    }
}

/// Whether an object opted out with `plumb.dev/substitute: disabled`.
pub fn opted_out(value: &Value) -> bool {
    value["metadata"]["annotations"][OPT_OUT_ANNOTATION].as_str() == Some(OPT_OUT_VALUE)
}

/// Opens a placeholder ([`mask`]): a private-use character, valid in any
/// YAML scalar (plain, quoted, block, flow) and never an indicator.
pub const MARK_OPEN: char = yaml::SUBST_MARK;
const MARK_CLOSE: char = '\u{E001}';

/// One `${...}` reference replaced by a placeholder, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub body: String,
    pub pos: Pos,
}

/// A manifest text whose references are placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    pub refs: Vec<Ref>,
}

/// Replaces each `${...}` of `text` (on one line) with a placeholder made
/// of [`MARK_OPEN`], its index and a closing mark, before the text is
/// parsed: the parse then fixes the document's structure whatever the
/// values hold, and a reference works in flow style (`{ a: ${x} }`) as in
/// block style. `$${` and an unterminated `${` are left for [`expand`].
/// `None` when the text already holds a mark (then nothing is masked).
pub fn mask(text: &str) -> Option<Masked> {
    if text.contains([MARK_OPEN, MARK_CLOSE]) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut refs = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            col += rest[..at].chars().count();
            let tail = &rest[at..];
            let (copied, consumed) = if tail.starts_with("$${") {
                ("$${", 3)
            } else if let Some(end) = tail.strip_prefix("${").and_then(|b| b.find('}')) {
                refs.push(Ref {
                    body: tail[2..2 + end].to_string(),
                    pos: Pos {
                        line: i + 1,
                        column: col,
                    },
                });
                out.push(MARK_OPEN);
                out.push_str(&(refs.len() - 1).to_string());
                out.push(MARK_CLOSE);
                ("", 2 + end + 1)
            } else {
                ("$", 1)
            };
            out.push_str(copied);
            col += tail[..consumed].chars().count();
            rest = &tail[consumed..];
        }
        out.push_str(rest);
    }
    Some(Masked { text: out, refs })
}

/// Substitutes inside every string value of one parsed object, or — for an
/// object that opted out — puts its references back as written. Map keys
/// always get their references back as written. `refs` are the file's
/// placeholders ([`mask`]); `source` is the file's text, to place an error
/// that is not at a placeholder (an unterminated `${`).
pub fn substitute_object(
    obj: &mut ParsedObject,
    vars: &BTreeMap<String, String>,
    refs: &[Ref],
    source: &str,
) -> Vec<RenderError> {
    let mut walk = Walk {
        obj_path: &obj.path,
        doc: &obj.doc,
        vars: (!opted_out(&obj.value)).then_some(vars),
        refs,
        source,
        errors: Vec::new(),
    };
    walk.value(&mut obj.value, &obj.prefix);
    walk.errors
}

struct Walk<'a> {
    obj_path: &'a str,
    doc: &'a yaml::Document,
    /// `None`: the object opted out (references restored as written).
    vars: Option<&'a BTreeMap<String, String>>,
    refs: &'a [Ref],
    source: &'a str,
    errors: Vec<RenderError>,
}

impl Walk<'_> {
    fn value(&mut self, v: &mut Value, path: &str) {
        match v {
            Value::String(s) if s.contains(['$', MARK_OPEN]) => {
                let plain = self.doc.is_plain(path);
                let new = self.string(s, path);
                *v = if plain && self.vars.is_some() {
                    yaml::resolve_plain(new)
                } else {
                    Value::String(new)
                };
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(item, &join_index(path, i));
                }
            }
            Value::Object(map) => {
                if map.keys().any(|k| k.contains(MARK_OPEN)) {
                    let old = std::mem::take(map);
                    for (k, item) in old {
                        map.insert(restore(&k, self.refs), item);
                    }
                }
                for (k, item) in map.iter_mut() {
                    self.value(item, &join_key(path, k));
                }
            }
            _ => {}
        }
    }

    /// One string: placeholders resolved (or restored), the text between
    /// them expanded for `$${` and unterminated references.
    fn string(&mut self, s: &str, path: &str) -> String {
        let Some(vars) = self.vars else {
            return restore(s, self.refs);
        };
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        loop {
            let (literal, placeholder) = next_placeholder(rest);
            self.literal(literal, path, &mut out);
            let Some((index, after)) = placeholder else {
                break;
            };
            match self.refs.get(index) {
                Some(r) => match resolve(&r.body, vars) {
                    Ok(v) => out.push_str(&v),
                    Err(m) => {
                        self.errors
                            .push(RenderError::at(self.obj_path, r.pos, m.to_string()))
                    }
                },
                None => out.push(MARK_OPEN),
            }
            rest = after;
        }
        out
    }

    fn literal(&mut self, text: &str, path: &str, out: &mut String) {
        let Some(vars) = self.vars else {
            out.push_str(text);
            return;
        };
        if !text.contains('$') {
            out.push_str(text);
            return;
        }
        match expand(text, vars) {
            Ok(v) => out.push_str(&v),
            Err(errs) => {
                let at = self.doc.position(path);
                for e in errs {
                    let pos = locate(self.source, at, &e.reference);
                    self.errors
                        .push(RenderError::at(self.obj_path, pos, e.message.to_string()));
                }
                out.push_str(text);
            }
        }
    }
}

/// Splits `s` at its first placeholder: the text before it, and the
/// placeholder's index with the text after it.
fn next_placeholder(s: &str) -> (&str, Option<(usize, &str)>) {
    let Some(open) = s.find(MARK_OPEN) else {
        return (s, None);
    };
    let after = &s[open + MARK_OPEN.len_utf8()..];
    let parsed = after.find(MARK_CLOSE).and_then(|close| {
        let index = after[..close].parse::<usize>().ok()?;
        Some((index, &after[close + MARK_CLOSE.len_utf8()..]))
    });
    match parsed {
        Some(p) => (&s[..open], Some(p)),
        None => (s, None),
    }
}

/// `s` with its placeholders put back as the references they were.
pub fn restore(s: &str, refs: &[Ref]) -> String {
    if !s.contains(MARK_OPEN) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let (literal, placeholder) = next_placeholder(rest);
        out.push_str(literal);
        let Some((index, after)) = placeholder else {
            break;
        };
        match refs.get(index) {
            Some(r) => {
                out.push_str("${");
                out.push_str(&r.body);
                out.push('}');
            }
            None => out.push(MARK_OPEN),
        }
        rest = after;
    }
    out
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
        assert_eq!(errs[0].message.to_string(), "undefined variable \"nope\"");
        assert_eq!(errs[1].reference, "${alsonope}");
    }

    #[test]
    fn an_unterminated_reference_is_an_error() {
        let errs = expand("a ${oops", &vars()).unwrap_err();
        assert_eq!(errs[0].offset, 2);
        assert!(errs[0].message.to_string().starts_with("unterminated"));
    }

    #[test]
    fn masking_keeps_escapes_and_places_each_reference() {
        let m = mask("a: ${x}\nb: { c: pre-${y:=1} }\nd: $${z} ${open\n").unwrap();
        assert_eq!(m.refs.len(), 2);
        assert_eq!(m.refs[1].body, "y:=1");
        assert_eq!(
            m.refs[1].pos,
            Pos {
                line: 2,
                column: 13
            }
        );
        assert!(m.text.contains("$${z} ${open"), "{}", m.text);
        assert!(!m.text.contains("${x}") && !m.text.contains("${y"));
        assert_eq!(
            restore(&m.text, &m.refs),
            "a: ${x}\nb: { c: pre-${y:=1} }\nd: $${z} ${open\n"
        );
        assert_eq!(mask("already \u{E000}"), None);
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
