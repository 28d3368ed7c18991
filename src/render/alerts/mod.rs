//! `alerts/*.yaml`: Prometheus rule files, checked the way Prometheus'
//! `rulefmt.Parse` (and so `promtool check rules` and prometheus-operator's
//! admission webhook) checks them, then delivered as one `PrometheusRule`
//! (`monitoring.coreos.com/v1`) per file — one file stays one rule file on
//! the Prometheus side, so "group name repeated in the same file" means the
//! same thing in git and in Prometheus.
//!
//! Mirrors of `rulefmt` (see `model/rulefmt/rulefmt.go`):
//! - decoding with unknown fields rejected (`KnownFields(true)`), and
//!   yaml.v3's scalar rules: a number or boolean where a string is expected
//!   is taken as its text, `null` as empty;
//! - group: non-empty name unique in the file, `interval`/`query_offset`
//!   durations, integer `limit`, label names valid and not `__name__`;
//! - rule: exactly one of `alert`/`record`, non-empty `expr` that parses;
//!   recording rules without `annotations`, `for`, `keep_firing_for`, named
//!   as a metric without braces; valid label and annotation names;
//! - alerting rules: labels and annotations parse as Go templates.
//!
//! Names use Prometheus' legacy character set (`[a-zA-Z_][a-zA-Z0-9_]*`);
//! Prometheus 3 also accepts UTF-8 names, plumb does not (yet).

use serde_json::{Map, Value, json};

use super::generated::{Target, object_name, synthetic};
use super::promql::{check_expr, is_label_name, is_metric_name, parse_duration};
use super::{ParsedObject, RenderError, SourceFile, gotemplate};
use crate::config::repo::Alerts;
use crate::yaml::{self, Document, Pos, join_index, join_key};

/// What prometheus-operator accepts in one PrometheusRule: the rendered rule
/// file at most half a ConfigMap (`MaxConfigMapDataSize`, 512 KiB).
pub const MAX_RULES_BYTES: usize = 512 * 1024;

/// What a `null` group or rule stands for.
static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

const GROUP_FIELDS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "labels",
    "rules",
];
const RULE_FIELDS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// Switches of the rule check.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleOptions {
    /// Accept experimental PromQL (Prometheus started with
    /// `--enable-feature=promql-experimental-functions`).
    pub experimental_functions: bool,
}

/// A checked rule file: its groups as `spec.groups` of a PrometheusRule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    pub groups: Vec<Value>,
    /// Where the first group starts (the generated object's origin).
    pub start: Pos,
}

/// Checks the rule file `text` (`path` names it in errors).
pub fn check_rule_file(
    path: &str,
    text: &str,
    opts: RuleOptions,
    limits: &yaml::Limits,
) -> Result<RuleFile, Vec<RenderError>> {
    let at = |pos, msg: String| vec![RenderError::at(path, pos, msg)];
    let docs = yaml::parse_documents(text, limits).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .split_once(": ")
            .map_or(msg.clone(), |(_, m)| m.to_string());
        at(e.pos(), msg)
    })?;
    let mut docs = docs.into_iter();
    let doc = docs
        .next()
        .unwrap_or_else(|| Document::synthetic(Value::Null, Pos { line: 1, column: 1 }));
    if let Some(second) = docs.next() {
        // Prometheus would silently read only the first document.
        let msg = "a rule file holds one YAML document (Prometheus reads only the first)";
        return Err(at(second.start, msg.into()));
    }
    let mut walk = Walk {
        path,
        doc: &doc,
        opts,
        errors: Vec::new(),
    };
    let groups = walk.file();
    if walk.errors.is_empty() {
        Ok(RuleFile {
            groups,
            start: doc.position("groups[0]"),
        })
    } else {
        let mut errors = walk.errors;
        errors.sort_by(|a, b| a.origin.cmp(&b.origin));
        Err(errors)
    }
}

/// A scalar as yaml.v3 decodes it into a Go string (`None`: not a scalar).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
        _ => "a scalar",
    }
}

struct Walk<'a> {
    path: &'a str,
    doc: &'a Document,
    opts: RuleOptions,
    errors: Vec<RenderError>,
}

impl Walk<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        let pos = self.doc.position(key);
        self.errors.push(RenderError::at(self.path, pos, message));
    }

    /// A string field (absent or null: empty).
    fn string(&mut self, map: &Map<String, Value>, base: &str, field: &str) -> String {
        let v = map.get(field).unwrap_or(&Value::Null);
        scalar_text(v).unwrap_or_else(|| {
            let key = join_key(base, field);
            self.error(
                &key,
                format!("{key}: expected a string, found {}", kind_of(v)),
            );
            String::new()
        })
    }

    /// A sequence field (absent or null: empty).
    fn list<'v>(&mut self, v: Option<&'v Value>, key: &str) -> &'v [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    key,
                    format!("{key}: expected a list, found {}", kind_of(other)),
                );
                &[]
            }
        }
    }

    /// A mapping (`null`: empty); `what` names it in messages.
    fn mapping<'v>(
        &mut self,
        v: &'v Value,
        key: &str,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                self.error(
                    key,
                    format!("{what}: expected a mapping, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn unknown_fields(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        allowed: &[&str],
        what: &str,
    ) {
        for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.error(
                &join_key(base, k),
                format!(
                    "{what}: unknown field \"{k}\" (allowed: {})",
                    allowed.join(", ")
                ),
            );
        }
    }

    fn file(&mut self) -> Vec<Value> {
        let root = self.doc.value.clone();
        let Some(map) = self.mapping(&root, "", "a rule file") else {
            return Vec::new();
        };
        self.unknown_fields(map, "", &["groups"], "a rule file");
        let groups = self.list(map.get("groups"), "groups");
        let mut seen: Vec<(String, usize)> = Vec::new();
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if let Some(v) = self.group(i, g, &mut seen) {
                out.push(v);
            }
        }
        out
    }

    /// An item that must be a mapping (`null`: an empty one); `None` after
    /// reporting anything else.
    fn item<'v>(&mut self, v: &'v Value, key: &str, what: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Null => Some(&EMPTY),
            other => {
                let msg = format!("{what}: expected a mapping, found {}", kind_of(other));
                self.error(key, msg);
                None
            }
        }
    }

    fn group(&mut self, i: usize, g: &Value, seen: &mut Vec<(String, usize)>) -> Option<Value> {
        let key = join_index("groups", i);
        let map = self.item(g, &key, &format!("group {}", i + 1))?;
        self.unknown_fields(map, &key, GROUP_FIELDS, &format!("group {}", i + 1));
        let name = self.group_name(map, &key, i, seen);
        let what = format!("group \"{name}\"");
        let mut out = Map::new();
        out.insert("name".into(), Value::String(name.clone()));
        for field in ["interval", "query_offset"] {
            if let Some(d) = self.duration(map, &key, field, &what) {
                out.insert(field.into(), Value::String(d));
            }
        }
        if let Some(limit) = self.limit(map, &key, &what) {
            out.insert("limit".into(), limit);
        }
        if let Some(labels) = self.labels(map, &key, "labels", &what, true) {
            out.insert("labels".into(), Value::Object(labels));
        }
        let rules_key = join_key(&key, "rules");
        let rules = self.list(map.get("rules"), &rules_key);
        let rules: Vec<Value> = rules
            .iter()
            .enumerate()
            .map(|(j, r)| self.rule(&name, &rules_key, j, r))
            .collect();
        out.insert("rules".into(), Value::Array(rules));
        Some(Value::Object(out))
    }

    /// The group's name: not empty, not repeated in the file.
    fn group_name(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        i: usize,
        seen: &mut Vec<(String, usize)>,
    ) -> String {
        let name = self.string(map, key, "name");
        if name.is_empty() {
            let msg = format!("group {}: the group name must not be empty", i + 1);
            self.error(key, msg);
        } else if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            let line = self.doc.position(&join_index("groups", *first)).line;
            let msg = format!(
                "group name \"{name}\" is repeated in the same file (first at line {line})"
            );
            self.error(key, msg);
        }
        seen.push((name.clone(), i));
        name
    }

    /// A duration field kept as written; `None` if absent or null.
    fn duration(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        field: &str,
        what: &str,
    ) -> Option<String> {
        let v = map.get(field).filter(|v| !v.is_null())?;
        let text = self.string(map, base, field);
        // Not a scalar: `string` reported it.
        scalar_text(v)?;
        match parse_duration(&text) {
            Ok(_) => Some(text),
            Err(e) => {
                self.error(&join_key(base, field), format!("{what}: {field}: {e}"));
                None
            }
        }
    }

    fn limit(&mut self, map: &Map<String, Value>, base: &str, what: &str) -> Option<Value> {
        match map.get("limit") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_i64() => Some(Value::Number(n.clone())),
            Some(other) => {
                let msg = format!("{what}: limit: expected an integer, found {other}");
                self.error(&join_key(base, "limit"), msg);
                None
            }
        }
    }

    /// A string → string mapping; label names checked (`labels`: not
    /// `__name__` either). `None` if absent, null or empty.
    fn labels(
        &mut self,
        map: &Map<String, Value>,
        base: &str,
        field: &str,
        what: &str,
        is_labels: bool,
    ) -> Option<Map<String, Value>> {
        let key = join_key(base, field);
        let v = map.get(field)?;
        let entries = self.mapping(v, &key, &format!("{what}: {field}"))?;
        let mut out = Map::new();
        for (name, value) in entries {
            let at = join_key(&key, name);
            let kind = if is_labels { "label" } else { "annotation" };
            if !is_label_name(name) || (is_labels && name == "__name__") {
                self.error(&at, format!("{what}: invalid {kind} name: {name}"));
            }
            match scalar_text(value) {
                Some(s) => {
                    out.insert(name.clone(), Value::String(s));
                }
                None => self.error(
                    &at,
                    format!(
                        "{what}: {kind} {name}: expected a string, found {}",
                        kind_of(value)
                    ),
                ),
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

// One rule of a group: `rulefmt`'s `Rule.Validate` and its template test.

impl Walk<'_> {
    fn rule(&mut self, group: &str, rules_key: &str, j: usize, r: &Value) -> Value {
        let key = join_index(rules_key, j);
        let Some(map) = self.item(r, &key, &format!("group \"{group}\", rule {}", j + 1)) else {
            return Value::Null;
        };
        let alert = self.string(map, &key, "alert");
        let record = self.string(map, &key, "record");
        let name = if alert.is_empty() { &record } else { &alert };
        let what = format!("group \"{group}\", rule {} \"{name}\"", j + 1);
        self.unknown_fields(map, &key, RULE_FIELDS, &what);
        match (alert.is_empty(), record.is_empty()) {
            (false, false) => self.error(
                &key,
                format!("{what}: only one of 'record' and 'alert' must be set"),
            ),
            (true, true) => self.error(
                &key,
                format!("{what}: one of 'record' or 'alert' must be set"),
            ),
            _ => {}
        }
        let kind = if alert.is_empty() { "record" } else { "alert" };
        let mut out = Map::new();
        out.insert(kind.into(), Value::String(name.clone()));
        let expr = self.expr(map, &key, &what);
        out.insert("expr".into(), Value::String(expr));
        self.rule_durations(map, &key, !record.is_empty(), &what, &mut out);
        let labels = self.labels(map, &key, "labels", &what, true);
        let annotations = self.labels(map, &key, "annotations", &what, false);
        if !record.is_empty() {
            self.recording_rule(&key, &record, annotations.is_some(), &what);
        }
        if !alert.is_empty() {
            self.templates(&key, &alert, labels.as_ref(), annotations.as_ref(), &what);
        }
        for (field, m) in [("labels", labels), ("annotations", annotations)] {
            if let Some(m) = m {
                out.insert(field.into(), Value::Object(m));
            }
        }
        Value::Object(out)
    }

    /// `for` and `keep_firing_for`: durations, zero in recording rules.
    fn rule_durations(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        recording: bool,
        what: &str,
        out: &mut Map<String, Value>,
    ) {
        for field in ["for", "keep_firing_for"] {
            if let Some(d) = self.duration(map, key, field, what) {
                let nonzero = parse_duration(&d).is_ok_and(|ms| ms > 0);
                if recording && nonzero {
                    let msg = format!("{what}: invalid field '{field}' in recording rule");
                    self.error(&join_key(key, field), msg);
                }
                out.insert(field.into(), Value::String(d));
            }
        }
    }

    fn expr(&mut self, map: &Map<String, Value>, key: &str, what: &str) -> String {
        let expr = self.string(map, key, "expr");
        let at = join_key(key, "expr");
        if expr.is_empty() {
            let place = if map.contains_key("expr") {
                at.as_str()
            } else {
                key
            };
            self.error(place, format!("{what}: field 'expr' must be set in rule"));
        } else if let Err(e) = check_expr(&expr, self.opts.experimental_functions) {
            self.error(&at, format!("{what}: could not parse expression: {e}"));
        }
        expr
    }

    fn recording_rule(&mut self, key: &str, record: &str, has_annotations: bool, what: &str) {
        let at = join_key(key, "record");
        if has_annotations {
            let msg = format!("{what}: invalid field 'annotations' in recording rule");
            self.error(&join_key(key, "annotations"), msg);
        }
        if !is_metric_name(record) {
            self.error(
                &at,
                format!("{what}: invalid recording rule name: {record}"),
            );
        }
        if record.contains(['{', '}']) {
            // Prometheus' hint for a PromQL selector written as the name.
            let msg = format!(
                "{what}: braces present in the recording rule name; should it be in expr?: {record}"
            );
            self.error(&at, msg);
        }
    }

    /// Prometheus parses every label and annotation value of an alerting rule
    /// as a Go template named `__alert_<name>`.
    fn templates(
        &mut self,
        key: &str,
        alert: &str,
        labels: Option<&Map<String, Value>>,
        annotations: Option<&Map<String, Value>>,
        what: &str,
    ) {
        for (field, kind, entries) in [
            ("labels", "label", labels),
            ("annotations", "annotation", annotations),
        ] {
            for (name, value) in entries.into_iter().flatten() {
                let text = value.as_str().unwrap_or_default();
                if let Err(e) = gotemplate::check_alert_template(text) {
                    let at = join_key(&join_key(key, field), name);
                    let msg = format!(
                        "{what}: {kind} \"{name}\": template: __alert_{alert}:{}: {}",
                        e.line, e.message
                    );
                    self.error(&at, msg);
                }
            }
        }
    }
}

/// The PrometheusRule of one rule file, `None` for a file without groups.
/// `spec.groups` is the file's content (normalised: strings where Prometheus
/// reads strings), `metadata.labels` the profile's, so that the
/// Prometheus `ruleSelector` picks it up.
pub fn rule_object(
    target: &Target<'_>,
    profile: &Alerts,
    file: &SourceFile,
    rules: &RuleFile,
) -> Result<Option<ParsedObject>, RenderError> {
    if rules.groups.is_empty() {
        return Ok(None);
    }
    let spec = json!({ "groups": rules.groups });
    let size = serde_json::to_string(&spec).map_or(0, |s| s.len());
    if size > MAX_RULES_BYTES {
        return Err(RenderError::at(
            &file.path,
            rules.start,
            format!(
                "the rules of this file take {size} bytes; prometheus-operator refuses a PrometheusRule over {MAX_RULES_BYTES} bytes: split the file"
            ),
        ));
    }
    let stem = file
        .rel
        .strip_prefix("alerts/")
        .unwrap_or(&file.rel)
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml");
    let labels: Map<String, Value> = profile
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let value = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": object_name(target.app, stem),
            "namespace": target.namespace,
            "labels": labels,
        },
        "spec": spec,
    });
    Ok(Some(synthetic(value, &file.path, rules.start)))
}

#[cfg(test)]
mod tests;
