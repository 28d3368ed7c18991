//! Located YAML: parses YAML text into JSON values while remembering where
//! every key and item came from, so that any later error (a serde type error,
//! a semantic check, an API server's rejection) can name `file:line:col`.
//!
//! Built on `yaml-rust2`'s marked event parser rather than `serde_yaml`,
//! because serde_yaml keeps no positions for values that deserialize fine and
//! has no budget for alias expansion. This module also turns hostile input
//! into errors instead of outages: duplicate keys, alias bombs ("billion
//! laughs"), nesting depth and total size are all bounded.
//!
//! It is also strict where YAML parsers disagree, so that what plumb applies
//! is what kubectl would read and what a reviewer sees: bytes that are not
//! UTF-8 and characters YAML forbids (a NUL byte used to end the file here,
//! silently) are refused with their place ([`decode_text`]); a leading BOM is
//! skipped as kubectl does; tags are resolved as kubectl's decoder does
//! (`!!binary` decoded) or refused (`!evil`), never dropped; merge keys
//! (`<<`) merge; manifests' plain scalars resolve as kubectl's YAML 1.1
//! reader resolves them ([`parse_manifest_documents`], [`Schema`]); and
//! `.json` files are parsed as strict JSON ([`parse_json_documents`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::Value;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::{Marker, TScalarStyle};

mod builder;
mod json;
mod scalar;

use builder::Builder;
pub use json::parse_json_documents;
pub use scalar::{ScalarError, Schema};

/// A 1-based line and column in a YAML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Pos {
    fn from_marker(m: Marker) -> Pos {
        // yaml-rust2 lines are 1-based, columns 0-based.
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

/// Bounds that keep a hostile file from exhausting the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest text accepted, in bytes.
    pub max_bytes: usize,
    /// Most nodes (scalars, maps, lists) produced, counting alias expansion.
    pub max_nodes: usize,
    /// Deepest nesting of maps and lists.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_nodes: 1_000_000,
            max_depth: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("{pos}: YAML syntax error: {message}")]
    Syntax { pos: Pos, message: String },
    #[error("{pos}: {path}: duplicate key `{key}`")]
    DuplicateKey { pos: Pos, path: String, key: String },
    #[error("{pos}: nesting deeper than {max} levels")]
    TooDeep { pos: Pos, max: usize },
    #[error("{pos}: document expands to more than {max} nodes (alias bomb?)")]
    TooManyNodes { pos: Pos, max: usize },
    #[error("1:1: file is {size} bytes, larger than the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("{pos}: alias refers to an unknown anchor")]
    UnknownAlias { pos: Pos },
    #[error("{pos}: not UTF-8 text (invalid byte sequence here)")]
    NotUtf8 { pos: Pos },
    #[error("{pos}: character {code} is not allowed here: {why}")]
    ForbiddenChar {
        pos: Pos,
        /// `U+0000`.
        code: String,
        why: &'static str,
    },
    #[error("{pos}: tag {tag}: {problem}")]
    Tag {
        pos: Pos,
        tag: String,
        #[source]
        problem: ScalarError,
    },
    #[error("{pos}: {problem}")]
    Scalar {
        pos: Pos,
        #[source]
        problem: ScalarError,
    },
    #[error("{pos}: JSON syntax error: {message}")]
    Json { pos: Pos, message: String },
}

impl YamlError {
    /// What is wrong, without the place (for messages that carry it apart).
    pub fn message(&self) -> String {
        let text = self.to_string();
        match text.split_once(": ") {
            Some((_, message)) => message.to_string(),
            None => text,
        }
    }

    /// Where the problem is.
    pub fn pos(&self) -> Pos {
        match self {
            YamlError::Syntax { pos, .. }
            | YamlError::DuplicateKey { pos, .. }
            | YamlError::TooDeep { pos, .. }
            | YamlError::TooManyNodes { pos, .. }
            | YamlError::UnknownAlias { pos }
            | YamlError::NotUtf8 { pos }
            | YamlError::ForbiddenChar { pos, .. }
            | YamlError::Tag { pos, .. }
            | YamlError::Scalar { pos, .. }
            | YamlError::Json { pos, .. } => *pos,
            YamlError::TooLarge { .. } => Pos { line: 1, column: 1 },
        }
    }
}

/// One YAML document as a JSON value plus the position of every node.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// Where the document's root node starts.
    pub start: Pos,
    positions: HashMap<String, Pos>,
    /// Paths of the plain (unquoted) scalars that hold a `${` (or
    /// [`SUBST_MARK`]): the ones
    /// variable substitution re-reads as YAML would ([`Document::is_plain`]).
    plain_refs: HashSet<String>,
}

impl Document {
    /// A document plumb generated itself (from a dashboard or a rule file):
    /// every position is `start`, the place of its source.
    pub fn synthetic(value: Value, start: Pos) -> Document {
        Document {
            value,
            start,
            positions: HashMap::new(),
            plain_refs: HashSet::new(),
        }
    }

    /// Whether the scalar at `path` was written plain (unquoted), known for
    /// scalars holding `${` only: after substitution such a value resolves
    /// like any plain scalar ([`resolve_plain`]), a quoted one stays a string.
    pub fn is_plain(&self, path: &str) -> bool {
        self.plain_refs.contains(path)
    }

    /// The position of the node at `path` (`a.b[2].c`), or of its nearest
    /// ancestor that exists (a missing key is reported where its parent is).
    pub fn position(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if p.is_empty() {
                return self.start;
            }
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return self.start,
            }
        }
    }
}

/// The path one level up: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Appends a map key to a path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index to a path.
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The byte-order mark some editors put at the start of a file.
const BOM: char = '\u{feff}';

/// A file's bytes as text for the YAML and JSON readers: UTF-8 (an invalid
/// sequence is refused at its line and column), a leading byte-order mark
/// skipped (kubectl skips it too), and no character YAML forbids
/// ([`check_chars`]).
pub fn decode_text(bytes: &[u8]) -> Result<&str, YamlError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let valid = valid.strip_prefix(BOM).unwrap_or(valid);
            return Err(YamlError::NotUtf8 { pos: end_of(valid) });
        }
    };
    let text = text.strip_prefix(BOM).unwrap_or(text);
    check_chars(text)?;
    Ok(text)
}

/// The position just after `text`.
fn end_of(text: &str) -> Pos {
    let line = 1 + text.matches('\n').count();
    let last = text.rsplit('\n').next().unwrap_or_default();
    Pos {
        line,
        column: last.chars().count() + 1,
    }
}

/// Refuses the characters YAML does not allow in a stream (C0 controls but
/// tab and line breaks, DEL, C1 controls, U+FFFE/U+FFFF) and the ones YAML
/// readers disagree on (U+0085, U+2028 and U+2029 are line breaks for
/// kubectl's YAML 1.1 reader, not for YAML 1.2). Readers stop at a NUL byte
/// or skip such characters differently: accepting them would mean applying
/// something other than what a reviewer (or `git diff`, which shows such a
/// file as binary) sees.
pub fn check_chars(text: &str) -> Result<(), YamlError> {
    let plain = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e);
    if text.bytes().all(plain) {
        return Ok(());
    }
    let (mut line, mut column) = (1, 1);
    for c in text.chars() {
        if let Some(why) = forbidden(c) {
            return Err(YamlError::ForbiddenChar {
                pos: Pos { line, column },
                code: format!("U+{:04X}", u32::from(c)),
                why,
            });
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Ok(())
}

fn forbidden(c: char) -> Option<&'static str> {
    match c {
        '\t' | '\n' | '\r' => None,
        '\0' => Some("a NUL byte (some readers end the file there)"),
        '\u{1}'..='\u{1f}' | '\u{7f}' => {
            Some("control characters other than tab and line breaks are forbidden in YAML")
        }
        '\u{85}' | '\u{2028}' | '\u{2029}' => {
            Some("a line break for some YAML readers and not for others")
        }
        '\u{80}'..='\u{9f}' => Some("C1 control characters are forbidden in YAML"),
        '\u{fffe}' | '\u{ffff}' => Some("not a character"),
        _ => None,
    }
}

/// Parses every document of a (multi-document) YAML text, plain scalars
/// resolved by the YAML 1.2 core schema (plumb's own files).
pub fn parse_documents(text: &str, limits: &Limits) -> Result<Vec<Document>, YamlError> {
    parse_with(text, limits, Schema::Core)
}

/// Parses Kubernetes manifests as kubectl reads them: plain scalars resolved
/// as its YAML 1.1 reader resolves them (`0644` is octal, `yes` a boolean;
/// see [`Schema::Kubectl`]), so that what plumb applies is what `kubectl
/// apply` of the same file would.
pub fn parse_manifest_documents(text: &str, limits: &Limits) -> Result<Vec<Document>, YamlError> {
    parse_with(text, limits, Schema::Kubectl)
}

fn parse_with(text: &str, limits: &Limits, schema: Schema) -> Result<Vec<Document>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: limits.max_bytes,
        });
    }
    let text = text.strip_prefix(BOM).unwrap_or(text);
    check_chars(text)?;
    let mut builder = Builder::new(*limits, schema);
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(YamlError::Syntax {
            pos: Pos::from_marker(*e.marker()),
            message: e.info().to_string(),
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

/// The mark with which render's substitution replaces a `${...}` before
/// parsing (`render::vars::mask`): a plain scalar holding it is recorded
/// like one holding `${`.
pub const SUBST_MARK: char = '\u{E000}';

/// A plain (unquoted) scalar's value in a manifest, as kubectl's reader
/// resolves its text: null, a boolean, a number or a string — never a map or
/// a list (substituted values land as one scalar).
pub fn resolve_plain(text: String) -> Value {
    scalar::resolve_scalar(text.clone(), TScalarStyle::Plain, None, Schema::Kubectl)
        .unwrap_or(Value::String(text))
}

#[cfg(test)]
mod tests;
