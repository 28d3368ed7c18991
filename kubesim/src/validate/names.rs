//! Name and label syntax checks with the upstream error texts.

use serde_json::Value;

use crate::error::{Cause, field};

pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| lower_alnum(c) || c == '-')
        && s.starts_with(lower_alnum)
        && s.ends_with(lower_alnum)
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_label_value(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.is_empty()
        || (s.len() <= 63
            && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
            && s.starts_with(alnum)
            && s.ends_with(alnum))
}

/// Which name rule a kind uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Label,
    Subdomain,
    Dns1035,
    PathSegment,
}

pub fn check_name(rule: NameRule, name: &str, path: &str) -> Option<Cause> {
    let v = Value::String(name.to_string());
    match rule {
        NameRule::Label if !is_dns1123_label(name) => {
            Some(field::invalid(path, &v, DNS1123_LABEL_MSG))
        }
        NameRule::Subdomain if !is_dns1123_subdomain(name) => {
            Some(field::invalid(path, &v, DNS1123_SUBDOMAIN_MSG))
        }
        NameRule::Dns1035 if !is_dns1035_label(name) => {
            Some(field::invalid(path, &v, DNS1035_LABEL_MSG))
        }
        NameRule::PathSegment if name == "." || name == ".." => {
            Some(field::invalid(path, &v, &format!("may not be '{name}'")))
        }
        NameRule::PathSegment if name.contains('/') || name.contains('%') => {
            Some(field::invalid(path, &v, "may not contain '/'"))
        }
        _ => None,
    }
}

/// Label keys and values (`metadata.labels`, selectors).
pub fn check_labels(labels: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(m) = labels.as_object() else { return };
    for (k, v) in m {
        check_qualified_name(k, path, out);
        let val = v.as_str().unwrap_or_default();
        if !is_label_value(val) {
            out.push(field::invalid(path, v, LABEL_VALUE_MSG));
        }
    }
}

/// Keys like `example.com/name` (labels, annotations).
pub fn check_qualified_name(k: &str, path: &str, out: &mut Vec<Cause>) {
    let v = Value::String(k.to_string());
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        out.push(field::invalid(
            path,
            &v,
            &format!("prefix part {DNS1123_SUBDOMAIN_MSG}"),
        ));
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && name.starts_with(alnum)
        && name.ends_with(alnum);
    if !ok {
        out.push(field::invalid(path, &v, QUALIFIED_NAME_MSG));
    }
}

/// ConfigMap / Secret data keys.
pub fn check_config_key(k: &str, path: &str, out: &mut Vec<Cause>) {
    let ok = !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && k != "."
        && k != ".."
        && !k.starts_with("..");
    if !ok {
        out.push(field::invalid(
            path,
            &Value::String(k.to_string()),
            CONFIG_KEY_MSG,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1035_label("1a"));
        assert!(check_name(NameRule::Subdomain, "Bad_Name", "metadata.name").is_some());
        let mut out = Vec::new();
        check_labels(
            &json!({"app.kubernetes.io/name": "x", "bad key!": "v", "k": "bad value"}),
            "metadata.labels",
            &mut out,
        );
        assert_eq!(out.len(), 2);
    }
}
