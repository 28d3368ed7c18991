//! Label and field selectors, parsed with the same grammar as
//! `k8s.io/apimachinery/pkg/labels` and `.../fields`.

use serde_json::Value;

use crate::util;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("unable to parse requirement: {0}")]
    Parse(String),
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = util::get_path(obj, &["metadata", "labels"]);
        self.reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            req_matches(r, v)
        })
    }
}

fn req_matches(r: &Requirement, v: Option<&str>) -> bool {
    match (&r.op, v) {
        (Op::Exists, v) => v.is_some(),
        (Op::NotExists, v) => v.is_none(),
        (Op::Eq(want), Some(v)) => v == want,
        (Op::In(set), Some(v)) => set.iter().any(|s| s == v),
        (Op::NotEq(want), v) => v != Some(want.as_str()),
        (Op::NotIn(set), v) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
        (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x > *n),
        (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x < *n),
        (_, None) => false,
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    let err = || SelectorError::Parse(part.to_string());
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement {
            key: valid_key(key.trim(), part)?,
            op: Op::NotExists,
        });
    }
    for (tok, ctor) in [("!=", 0), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some((k, v)) = part.split_once(tok) {
            let key = valid_key(k.trim(), part)?;
            let v = v.trim().to_string();
            let op = match ctor {
                0 => Op::NotEq(v),
                1 => Op::Eq(v),
                2 => Op::Gt(v.parse().map_err(|_| err())?),
                _ => Op::Lt(v.parse().map_err(|_| err())?),
            };
            return Ok(Requirement { key, op });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 1 {
        return Ok(Requirement {
            key: valid_key(words[0], part)?,
            op: Op::Exists,
        });
    }
    let key = valid_key(words[0], part)?;
    let rest = words[1].trim();
    let (negate, set) = if let Some(s) = rest.strip_prefix("notin") {
        (true, s)
    } else if let Some(s) = rest.strip_prefix("in") {
        (false, s)
    } else {
        return Err(err());
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(err)?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let op = if negate {
        Op::NotIn(values)
    } else {
        Op::In(values)
    };
    Ok(Requirement { key, op })
}

fn valid_key(key: &str, part: &str) -> Result<String, SelectorError> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(SelectorError::Parse(part.to_string()))
    }
}

/// A parsed field selector (`=`, `==`, `!=` terms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses and checks each field against the fields this kind supports.
    pub fn parse(s: &str, supported: &[String]) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError::Field(s.to_string(), part.to_string()));
            };
            let field = field.trim();
            if !supported.iter().any(|f| f == field) {
                return Err(SelectorError::UnsupportedField(field.to_string()));
            }
            terms.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The name an equality term on `metadata.name` pins, if any.
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, eq, want)| {
            let path: Vec<&str> = field.split('.').collect();
            let have = match util::get_path(obj, &path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "namespace": "ns1", "labels": labels}})
    }

    #[test]
    fn label_forms() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("missing notin (web)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier in (front)", true),
            ("app=web,tier=back", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_forms() {
        let supported = vec![
            "metadata.name".to_string(),
            "metadata.namespace".to_string(),
        ];
        let o = obj(json!({}));
        let s = FieldSelector::parse("metadata.name=n1,metadata.namespace!=x", &supported).unwrap();
        assert!(s.matches(&o));
        assert_eq!(s.pinned_name(), Some("n1"));
        let s = FieldSelector::parse("metadata.namespace==other", &supported).unwrap();
        assert!(!s.matches(&o));
        assert_eq!(
            FieldSelector::parse("spec.x=1", &supported),
            Err(SelectorError::UnsupportedField("spec.x".into()))
        );
    }
}
