//! Literal checks Go's template parser makes: strings through
//! `strconv.Unquote`, char constants through `strconv.UnquoteChar`, numbers
//! through `strconv.ParseInt`/`ParseUint`/`ParseFloat` (base 0).

use super::lex::{Item, Kind};

/// A malformed literal, in the words of Go's parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    #[error("invalid syntax")]
    InvalidSyntax,
    #[error("malformed character constant: {0}")]
    MalformedChar(String),
    #[error("expected integer; found {0}")]
    ExpectedInteger(String),
    #[error("integer overflow: {0:?}")]
    Overflow(String),
    #[error("illegal number syntax: {0:?}")]
    IllegalNumber(String),
}

/// A string or raw string literal unquotes (Go's escapes).
pub fn unquote(item: &Item) -> Result<(), LiteralError> {
    if item.kind == Kind::RawString {
        return Ok(());
    }
    let inner = item
        .text
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(LiteralError::InvalidSyntax)?;
    let mut rest = inner;
    while !rest.is_empty() {
        rest = unquote_char(rest, '"').ok_or(LiteralError::InvalidSyntax)?;
    }
    Ok(())
}

/// A number, char or complex literal is well formed.
pub fn number(item: &Item) -> Result<(), LiteralError> {
    let text = item.text.as_str();
    match item.kind {
        Kind::CharConstant => {
            let inner = text.strip_prefix('\'').unwrap_or(text);
            match unquote_char(inner, '\'') {
                Some("'") => Ok(()),
                Some(_) => Err(LiteralError::MalformedChar(text.to_string())),
                None => Err(LiteralError::InvalidSyntax),
            }
        }
        Kind::Complex => {
            // `1+2i`: a real part, a sign, an imaginary part.
            let cut = text[1..].rfind(['+', '-']).map(|i| i + 1);
            match cut {
                Some(i) if is_float(&text[..i]) && is_float(text[i..].trim_end_matches('i')) => {
                    Ok(())
                }
                _ => Err(LiteralError::ExpectedInteger(text.to_string())),
            }
        }
        _ => {
            if let Some(imag) = text.strip_suffix('i')
                && is_float(imag)
            {
                return Ok(());
            }
            if is_int(text) {
                Ok(())
            } else if is_float(text) {
                // A float that looks like an integer did not fit an int.
                if text.contains(['.', 'e', 'E', 'p', 'P']) {
                    Ok(())
                } else {
                    Err(LiteralError::Overflow(text.to_string()))
                }
            } else {
                Err(LiteralError::IllegalNumber(text.to_string()))
            }
        }
    }
}

/// One (possibly escaped) character off the front of `s`; the rest.
fn unquote_char(s: &str, quote: char) -> Option<&str> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote {
        return None;
    }
    if c != '\\' {
        return Some(chars.as_str());
    }
    let e = chars.next()?;
    let rest = chars.as_str();
    let hex = |n: usize| -> Option<&str> {
        let digits = rest.get(..n)?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        (n == 2 || char::from_u32(v).is_some()).then_some(&rest[n..])
    };
    match e {
        'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' => Some(rest),
        '\'' | '"' if e == quote => Some(rest),
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        '0'..='7' => {
            let digits = s.get(1..4)?;
            let v = u32::from_str_radix(digits, 8).ok()?;
            (v <= 255).then(|| &s[4..])
        }
        _ => None,
    }
}

/// Underscores only between digits, or after a base prefix (Go's rule).
fn underscores_ok(s: &str) -> bool {
    let body = s.trim_start_matches(['+', '-']);
    let (prefixed, digits) = match body.get(..2) {
        Some("0x" | "0X" | "0o" | "0O" | "0b" | "0B") => (true, &body[2..]),
        _ => (false, body),
    };
    let mut prev = if prefixed { '0' } else { '.' };
    for c in digits.chars() {
        if c == '_' && !prev.is_ascii_hexdigit() {
            return false;
        }
        if prev == '_' && !c.is_ascii_hexdigit() {
            return false;
        }
        prev = c;
    }
    prev != '_'
}

fn is_int(text: &str) -> bool {
    if !underscores_ok(text) {
        return false;
    }
    let t = text.replace('_', "");
    let body = t.strip_prefix(['+', '-']).unwrap_or(&t);
    let (radix, digits) = match body.get(..2) {
        Some("0x" | "0X") => (16, &body[2..]),
        Some("0o" | "0O") => (8, &body[2..]),
        Some("0b" | "0B") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok()
}

fn is_float(text: &str) -> bool {
    if !underscores_ok(text) {
        return false;
    }
    let t = text.replace('_', "");
    let body = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        // A hex float needs a `p` exponent.
        return hex.split_once(['p', 'P']).is_some_and(|(m, e)| {
            !m.is_empty()
                && m.chars().all(|c| c.is_ascii_hexdigit() || c == '.')
                && e.trim_start_matches(['+', '-']).parse::<u32>().is_ok()
        });
    }
    let looks_decimal = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    looks_decimal && body.chars().any(|c| c.is_ascii_digit()) && body.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind, text: &str) -> Item {
        Item {
            kind,
            text: text.into(),
            line: 1,
        }
    }

    #[test]
    fn numbers_follow_go_syntax() {
        for ok in [
            "1", "-1", "1.5", ".5", "0x1F", "1e3", "1_000", "0o17", "2i", "08.5",
        ] {
            assert!(number(&item(Kind::Number, ok)).is_ok(), "{ok}");
        }
        for bad in ["-", "+", "0x", "1__0", "_1", "1e", "09"] {
            assert!(number(&item(Kind::Number, bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_follow_go_syntax() {
        assert!(unquote(&item(Kind::String, r#""a\n\t\"\x41\u00e9\101""#)).is_ok());
        assert!(unquote(&item(Kind::String, r#""\q""#)).is_err());
        assert!(unquote(&item(Kind::String, r#""\'""#)).is_err());
        assert!(number(&item(Kind::CharConstant, "'a'")).is_ok());
        assert!(number(&item(Kind::CharConstant, r"'\''")).is_ok());
        assert!(number(&item(Kind::CharConstant, "'ab'")).is_err());
    }
}
