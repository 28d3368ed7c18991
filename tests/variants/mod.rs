//! Rule-file variants derived from the corpus: each takes a real file and
//! changes one thing (the first rule's `expr`, a duration, a template, the
//! structure ...). Most are broken on purpose; some are valid edge cases
//! that a validator must not reject.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub struct Variant {
    pub name: String,
    pub text: String,
    /// Valid for Prometheus 3.x (plumb's target).
    pub valid: bool,
}

/// Replaces the first line whose trimmed start is `prefix` with `f(indent)`
/// (an empty result removes the line).
fn edit(text: &str, prefix: &str, f: impl FnOnce(&str) -> String) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} to derive a variant from"));
    let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
    let new = f(&indent);
    if new.is_empty() {
        lines.remove(i);
    } else {
        lines[i] = new;
    }
    lines.join("\n") + "\n"
}

/// `key: value` in place of the first `key:` line.
fn set(text: &str, key: &str, value: &str) -> String {
    edit(text, key, |ind| format!("{ind}{key} {value}"))
}

/// Adds `line` (at the same indent, plus `extra`) after the first `prefix` line.
fn after(text: &str, prefix: &str, extra: &str, line: &str) -> String {
    edit(text, prefix, |ind| {
        let original = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_default()
            .to_string();
        format!("{original}\n{ind}{extra}{line}")
    })
}

/// A single-quoted YAML scalar.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn with_group(text: &str, group: &str) -> String {
    format!("{}\n{group}", text.trim_end())
}

type Make = fn(&str) -> String;

/// How a variant derives from a corpus file.
enum How {
    Edit(Make),
    /// The first `key` line set to this (quoted) value.
    Set(&'static str, &'static str),
}

impl How {
    fn apply(&self, text: &str) -> String {
        match self {
            How::Edit(make) => make(text),
            How::Set(key, value) => set(text, key, &q(value)),
        }
    }
}

/// (name, valid, how) for the variants of one corpus file each.
fn recipes() -> Vec<(&'static str, bool, How)> {
    let edits = [expr_recipes(), duration_recipes(), structure_recipes()];
    let mut v: Vec<(&'static str, bool, How)> = edits
        .into_iter()
        .flatten()
        .map(|(name, valid, make)| (name, valid, How::Edit(make)))
        .collect();
    v.extend(template_recipes());
    v
}

fn expr_recipes() -> Vec<(&'static str, bool, Make)> {
    vec![
        ("expr-unknown-function", false, |t| {
            set(t, "expr:", &q("rat(up[5m]) > 0"))
        }),
        ("expr-unclosed-paren", false, |t| {
            set(t, "expr:", &q("sum(rate(up[5m])"))
        }),
        ("expr-aggregate-over-range", false, |t| {
            set(t, "expr:", &q("sum(up[5m])"))
        }),
        ("expr-range-on-function", false, |t| {
            set(t, "expr:", &q("abs(up)[5m]"))
        }),
        ("expr-bad-range-unit", false, |t| {
            set(t, "expr:", &q("rate(up[5x])"))
        }),
        ("expr-fractional-range", false, |t| {
            set(t, "expr:", &q("rate(up[1.5m])"))
        }),
        ("expr-trailing-operator", false, |t| {
            set(t, "expr:", &q("up >"))
        }),
        ("expr-empty-matchers", false, |t| {
            set(t, "expr:", &q("{job=\"\"}"))
        }),
        ("expr-scalar-comparison", false, |t| {
            set(t, "expr:", &q("1 > 2"))
        }),
        ("expr-bad-regex", false, |t| {
            set(t, "expr:", &q("up{job=~\"(\"}"))
        }),
        ("expr-wrong-arity", false, |t| {
            set(t, "expr:", &q("rate(up[5m], 1)"))
        }),
        ("expr-wrong-argument-type", false, |t| {
            set(t, "expr:", &q("rate(up)"))
        }),
        ("expr-unterminated-string", false, |t| {
            set(t, "expr:", &q("up{job=\"x}"))
        }),
        ("expr-experimental-function", false, |t| {
            set(t, "expr:", &q("sort_by_label(up, \"job\")"))
        }),
        ("expr-experimental-aggregation", false, |t| {
            set(t, "expr:", &q("limitk(2, up)"))
        }),
        ("expr-empty", false, |t| set(t, "expr:", "''")),
        ("expr-missing", false, |t| {
            edit(t, "expr:", |_| String::new())
        }),
        ("expr-not-a-string", false, |t| set(t, "expr:", "[up]")),
        ("expr-regex-nested-repetition", false, |t| {
            set(t, "expr:", &q("up{job=~\"a++\"}"))
        }),
        ("expr-regex-repeat-over-1000", false, |t| {
            set(t, "expr:", &q("up{job=~\"x{1001}\"}"))
        }),
        ("expr-regex-quoted-literal", false, |t| {
            set(t, "expr:", &q("up{job=~\"\\\\Qa.b\\\\E\"}"))
        }),
        ("expr-regex-classes", true, |t| {
            set(
                t,
                "expr:",
                &q("up{job=~\"(?i)api-[[:alnum:]]+|\\\\d{2,3}\"}"),
            )
        }),
        ("expr-string-literal", true, |t| {
            set(t, "expr:", &q("\"a string\""))
        }),
        ("expr-number", true, |t| set(t, "expr:", "1")),
        ("expr-offset-and-at", true, |t| {
            set(t, "expr:", &q("up offset 5m > up @ end()"))
        }),
        ("expr-subquery", true, |t| {
            set(t, "expr:", &q("max_over_time(rate(up[1m])[10m:1m]) > 0"))
        }),
        ("expr-histogram-avg", true, |t| {
            set(
                t,
                "expr:",
                &q("histogram_avg(rate(http_request_duration_seconds[5m])) > 1"),
            )
        }),
        ("expr-utf8-metric-name", true, |t| {
            set(t, "expr:", &q("{\"my.metric\"} > 0"))
        }),
        ("expr-duration-as-number", true, |t| {
            set(t, "expr:", &q("time() - process_start_time_seconds > 100d"))
        }),
        ("expr-holt-winters", false, |t| {
            set(t, "expr:", &q("holt_winters(up[1h], 0.5, 0.5) > 0"))
        }),
    ]
}

fn duration_recipes() -> Vec<(&'static str, bool, Make)> {
    vec![
        ("for-fractional", false, |t| set(t, "for:", "1.5m")),
        ("for-no-unit", false, |t| set(t, "for:", "5")),
        ("for-wrong-order", false, |t| set(t, "for:", "30m1h")),
        ("for-negative", false, |t| set(t, "for:", "-5m")),
        ("for-words", false, |t| set(t, "for:", "5 minutes")),
        ("for-compound", true, |t| set(t, "for:", "1h30m")),
        ("for-zero", true, |t| set(t, "for:", "0")),
        ("keep-firing-for", true, |t| {
            after(t, "for:", "", "keep_firing_for: 10m")
        }),
        ("keep-firing-for-bad", false, |t| {
            after(t, "for:", "", "keep_firing_for: 10 m")
        }),
        ("group-interval-bad", false, |t| {
            after(t, "- name:", "  ", "interval: 2h1d")
        }),
        ("group-interval-and-limit", true, |t| {
            after(t, "- name:", "  ", "interval: 1m\n  limit: 10")
        }),
        ("group-limit-not-int", false, |t| {
            after(t, "- name:", "  ", "limit: ten")
        }),
        ("group-query-offset", true, |t| {
            after(t, "- name:", "  ", "query_offset: 1m")
        }),
    ]
}

fn structure_recipes() -> Vec<(&'static str, bool, Make)> {
    vec![
        ("group-duplicate", false, |t| {
            let groups = t.split_once("groups:").unwrap().1;
            format!("{}\n{groups}", t.trim_end())
        }),
        ("group-name-empty", false, |t| set(t, "- name:", "''")),
        ("group-unknown-field", false, |t| {
            after(t, "- name:", "  ", "partial_response_strategy: warn")
        }),
        ("group-labels", true, |t| {
            after(t, "- name:", "  ", "labels:\n    team: platform")
        }),
        ("rule-unknown-field", false, |t| {
            after(t, "expr:", "", "fro: 5m")
        }),
        ("file-unknown-field", false, |t| {
            format!("namespace: monitoring\n{t}")
        }),
        ("rule-both-alert-and-record", false, |t| {
            after(t, "- alert:", "  ", "record: job:up:sum")
        }),
        ("rule-neither-alert-nor-record", false, |t| {
            set(t, "- alert:", "''").replacen("- alert: ''", "- record: ''", 1)
        }),
        ("recording-rule-with-annotations", false, |t| {
            set(t, "- alert:", "job:up:sum").replacen(
                "- alert: job:up:sum",
                "- record: job:up:sum",
                1,
            )
        }),
        ("recording-rule-bad-name", false, |t| {
            with_group(
                t,
                "- name: plumb-recording\n  rules:\n    - record: bad-name\n      expr: sum(up)\n",
            )
        }),
        ("recording-rule-braces", false, |t| {
            with_group(
                t,
                "- name: plumb-recording\n  rules:\n    - record: 'up{job=\"a\"}'\n      expr: sum(up)\n",
            )
        }),
        ("recording-rule-with-for", false, |t| {
            with_group(
                t,
                "- name: plumb-recording\n  rules:\n    - record: job:up:sum\n      expr: sum(up)\n      for: 5m\n",
            )
        }),
        ("recording-rule", true, |t| {
            with_group(
                t,
                "- name: plumb-recording\n  interval: 30s\n  rules:\n    - record: job:up:sum\n      expr: sum by (job) (up)\n      labels:\n        team: platform\n",
            )
        }),
        ("label-name-invalid", false, |t| {
            after(t, "severity:", "", "team-name: platform")
        }),
        ("label-name-reserved", false, |t| {
            after(t, "severity:", "", "__name__: x")
        }),
        ("label-value-not-a-string", false, |t| {
            after(t, "severity:", "", "extra: {a: b}")
        }),
        ("label-value-number", true, |t| set(t, "severity:", "1")),
        ("label-name-underscore", true, |t| {
            after(t, "severity:", "", "_team: platform")
        }),
        ("annotation-name-invalid", false, |t| {
            after(t, "summary:", "", "summary-text: x")
        }),
        ("alert-name-with-spaces", true, |t| {
            set(t, "- alert:", "High latency")
        }),
        ("groups-not-a-list", false, |_| {
            "groups:\n  name: x\n".into()
        }),
        ("yaml-syntax-error", false, |t| set(t, "expr:", "[unclosed")),
        ("yaml-duplicate-key", false, |t| {
            after(t, "for:", "", "for: 10m")
        }),
        ("two-documents", false, |t| {
            format!("{}\n---\ngroups: []\n", t.trim_end())
        }),
        ("empty-file", true, |_| String::new()),
        ("comment-only", true, |_| "# no rules yet\n".into()),
    ]
}

/// Go templates set into the first rule (name, valid, key, template).
const TEMPLATES: &[(&str, bool, &str, &str)] = &[
    (
        "template-unclosed-action",
        false,
        "summary:",
        "down {{ $labels.instance }",
    ),
    (
        "template-unknown-function",
        false,
        "summary:",
        "{{ humanise $value }}",
    ),
    (
        "template-undefined-variable",
        false,
        "summary:",
        "{{ $lables.instance }}",
    ),
    ("template-stray-end", false, "summary:", "x {{ end }}"),
    (
        "template-missing-end",
        false,
        "summary:",
        "{{ if gt $value 1.0 }}high",
    ),
    (
        "template-unterminated-string",
        false,
        "summary:",
        "{{ printf \"%.2f $value }}",
    ),
    (
        "template-bad-character",
        false,
        "summary:",
        "{{ $labels.instance# }}",
    ),
    ("template-in-label", false, "severity:", "{{ $nope }}"),
    (
        "template-break-outside-range",
        false,
        "summary:",
        "{{ break }}",
    ),
    (
        "template-unclosed-comment",
        false,
        "summary:",
        "{{/* note }}",
    ),
    (
        "template-dot-after-literal",
        false,
        "summary:",
        "{{ \"x\".y }}",
    ),
    (
        "template-literal-in-pipeline",
        false,
        "summary:",
        "{{ $value | 2 }}",
    ),
    ("template-else-outside-if", false, "summary:", "{{ else }}"),
    ("template-bad-number", false, "summary:", "{{ 1x }}"),
    ("template-bad-escape", false, "summary:", "{{ \"\\q\" }}"),
    (
        "template-unexpected-right-paren",
        false,
        "summary:",
        "{{ ) }}",
    ),
    (
        "template-too-many-range-vars",
        false,
        "summary:",
        "{{ range $a, $b, $c := $labels }}{{ end }}",
    ),
    (
        "template-define-unclosed",
        false,
        "summary:",
        "{{ define \"x\" }}y",
    ),
    (
        "template-if-else-if",
        true,
        "summary:",
        "{{ if gt $value 1.0 }}high{{ else if lt $value 0.5 }}low{{ else }}mid{{ end }}",
    ),
    (
        "template-range",
        true,
        "summary:",
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
    ),
    (
        "template-with",
        true,
        "summary:",
        "{{ with $labels.pod }}{{ . }}{{ else }}none{{ end }}",
    ),
    (
        "template-functions",
        true,
        "summary:",
        "{{ $value | humanizePercentage }} {{ printf \"%.2f\" $value }} {{ $labels.job | toUpper }} {{ reReplaceAll \"(.*)\" \"$1\" $labels.instance }}",
    ),
    (
        "template-comment-and-trim",
        true,
        "summary:",
        "{{- /* note */ -}} x {{- $value -}}",
    ),
    (
        "template-define-and-call",
        true,
        "summary:",
        "{{ define \"x\" }}y{{ end }}{{ template \"x\" }}",
    ),
    ("template-trailing-pipe", true, "summary:", "{{ $value | }}"),
    (
        "template-nested-parens",
        true,
        "summary:",
        "{{ (printf \"%s\" (index $labels \"job\")) }}",
    ),
    (
        "template-raw-string-and-char",
        true,
        "summary:",
        "{{ `raw` }} {{ printf \"%c\" 'x' }}",
    ),
    (
        "template-query",
        true,
        "summary:",
        "{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}",
    ),
];

fn template_recipes() -> Vec<(&'static str, bool, How)> {
    TEMPLATES
        .iter()
        .map(|&(name, valid, key, template)| (name, valid, How::Set(key, template)))
        .collect()
}

/// Derives every variant, each from the next eligible corpus file in turn.
pub fn derive(corpus: &[(String, String)]) -> Vec<Variant> {
    let eligible: Vec<&str> = corpus
        .iter()
        .map(|(_, t)| t.as_str())
        .filter(|t| {
            ["- alert:", "expr:", "for:", "severity:", "summary:"]
                .iter()
                .all(|k| t.lines().any(|l| l.trim_start().starts_with(k)))
                && t.split("- alert:").next().is_some_and(|head| {
                    !head.contains("rules: null") && head.matches("- name:").count() == 1
                })
        })
        .collect();
    assert!(
        !eligible.is_empty(),
        "no corpus file to derive variants from"
    );
    recipes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, valid, how))| Variant {
            name: name.to_string(),
            text: how.apply(eligible[i % eligible.len()]),
            valid,
        })
        .collect()
}
