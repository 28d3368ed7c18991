//! JSON value helpers with structured-merge-diff semantics: its total order
//! over values (used to sort `k:`/`v:` path elements), its equality (numbers
//! compare numerically, so `1 == 1.0`), and the two ways the API server prints
//! a value (Go `%q`-style in conflict paths, Go-JSON in FieldsV1 keys).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Type rank in structured-merge-diff's `value.Compare`: numbers sort first,
/// then strings, booleans, lists, maps, and null last.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn as_integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn number_cmp(a: &Number, b: &Number) -> Ordering {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(0.0);
            let y = b.as_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

fn map_cmp(a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    let mut ak: Vec<&String> = a.keys().collect();
    let mut bk: Vec<&String> = b.keys().collect();
    ak.sort();
    bk.sort();
    for (ka, kb) in ak.iter().zip(bk.iter()) {
        let by_key = ka.cmp(kb);
        if by_key != Ordering::Equal {
            return by_key;
        }
        if let (Some(va), Some(vb)) = (a.get(*ka), b.get(*kb)) {
            let by_value = compare(va, vb);
            if by_value != Ordering::Equal {
                return by_value;
            }
        }
    }
    ak.len().cmp(&bk.len())
}

/// The total order of structured-merge-diff's `value.Compare`.
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (ea, eb) in x.iter().zip(y.iter()) {
                let c = compare(ea, eb);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => map_cmp(x, y),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Deep equality as structured-merge-diff's `value.Equals` (map key order is
/// irrelevant, `1` equals `1.0`).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| equal(v, other)))
        }
        _ => a == b,
    }
}

/// Go's `strconv.Quote` for the common cases (printable text is kept as is).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// structured-merge-diff's `value.ToString`, used when printing paths such as
/// `.spec.containers[name="app"]` or `.metadata.finalizers[="x"]`.
pub(crate) fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", go_string(v)))
            .collect::<Vec<_>>()
            .join(""),
    }
}

/// Compact JSON as Go's `encoding/json` writes it: like serde_json, but `<`,
/// `>`, `&`, U+2028 and U+2029 are escaped. Those characters can only occur
/// inside string literals, so escaping them on the whole text is safe.
pub(crate) fn go_json(v: &Value) -> String {
    let plain = v.to_string();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_sort_before_strings_booleans_lists_maps_and_null() {
        let ordered = [
            json!(1),
            json!(2.5),
            json!("a"),
            json!(false),
            json!([1]),
            json!({"a": 1}),
            json!(null),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn integers_and_floats_compare_numerically() {
        assert_eq!(compare(&json!(1), &json!(1.0)), Ordering::Equal);
        assert!(equal(&json!({"a": 1}), &json!({"a": 1.0})));
        assert_eq!(compare(&json!(80), &json!(443)), Ordering::Less);
    }

    #[test]
    fn map_equality_ignores_key_order() {
        assert!(equal(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        assert!(!equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn strings_print_quoted_like_go() {
        assert_eq!(go_string(&json!("app")), "\"app\"");
        assert_eq!(go_string(&json!(80)), "80");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[test]
    fn go_json_escapes_html_characters() {
        assert_eq!(
            go_json(&json!({"k": "a<b>&"})),
            r#"{"k":"a\u003cb\u003e\u0026"}"#
        );
    }
}
