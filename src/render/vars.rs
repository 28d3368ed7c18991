//! `${var}` substitution, as Flux's `postBuild.substitute` users know it:
//! `${name}` is replaced, `${name:=default}` falls back to a default, `$${`
//! is a literal `${`, and an undefined variable is an error at its place.

use std::collections::BTreeMap;

use crate::yaml::Pos;

/// An undefined variable, or an unterminated `${`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    pub pos: Pos,
    pub message: String,
}

/// Substitutes variables line by line, so that a line keeps its number as
/// long as no value holds a newline. Returns every error found.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<VarError>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        substitute_line(line, i + 1, vars, &mut out, &mut errors);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn substitute_line(
    line: &str,
    lineno: usize,
    vars: &BTreeMap<String, String>,
    out: &mut String,
    errors: &mut Vec<VarError>,
) {
    let mut rest = line;
    let mut col = 1;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        col += rest[..at].chars().count();
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            col += 3;
            continue;
        }
        let Some(body_start) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            col += 1;
            continue;
        };
        let pos = Pos {
            line: lineno,
            column: col,
        };
        let Some(end) = body_start.find('}') else {
            errors.push(VarError {
                pos,
                message: "unterminated ${ (write $${ for a literal ${)".into(),
            });
            out.push_str(tail);
            return;
        };
        let body = &body_start[..end];
        match resolve(body, vars) {
            Ok(v) => out.push_str(&v),
            Err(message) => errors.push(VarError { pos, message }),
        }
        let consumed = 2 + end + 1;
        col += tail[..consumed].chars().count();
        rest = &tail[consumed..];
    }
    out.push_str(rest);
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
        let out = substitute("replicas: ${replicas}\nhost: api.${domain}\n", &vars()).unwrap();
        assert_eq!(out, "replicas: 3\nhost: api.eu.example.com\n");
    }

    #[test]
    fn defaults_apply_only_when_undefined() {
        let out = substitute("a: ${missing:=x}\nb: ${replicas:=9}\n", &vars()).unwrap();
        assert_eq!(out, "a: x\nb: 3\n");
    }

    #[test]
    fn double_dollar_escapes_and_lone_dollars_stay() {
        let out = substitute("cmd: echo $${HOME} $PATH costs $5\n", &vars()).unwrap();
        assert_eq!(out, "cmd: echo ${HOME} $PATH costs $5\n");
    }

    #[test]
    fn an_undefined_variable_is_an_error_at_its_line_and_column() {
        let errs = substitute("a: 1\nb: x-${nope}-${replicas}-${alsonope}\n", &vars()).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].pos, Pos { line: 2, column: 6 });
        assert_eq!(errs[0].message, "undefined variable \"nope\"");
        assert_eq!(
            errs[1].pos,
            Pos {
                line: 2,
                column: 26
            }
        );
    }

    #[test]
    fn an_unterminated_reference_is_an_error() {
        let errs = substitute("a: ${oops\n", &vars()).unwrap_err();
        assert_eq!(errs[0].pos, Pos { line: 1, column: 4 });
    }
}
