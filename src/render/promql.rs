//! The Prometheus pieces of a rule file: PromQL expressions (parsed with the
//! `promql-parser` crate, Prometheus 3.x grammar), durations and names as
//! `prometheus/common/model` defines them.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};

/// Aggregations Prometheus gates behind
/// `--enable-feature=promql-experimental-functions` (`IsExperimentalAggregator`).
const EXPERIMENTAL_AGGREGATIONS: &[&str] = &["limitk", "limit_ratio"];

/// Why Prometheus would refuse an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// promql-parser's own message (it reports errors as text).
    #[error("{0}")]
    Syntax(String),
    /// The parser panicked (caught: the daemon stays up).
    #[error("the PromQL parser failed on this expression")]
    ParserFailed,
    /// A function or aggregation behind Prometheus' experimental flag.
    #[error("{what} is experimental and not enabled ({FLAG})")]
    Experimental { what: String },
    /// Binop fill modifiers, behind their own Prometheus flag.
    #[error(
        "binop fill modifiers are experimental and not enabled (Prometheus needs --enable-feature=promql-binop-fill-modifiers)"
    )]
    FillModifiers,
    /// A label-matcher regex Go's RE2 refuses.
    #[error("error parsing regexp: {problem} in {regex:?}")]
    Regex { problem: String, regex: String },
}

/// Parses `expr`; experimental features fail unless `experimental` allows
/// them, as Prometheus does without the feature flag.
pub fn check_expr(expr: &str, experimental: bool) -> Result<(), ExprError> {
    // The parser is third-party code fed user input: a panic in it must not
    // take the daemon down.
    let parsed =
        std::panic::catch_unwind(|| parser::parse(expr)).map_err(|_| ExprError::ParserFailed)?;
    let ast = parsed.map_err(ExprError::Syntax)?;
    let mut gate = Gate { experimental };
    walk_expr(&mut gate, &ast).map(|_| ())
}

/// What Prometheus rejects and `parse` lets through: experimental features
/// (unless allowed) and regexes Go's RE2 refuses.
struct Gate {
    experimental: bool,
}

const FLAG: &str = "Prometheus needs --enable-feature=promql-experimental-functions, and alerts.experimental_functions: true in plumb.yaml";

impl ExprVisitor for Gate {
    type Error = ExprError;

    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ExprError> {
        match e {
            Expr::VectorSelector(vs) => go_regexes(vs).map(|_| true),
            Expr::MatrixSelector(ms) => go_regexes(&ms.vs).map(|_| true),
            _ if self.experimental => Ok(true),
            Expr::Call(call) if call.func.experimental => Err(ExprError::Experimental {
                what: format!("function \"{}\"", call.func.name),
            }),
            Expr::Aggregate(agg) => {
                let op = agg.op.to_string();
                if EXPERIMENTAL_AGGREGATIONS.contains(&op.as_str()) {
                    return Err(ExprError::Experimental {
                        what: format!("{op}()"),
                    });
                }
                Ok(true)
            }
            Expr::Binary(b) => {
                let fill = b
                    .modifier
                    .as_ref()
                    .is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some());
                if fill {
                    return Err(ExprError::FillModifiers);
                }
                Ok(true)
            }
            _ => Ok(true),
        }
    }
}

/// Label-matcher regexes: promql-parser compiles them with Rust's `regex`,
/// Prometheus with Go's RE2, which also refuses stacked repetition
/// operators (`a**`, `a++`) and repeat counts over 1000.
fn go_regexes(vs: &VectorSelector) -> Result<(), ExprError> {
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all.filter(|m: &&Matcher| matches!(m.op, MatchOp::Re(_) | MatchOp::NotRe(_))) {
        if let Some(problem) = go_regex_problem(&m.value) {
            return Err(ExprError::Regex {
                problem,
                regex: m.value.clone(),
            });
        }
    }
    Ok(())
}

/// What Go's `regexp/syntax` (Perl flags) says about `re` that Rust's
/// `regex` does not: stacked repetitions and repeat counts over 1000.
pub fn go_regex_problem(re: &str) -> Option<String> {
    let chars: Vec<char> = re.chars().collect();
    let mut i = 0;
    let mut last_repeat = false;
    while i < chars.len() {
        let (repeat, len) = match chars[i] {
            '\\' => (false, escape_len(&chars, i)),
            '[' => (false, class_len(&chars, i)),
            '*' | '+' | '?' => (true, 1),
            '{' => match repeat_len(&chars, i) {
                Some((len, min, max)) => {
                    if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                        let text: String = chars[i..i + len].iter().collect();
                        return Some(format!("invalid repeat count: `{text}`"));
                    }
                    (true, len)
                }
                None => (false, 1),
            },
            _ => (false, 1),
        };
        if repeat {
            if last_repeat {
                return Some(format!(
                    "invalid nested repetition operator: `{}`",
                    chars[i]
                ));
            }
            // A `?` right after an operator makes it non-greedy.
            let lazy = chars.get(i + len) == Some(&'?');
            i += len + usize::from(lazy);
        } else {
            i += len;
        }
        last_repeat = repeat;
    }
    None
}

/// Length of the escape at `i` (`\d`, `\pL`, `\p{Greek}`, `\x{263a}`).
fn escape_len(chars: &[char], i: usize) -> usize {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('p' | 'P' | 'x'), Some('{')) => chars[i..]
            .iter()
            .position(|c| *c == '}')
            .map_or(chars.len() - i, |p| p + 1),
        (Some(_), _) => 2,
        (None, _) => 1,
    }
}

/// Length of the character class at `i`, up to its `]`.
fn class_len(chars: &[char], i: usize) -> usize {
    let mut j = i + 1;
    if chars.get(j) == Some(&'^') {
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        j += 1; // A leading `]` is literal.
    }
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '[' if chars.get(j + 1) == Some(&':') => {
                j += chars[j..]
                    .iter()
                    .position(|c| *c == ']')
                    .map_or(1, |p| p + 1);
            }
            ']' => return j + 1 - i,
            _ => j += 1,
        }
    }
    chars.len() - i
}

/// `{n}`, `{n,}` or `{n,m}` at `i`: (length, n, m). Anything else is a
/// literal `{` in Go.
fn repeat_len(chars: &[char], i: usize) -> Option<(usize, u64, Option<u64>)> {
    let close = chars[i..].iter().position(|c| *c == '}')?;
    let body: String = chars[i + 1..i + close].iter().collect();
    let (min, max) = match body.split_once(',') {
        None => (body.as_str(), Some(body.as_str())),
        Some((a, "")) => (a, None),
        Some((a, b)) => (a, Some(b)),
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    let min = num(min)?;
    let max = match max {
        Some(m) => Some(num(m)?),
        None => None,
    };
    Some((close + 1, min, max))
}

/// Why a text is not a Prometheus duration (Go's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// Milliseconds per unit, in the order a duration must list them.
const UNITS: &[(&str, u64)] = &[
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// A Prometheus duration (`model.ParseDuration`): `0`, or integers with
/// units `y w d h m s ms`, each at most once and in that order (`1h30m`).
/// No fractions, signs or spaces. Returns milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let bad = || DurationError::Invalid(text.to_string());
    let too_long = || DurationError::OutOfRange(text.to_string());
    let mut rest = text;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = if rest.starts_with("ms") {
            2
        } else {
            rest.chars().next().map_or(0, char::len_utf8)
        };
        let unit = rest.get(..unit_len).ok_or_else(bad)?;
        let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if idx < next_unit {
            return Err(bad());
        }
        next_unit = idx + 1;
        let part = n.checked_mul(UNITS[idx].1).ok_or_else(too_long)?;
        total = total
            .checked_add(part)
            // Go's time.Duration counts nanoseconds in an int64.
            .filter(|t| *t <= i64::MAX.unsigned_abs() / 1_000_000)
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A label name in Prometheus' legacy scheme: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A metric name in Prometheus' legacy scheme: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_prometheus() {
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1s500ms"), Ok(1500));
        for bad in ["", "1.5m", "5", "-5m", "30m1h", "1m1m", "5 m", "1M", "5mm"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999y").is_err());
    }

    #[test]
    fn experimental_functions_are_gated() {
        assert!(check_expr("rate(http_requests_total[5m]) > 1", false).is_ok());
        let e = check_expr("sort_by_label(up, \"job\")", false).unwrap_err();
        assert!(e.to_string().contains("experimental"), "{e}");
        assert!(check_expr("sort_by_label(up, \"job\")", true).is_ok());
        assert!(check_expr("limitk(2, up)", false).is_err());
        assert!(check_expr("rat(up[5m])", false).is_err());
    }

    #[test]
    fn regexes_go_refuses_are_refused() {
        assert!(
            check_expr("up{job=~\"a++\"}", false)
                .unwrap_err()
                .to_string()
                .contains("invalid nested repetition operator")
        );
        assert!(
            check_expr("up{job!~\"x{1001}\"}", false)
                .unwrap_err()
                .to_string()
                .contains("invalid repeat count")
        );
        for ok in [
            "a*?", "a{2}?b+", "[*+]+", "\\*+", "(a*)*", "x{1000}", "a{,3}", "\\p{L}+", "[]a]*",
            "a|b*",
        ] {
            assert_eq!(go_regex_problem(ok), None, "{ok}");
        }
        for bad in ["a**", "a*?*", "a{2}*", "a+{3}", "x{2,1}", "x{1,1001}"] {
            assert!(go_regex_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn names_use_the_legacy_scheme() {
        assert!(is_label_name("severity"));
        assert!(!is_label_name("team-name"));
        assert!(!is_label_name("1x"));
        assert!(is_metric_name("job:http_requests:rate5m"));
        assert!(!is_metric_name("job{x}"));
    }
}
