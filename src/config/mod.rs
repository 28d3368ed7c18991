//! The two configuration files: the daemon's own ([`daemon`]) and the config
//! repository's `plumb.yaml` ([`repo`]). Both are strict: unknown keys, wrong
//! types, missing required keys, duplicate names and bad values are errors
//! that name the file, the line and the key. Every problem found is reported,
//! not only the first.

pub mod daemon;
pub mod duration;
pub mod repo;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, de};

use crate::yaml::{self, Document, Pos};

pub use daemon::DaemonConfig;
pub use duration::GoDuration;
pub use repo::RepoConfig;

/// One problem in a config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub file: String,
    pub pos: Pos,
    /// The dotted key path, e.g. `apps.checkout.depends_on[0]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.pos, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.pos, self.key, self.message
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Issues(.0))]
    Invalid(Vec<Issue>),
}

impl ConfigError {
    /// The individual problems (empty for a read error).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid(v) => v,
            ConfigError::Read { .. } => &[],
        }
    }
}

struct Issues<'a>(&'a [Issue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Collects problems found by semantic checks, each placed by key path.
pub(crate) struct Checker<'a> {
    file: &'a str,
    doc: &'a Document,
    pub issues: Vec<Issue>,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a str, doc: &'a Document) -> Self {
        Checker {
            file,
            doc,
            issues: Vec::new(),
        }
    }

    pub fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        self.issues.push(Issue {
            file: self.file.to_string(),
            pos: self.doc.position(&key),
            key,
            message: message.into(),
        });
    }

    pub fn finish(mut self) -> Result<(), ConfigError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            self.issues.sort_by_key(|a| a.pos);
            Err(ConfigError::Invalid(self.issues))
        }
    }
}

/// Parses `text` (from `file`) as one YAML document of type `T`, reporting
/// every structural problem (unknown keys, wrong types, missing keys), not
/// only the first.
pub(crate) fn parse_typed<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(T, Document), ConfigError> {
    let read = read_structure::<T>(file, text)?;
    match read.value {
        Some(v) if read.issues.is_empty() => Ok((v, read.doc)),
        _ => Err(ConfigError::Invalid(sorted(read.issues))),
    }
}

/// [`parse_typed`], then the semantic checks of `check`, all problems
/// reported at once: when some keys did not fit their type, the checks still
/// run over the rest (what was left out is not checked again, and when a
/// whole entry had to be left out they do not run, to report no ghosts).
pub(crate) fn parse_checked<T: DeserializeOwned>(
    file: &str,
    text: &str,
    check: impl FnOnce(&T, &mut Checker<'_>),
) -> Result<T, ConfigError> {
    let read = read_structure::<T>(file, text)?;
    let mut checker = Checker::new(file, &read.doc);
    if let Some(v) = &read.value
        && !read.entries_removed
    {
        check(v, &mut checker);
        checker
            .issues
            .retain(|i| !read.removed.iter().any(|r| is_under(&i.key, r)));
    }
    let mut issues = read.issues;
    issues.append(&mut checker.issues);
    match read.value {
        Some(v) if issues.is_empty() => Ok(v),
        _ => Err(ConfigError::Invalid(sorted(issues))),
    }
}

fn sorted(mut issues: Vec<Issue>) -> Vec<Issue> {
    issues.sort_by_key(|a| a.pos);
    issues
}

/// Whether key path `key` is `parent` or inside it.
fn is_under(key: &str, parent: &str) -> bool {
    key.strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// What a structural read found.
struct Structural<T> {
    /// The value read once the misfits were taken out (`None` if none fit).
    value: Option<T>,
    doc: Document,
    issues: Vec<Issue>,
    /// Key paths taken out of the document to read past their problem.
    removed: Vec<String>,
    /// A whole entry (one with a missing key) was taken out.
    entries_removed: bool,
}

/// serde stops at the first problem. To report them all, the node at fault
/// is taken out of (a copy of) the document and the read is repeated; a key
/// that then goes missing because it was taken out is not reported again,
/// its entry is taken out instead. Bounded: each round removes a node.
fn read_structure<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<Structural<T>, ConfigError> {
    const MAX_ROUNDS: usize = 200;
    let issue = |pos, key: String, message: String| Issue {
        file: file.to_string(),
        pos,
        key,
        message,
    };
    let mut docs = yaml::parse_documents(text, &yaml::Limits::default()).map_err(|e| {
        ConfigError::Invalid(vec![issue(
            e.pos(),
            String::new(),
            strip_pos(&e.to_string()),
        )])
    })?;
    if docs.len() > 1 {
        let pos = docs[1].start;
        return Err(ConfigError::Invalid(vec![issue(
            pos,
            String::new(),
            "expected one YAML document, found several".into(),
        )]));
    }
    let Some(doc) = docs.pop().filter(|d| !d.value.is_null()) else {
        return Err(ConfigError::Invalid(vec![issue(
            Pos { line: 1, column: 1 },
            String::new(),
            "the file is empty".into(),
        )]));
    };
    let mut read = Structural {
        value: None,
        issues: Vec::new(),
        removed: Vec::new(),
        entries_removed: false,
        doc,
    };
    let mut value = read.doc.value.clone();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(v) => {
                read.value = Some(v);
                break;
            }
            Err(err) => err,
        };
        let mut key = render_path(err.path());
        let message = err.inner().to_string();
        if let Some(field) = unknown_field(&message)
            && !key.ends_with(field)
        {
            key = yaml::join_key(&key, field);
        }
        let missing = missing_field(&message).map(|f| yaml::join_key(&key, f));
        if missing.is_some() {
            read.entries_removed = true;
        }
        let caused_by_us = missing.is_some_and(|m| read.removed.contains(&m));
        if !caused_by_us {
            let pos = read.doc.position(&key);
            read.issues.push(issue(pos, key.clone(), message));
        }
        // Items of a list are not taken out one by one (the later ones
        // would move): the list goes.
        let key = match key.rfind('[') {
            Some(cut) if key.ends_with(']') => key[..cut].to_string(),
            _ => key,
        };
        if key.is_empty() || !remove_path(&mut value, &key) {
            break;
        }
        read.removed.push(key);
    }
    Ok(read)
}

/// serde's `missing field `x`` message → `x`.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Removes the node at key path `a.b[2].c` from `value`; whether it was
/// there. (A key holding a `.` cannot be addressed: then nothing happens.)
fn remove_path(value: &mut serde_json::Value, path: &str) -> bool {
    use serde_json::Value;
    let mut segments: Vec<&str> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            if open > 0 {
                segments.push(&rest[..open]);
            }
            let Some(close) = rest[open..].find(']') else {
                return false;
            };
            segments.push(&rest[open..open + close + 1]);
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            segments.push(rest);
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parents {
        let next = match (seg.strip_prefix('['), node) {
            (Some(idx), Value::Array(items)) => idx
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i)),
            (None, Value::Object(map)) => map.get_mut(*seg),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match node {
        Value::Object(map) => map.shift_remove(*last).is_some(),
        _ => false,
    }
}

/// yaml errors print as `L:C: message`; the issue carries the place itself.
fn strip_pos(s: &str) -> String {
    match s.split_once(": ") {
        Some((head, rest))
            if head.contains(':') && head.chars().all(|c| c.is_ascii_digit() || c == ':') =>
        {
            rest.into()
        }
        _ => s.into(),
    }
}

/// serde reports an unknown field while at its parent; name the field itself.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out = yaml::join_index(&out, *index),
            Segment::Map { key } => out = yaml::join_key(&out, key),
            Segment::Enum { variant } => out = yaml::join_key(&out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// A string that YAML authors may write unquoted as a number or boolean
/// (`replicas: 3`, `canary: true`): variables and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Variables for `${name}` substitution.
pub type Vars = BTreeMap<String, Scalar>;

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = "\
clusters:
  prod: {}
apps:
  web:
    path: apps/web
    namespace: web
    namespaces: web
    prune: sometimes
    suspend: 3
    colour: blue
    depends_on: [nope]
  api:
    path: apps/api
    namespace: Bad_NS
";

    #[test]
    fn every_problem_of_plumb_yaml_is_reported_at_once() {
        let err = RepoConfig::parse("plumb.yaml", BROKEN).unwrap_err();
        let lines: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
        let want = [
            "plumb.yaml:7:5: apps.web.namespaces: invalid type: string \"web\", expected a sequence",
            "plumb.yaml:8:5: apps.web.prune: invalid type: string \"sometimes\", expected a boolean",
            "plumb.yaml:9:5: apps.web.suspend: invalid type: integer `3`, expected a boolean",
            "plumb.yaml:10:5: apps.web.colour: unknown field `colour`",
            "plumb.yaml:11:18: apps.web.depends_on[0]: unknown app \"nope\"",
            "plumb.yaml:14:5: apps.api.namespace: \"Bad_NS\" is not a valid namespace name",
        ];
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        for (line, want) in lines.iter().zip(want) {
            assert!(line.starts_with(want), "{line}\n  wanted {want}");
        }
    }

    #[test]
    fn a_missing_key_leaves_its_entry_out_without_ghost_errors() {
        let text = "apps:\n  a:\n    namespace: x\n  b:\n    path: p\n    prune: no-thanks\n    depends_on: [a]\n";
        let err = RepoConfig::parse("plumb.yaml", text).unwrap_err();
        let lines: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(lines[0], "plumb.yaml:2:3: apps.a: missing field `path`");
        assert!(
            lines[1].starts_with("plumb.yaml:6:5: apps.b.prune: invalid type"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_bad_key_that_is_required_is_reported_once() {
        let text = "apps:\n  a:\n    path: [x]\n    namespace: x\n";
        let err = RepoConfig::parse("plumb.yaml", text).unwrap_err();
        let lines: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].starts_with("plumb.yaml:3:5: apps.a.path: invalid type"),
            "{lines:#?}"
        );
    }
}
