//! Scalar resolution: which plain scalars are null, booleans or numbers.
//! plumb's own files use the YAML 1.2 core schema; manifests are read as
//! kubectl reads them (go-yaml v2, YAML 1.1, then JSON), because a scalar
//! resolved differently is applied differently: `defaultMode: 0400` is
//! octal 256 for kubectl and would be decimal 400 (mode 0620) under YAML
//! 1.2.

use serde_json::{Number, Value};
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

/// How plain (unquoted, untagged) scalars resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// YAML 1.2 core schema: plumb's config files.
    Core,
    /// What kubectl's reader does (YAML 1.1 as go-yaml v2 has it):
    /// `y`/`yes`/`on` (and `n`/`no`/`off`, any of the three casings) are
    /// booleans, `0644` is octal, `0b101` binary, `1_000` is 1000, and a
    /// float with an integral value is an integer in JSON. `.nan` and
    /// `.inf` have no JSON form: refused (kubectl fails on them too).
    Kubectl,
}

/// Why a scalar (or a tag on a node) cannot be read. Shown after the
/// place (and the tag) by [`super::YamlError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScalarError {
    /// A tagged scalar that is not what its tag says.
    #[error("{text:?} is not {what}")]
    NotA { text: String, what: &'static str },
    #[error(
        "unknown tag: plumb reads only the standard YAML tags (!!str, !!int, !!float, \
         !!bool, !!null, !!binary, !!timestamp, !!map, !!seq)"
    )]
    UnknownTag,
    /// A collection tag on the other kind of collection.
    #[error("not allowed on a {what} (only {want} is)")]
    WrongNode {
        what: &'static str,
        want: &'static str,
    },
    #[error("not base64: {0}")]
    NotBase64(#[source] base64::DecodeError),
    #[error(
        "the decoded bytes are not UTF-8 text; put binary data in a ConfigMap's binaryData or a Secret's data as base64 text, without the tag"
    )]
    NotUtf8,
    #[error("{text} is a float JSON cannot hold (kubectl fails on it too); quote it for a string")]
    NotFinite { text: String },
    #[error("{text} is out of range")]
    OutOfRange { text: String },
}

/// A tag as written: `!!binary` for the YAML ones, `!evil` for the rest.
pub(super) fn tag_name(tag: &Tag) -> String {
    match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        _ => format!("{}{}", tag.handle, tag.suffix),
    }
}

/// Resolves a scalar: an untagged plain one by `schema`, a quoted one or
/// one tagged `!!str` as a string. An explicit tag is resolved as kubectl's
/// decoder does (`!!binary` is base64 decoded; `!!int` must be an integer)
/// or refused: a tag plumb does not know would otherwise change the meaning
/// of a value silently.
pub(super) fn resolve_scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    schema: Schema,
) -> Result<Value, ScalarError> {
    let Some(tag) = tag else {
        if style != TScalarStyle::Plain {
            return Ok(Value::String(text));
        }
        return match schema {
            Schema::Core => Ok(resolve_core(text)),
            Schema::Kubectl => resolve_kubectl(text),
        };
    };
    let name = tag_name(tag);
    let must = |v: Option<Value>, what: &'static str| {
        v.ok_or_else(|| ScalarError::NotA {
            text: text.clone(),
            what,
        })
    };
    match name.as_str() {
        // `!` is the non-specific tag: a string.
        "!" | "!!str" => Ok(Value::String(text)),
        "!!null" => match resolve_core(text.clone()) {
            Value::Null => Ok(Value::Null),
            _ => Err(ScalarError::NotA { text, what: "null" }),
        },
        "!!bool" => must(
            Some(resolve_core(text.clone())).filter(Value::is_boolean),
            "a boolean",
        ),
        "!!int" => must(parse_int(&text).map(Value::Number), "an integer"),
        "!!float" => must(
            parse_int(&text).map(Value::Number).or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .filter(|_| looks_like_float(&text))
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            }),
            "a finite number",
        ),
        // YAML 1.1 timestamps reach JSON as their text.
        "!!timestamp" => Ok(Value::String(text)),
        "!!binary" => decode_binary(&text).map(Value::String),
        _ => Err(ScalarError::UnknownTag),
    }
}

/// A `!!binary` scalar as kubectl reads it: base64 (line breaks and spaces
/// ignored) whose bytes become the string value; bytes that are not UTF-8
/// cannot be a JSON string and are refused.
fn decode_binary(text: &str) -> Result<String, ScalarError> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(ScalarError::NotBase64)?;
    String::from_utf8(bytes).map_err(|_| ScalarError::NotUtf8)
}

/// The YAML 1.2 core schema: null, booleans (`true`/`false` only),
/// decimal, `0x` and `0o` integers, floats; anything else is a string.
fn resolve_core(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(&text) {
        return Value::Number(n);
    }
    if looks_like_float(&text)
        && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

fn parse_int(s: &str) -> Option<Number> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    !body.is_empty()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && body.chars().any(|c| c.is_ascii_digit())
}

fn resolve_kubectl(text: String) -> Result<Value, ScalarError> {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Err(ScalarError::NotFinite { text });
        }
        _ => {}
    }
    // go-yaml v2 tries numbers only for scalars starting so.
    if !text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
    {
        return Ok(Value::String(text));
    }
    let plain = text.replace('_', "");
    if let Some(n) = go_parse_int(&plain) {
        return Ok(Value::Number(n));
    }
    if go_style_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return json_number(f)
            .map(Value::Number)
            .ok_or(ScalarError::OutOfRange { text });
    }
    Ok(Value::String(text))
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`): a sign, then
/// `0x`, `0o`, `0b` or a leading `0` (octal) choose the base.
fn go_parse_int(s: &str) -> Option<Number> {
    let (neg, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, body) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

/// go-yaml v2's float pattern:
/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn go_style_float(s: &str) -> bool {
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.strip_prefix('.') {
        Some(frac) => !frac.is_empty() && digits(frac),
        None => {
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            !int.is_empty() && digits(int) && digits(frac)
        }
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A float as Go's JSON encoder writes it: an integral value is an integer.
fn json_number(f: f64) -> Option<Number> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() < EXACT {
        // Integral and exactly representable: the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Number::from(f as i64));
    }
    Number::from_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubectl(text: &str) -> Value {
        resolve_kubectl(text.to_string()).unwrap()
    }

    #[test]
    fn manifests_resolve_plain_scalars_as_kubectl_does() {
        assert_eq!(
            kubectl("0400"),
            256,
            "octal, as kubectl reads a defaultMode"
        );
        assert_eq!(kubectl("0644"), 420);
        assert_eq!(kubectl("-010"), -8);
        assert_eq!(kubectl("0x1F"), 31);
        assert_eq!(kubectl("0o17"), 15);
        assert_eq!(kubectl("0b101"), 5);
        assert_eq!(kubectl("1_000"), 1000);
        assert_eq!(
            kubectl("08"),
            8,
            "not octal: a float, written as an integer"
        );
        assert_eq!(kubectl("1.0"), 1);
        assert_eq!(kubectl("1.5"), 1.5);
        assert_eq!(kubectl("1e3"), 1000);
        assert_eq!(kubectl("0"), 0);
        assert_eq!(kubectl("yes"), true);
        assert_eq!(kubectl("On"), true);
        assert_eq!(kubectl("n"), false);
        assert_eq!(kubectl("OFF"), false);
        assert_eq!(kubectl("~"), Value::Null);
        assert_eq!(kubectl("1.2.3"), "1.2.3");
        assert_eq!(kubectl("v1"), "v1");
        assert_eq!(kubectl("-"), "-");
        assert_eq!(kubectl("1Gi"), "1Gi");
        assert_eq!(kubectl("10.0.0.1"), "10.0.0.1");
        assert!(resolve_kubectl(".nan".into()).is_err());
    }

    #[test]
    fn plumbs_own_files_keep_the_core_schema() {
        assert_eq!(resolve_core("0400".into()), 400);
        assert_eq!(resolve_core("yes".into()), "yes");
    }
}
