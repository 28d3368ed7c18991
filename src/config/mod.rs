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

/// Parses `text` (from `file`) as one YAML document of type `T`.
pub(crate) fn parse_typed<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(T, Document), ConfigError> {
    let issue = |pos, key: String, message: String| {
        ConfigError::Invalid(vec![Issue {
            file: file.to_string(),
            pos,
            key,
            message,
        }])
    };
    let mut docs = yaml::parse_documents(text, &yaml::Limits::default())
        .map_err(|e| issue(e.pos(), String::new(), strip_pos(&e.to_string())))?;
    if docs.len() > 1 {
        let pos = docs[1].start;
        return Err(issue(
            pos,
            String::new(),
            "expected one YAML document, found several".into(),
        ));
    }
    let Some(doc) = docs.pop().filter(|d| !d.value.is_null()) else {
        return Err(issue(
            Pos { line: 1, column: 1 },
            String::new(),
            "the file is empty".into(),
        ));
    };
    match serde_path_to_error::deserialize::<_, T>(&doc.value) {
        Ok(v) => Ok((v, doc)),
        Err(err) => {
            let mut key = render_path(err.path());
            let message = err.inner().to_string();
            if let Some(field) = unknown_field(&message)
                && !key.ends_with(field)
            {
                key = yaml::join_key(&key, field);
            }
            let pos = doc.position(&key);
            Err(issue(pos, key, message))
        }
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
