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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

mod json;
mod scalar;

pub use json::parse_json_documents;
pub use scalar::Schema;
use scalar::{resolve_scalar, tag_name};

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
    #[error("{pos}: tag {tag}: {message}")]
    Tag {
        pos: Pos,
        tag: String,
        message: String,
    },
    #[error("{pos}: {message}")]
    Scalar { pos: Pos, message: String },
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

/// A node under construction.
enum Frame {
    Map {
        map: Map<String, Value>,
        pending_key: Option<(String, Pos)>,
        /// The pending key is the merge key `<<`.
        pending_merge: bool,
        /// Mappings merged in with `<<`, applied when the mapping ends.
        merges: Option<Vec<Map<String, Value>>>,
        anchor: usize,
        path: String,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
        path: String,
    },
}

struct Builder {
    limits: Limits,
    schema: Schema,
    stack: Vec<Frame>,
    docs: Vec<Document>,
    positions: HashMap<String, Pos>,
    plain_refs: HashSet<String>,
    anchors: BTreeMap<usize, Value>,
    doc_start: Pos,
    nodes: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn new(limits: Limits, schema: Schema) -> Self {
        Builder {
            limits,
            schema,
            stack: Vec::new(),
            docs: Vec::new(),
            positions: HashMap::new(),
            plain_refs: HashSet::new(),
            anchors: BTreeMap::new(),
            doc_start: Pos::default(),
            nodes: 0,
            error: None,
        }
    }

    /// The path the next value will have, given the enclosing container.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map {
                pending_key: Some((k, _)),
                path,
                ..
            }) => join_key(path, k),
            Some(Frame::Map { path, .. }) => path.clone(),
            Some(Frame::Seq { items, path, .. }) => join_index(path, items.len()),
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            self.fail(YamlError::TooManyNodes {
                pos,
                max: self.limits.max_nodes,
            });
            return false;
        }
        true
    }

    fn fail(&mut self, err: YamlError) {
        if self.error.is_none() {
            self.error = Some(err);
        }
    }

    fn open(&mut self, frame: Frame, pos: Pos) {
        if self.stack.len() >= self.limits.max_depth {
            self.fail(YamlError::TooDeep {
                pos,
                max: self.limits.max_depth,
            });
            return;
        }
        self.stack.push(frame);
    }

    /// Places a finished value into its parent (or finishes the document).
    fn place(&mut self, value: Value, anchor: usize, pos: Pos) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                let positions = std::mem::take(&mut self.positions);
                let plain_refs = std::mem::take(&mut self.plain_refs);
                let start = positions.get("").copied().unwrap_or(self.doc_start);
                self.docs.push(Document {
                    value,
                    start,
                    positions,
                    plain_refs,
                });
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map,
                pending_key,
                pending_merge,
                merges,
                path,
                ..
            }) => match pending_key.take() {
                Some((_, key_pos)) if std::mem::take(pending_merge) => {
                    let more = match value {
                        Value::Object(m) => Some(vec![m]),
                        Value::Array(items) => items
                            .into_iter()
                            .map(|i| match i {
                                Value::Object(m) => Some(m),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                    let err = match (more, merges.is_some()) {
                        (_, true) => Some("a second merge key <<"),
                        (Some(more), false) => {
                            *merges = Some(more);
                            None
                        }
                        (None, false) => {
                            Some("the merge key << takes a mapping or a list of mappings")
                        }
                    };
                    if let Some(message) = err {
                        self.fail(YamlError::Syntax {
                            pos: key_pos,
                            message: message.into(),
                        });
                    }
                }
                Some((key, key_pos)) => {
                    if map.contains_key(&key) {
                        let err = YamlError::DuplicateKey {
                            pos: key_pos,
                            path: if path.is_empty() {
                                "(top level)".into()
                            } else {
                                path.clone()
                            },
                            key,
                        };
                        self.fail(err);
                    } else {
                        map.insert(key, value);
                    }
                }
                None => {
                    let key = key_string(&value);
                    let key_path = join_key(path, &key);
                    // A block mapping's start event is marked after its first
                    // key; the mapping really starts at that key.
                    let map_pos = self.positions.entry(path.clone()).or_insert(pos);
                    *map_pos = (*map_pos).min(pos);
                    *pending_key = Some((key, pos));
                    self.positions.entry(key_path).or_insert(pos);
                }
            },
        }
    }

    fn is_key_position(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
    }

    fn on_scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        pos: Pos,
    ) {
        if !self.count(1, pos) {
            return;
        }
        // `<<: *base` merges `base` in, as kubectl's YAML 1.1 reader does
        // (a quoted "<<" is an ordinary key).
        let merge =
            self.is_key_position() && style == TScalarStyle::Plain && tag.is_none() && text == "<<";
        // A plain scalar holding a `${...}` (or render's mark for one) is
        // noted, so that substitution resolves its final text as YAML would.
        let plain_ref = style == TScalarStyle::Plain
            && tag.is_none()
            && (text.contains("${") || text.contains(SUBST_MARK));
        let value = match resolve_scalar(text, style, tag.as_ref(), self.schema) {
            Ok(v) => v,
            Err(message) => {
                self.fail(match tag.as_ref() {
                    Some(tag) => YamlError::Tag {
                        pos,
                        tag: tag_name(tag),
                        message,
                    },
                    None => YamlError::Scalar { pos, message },
                });
                return;
            }
        };
        if !self.is_key_position() {
            let path = self.next_path();
            if plain_ref {
                self.plain_refs.insert(path.clone());
            }
            self.positions.entry(path).or_insert(pos);
        }
        self.place(value, anchor, pos);
        if merge && let Some(Frame::Map { pending_merge, .. }) = self.stack.last_mut() {
            *pending_merge = true;
        }
    }

    fn on_alias(&mut self, id: usize, pos: Pos) {
        let Some(value) = self.anchors.get(&id).cloned() else {
            self.fail(YamlError::UnknownAlias { pos });
            return;
        };
        if !self.count(node_count(&value), pos) {
            return;
        }
        if !self.is_key_position() {
            let path = self.next_path();
            self.positions.entry(path).or_insert(pos);
        }
        self.place(value, 0, pos);
    }

    fn on_start(&mut self, seq: bool, anchor: usize, tag: Option<Tag>, pos: Pos) {
        if !self.count(1, pos) {
            return;
        }
        if let Some(tag) = &tag {
            let name = tag_name(tag);
            let want = if seq { "!!seq" } else { "!!map" };
            if name != want && name != "!" {
                let what = if seq { "sequence" } else { "mapping" };
                // A collection's start is marked at its first entry; the
                // key it is the value of is nearer to the tag.
                let pos = match self.stack.last() {
                    Some(Frame::Map {
                        pending_key: Some((_, key_pos)),
                        ..
                    }) => *key_pos,
                    _ => pos,
                };
                self.fail(YamlError::Tag {
                    pos,
                    message: format!("not allowed on a {what} (only {want} is)"),
                    tag: name,
                });
                return;
            }
        }
        let path = self.next_path();
        if !self.is_key_position() {
            self.positions.entry(path.clone()).or_insert(pos);
        }
        let frame = if seq {
            Frame::Seq {
                items: Vec::new(),
                anchor,
                path,
            }
        } else {
            Frame::Map {
                map: Map::new(),
                pending_key: None,
                pending_merge: false,
                merges: None,
                anchor,
                path,
            }
        };
        self.open(frame, pos);
    }

    fn on_end(&mut self, pos: Pos) {
        let (value, anchor) = match self.stack.pop() {
            Some(Frame::Map {
                mut map,
                merges,
                anchor,
                ..
            }) => {
                // Keys written in the mapping win over merged ones, and
                // earlier merged mappings over later ones.
                for merged in merges.into_iter().flatten() {
                    for (k, v) in merged {
                        map.entry(k).or_insert(v);
                    }
                }
                (Value::Object(map), anchor)
            }
            Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
            None => return,
        };
        self.place(value, anchor, pos);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(mark);
        match ev {
            Event::DocumentStart => {
                self.doc_start = pos;
                self.anchors.clear();
                self.positions.clear();
                self.plain_refs.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.on_scalar(text, style, anchor, tag, pos)
            }
            Event::Alias(id) => self.on_alias(id, pos),
            Event::SequenceStart(anchor, tag) => self.on_start(true, anchor, tag, pos),
            Event::MappingStart(anchor, tag) => self.on_start(false, anchor, tag, pos),
            Event::SequenceEnd | Event::MappingEnd => self.on_end(pos),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

fn node_count(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(node_count).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(node_count).sum::<usize>(),
        _ => 1,
    }
}

/// A map key as a string (YAML allows any scalar as a key; JSON does not).
fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, YamlError> {
        parse_documents(text, &Limits::default())
    }

    #[test]
    fn keys_and_items_keep_their_line_and_column() {
        let docs = parse("a:\n  b: 1\n  list:\n    - x\n    - y: 2\n").unwrap();
        let d = &docs[0];
        assert_eq!(d.position("a.b"), Pos { line: 2, column: 3 });
        assert_eq!(d.position("a.list[1].y"), Pos { line: 5, column: 7 });
        assert_eq!(d.position("a.missing"), Pos { line: 1, column: 1 });
    }

    #[test]
    fn multi_document_streams_give_each_document_its_start() {
        let docs = parse("a: 1\n---\nb: 2\n---\nc: 3\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[2].value, serde_json::json!({"c": 3}));
        assert_eq!(docs[2].position("c").line, 5);
    }

    #[test]
    fn scalars_resolve_like_the_yaml_core_schema() {
        let docs =
            parse("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: 1.2.3\nh: !!str 7\n").unwrap();
        let v = &docs[0].value;
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], "1");
        assert_eq!(v["c"], true);
        assert_eq!(v["d"], Value::Null);
        assert_eq!(v["e"], 1.5);
        assert_eq!(v["f"], 16);
        assert_eq!(v["g"], "1.2.3");
        assert_eq!(v["h"], "7");
    }

    #[test]
    fn a_duplicate_key_is_an_error_at_the_second_occurrence() {
        let err = parse("apps:\n  a: 1\n  a: 2\n").unwrap_err();
        assert_eq!(
            err,
            YamlError::DuplicateKey {
                pos: Pos { line: 3, column: 3 },
                path: "apps".into(),
                key: "a".into()
            }
        );
    }

    #[test]
    fn a_billion_laughs_alias_bomb_is_refused() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            text.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = n;
        }
        assert!(matches!(parse(&text), Err(YamlError::TooManyNodes { .. })));
    }

    #[test]
    fn plain_aliases_expand() {
        let docs = parse("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(docs[0].value["other"]["x"], 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(parse(&text), Err(YamlError::TooDeep { .. })));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse_documents("a: 123456789012", &limits),
            Err(YamlError::TooLarge { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(err, YamlError::Syntax { .. }), "{err:?}");
        assert!(err.pos().line >= 1);
    }

    #[test]
    fn a_nul_byte_is_refused_at_its_line_and_column_not_taken_as_the_end() {
        let err = parse("a: 1\n---\nb: 2\0\n---\nc: 3\n").unwrap_err();
        assert_eq!(err.pos(), Pos { line: 3, column: 5 }, "{err}");
        assert!(err.to_string().contains("U+0000"), "{err}");
    }

    #[test]
    fn every_character_yaml_forbids_is_refused() {
        for c in [
            '\u{1}', '\u{7}', '\u{b}', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}',
            '\u{2028}', '\u{ffff}',
        ] {
            let text = format!("a:\n  b: x{c}y\n");
            let err = parse(&text).unwrap_err();
            assert!(
                matches!(
                    err,
                    YamlError::ForbiddenChar {
                        pos: Pos { line: 2, column: 7 },
                        ..
                    }
                ),
                "{c:?}: {err:?}"
            );
        }
        // Tab, CR LF and ordinary non-ASCII text stay fine.
        let docs = parse("a:\t\"tab\"\r\nb: caf\u{e9} \u{1f600}\n").unwrap();
        assert_eq!(docs[0].value["b"], "caf\u{e9} \u{1f600}");
    }

    #[test]
    fn invalid_utf8_is_refused_at_its_place() {
        let err = decode_text(b"a: 1\nb: x\xff\n").unwrap_err();
        assert_eq!(
            err,
            YamlError::NotUtf8 {
                pos: Pos { line: 2, column: 5 }
            }
        );
        // A lone surrogate encoded in UTF-8 style (CESU) is not UTF-8 either.
        assert!(decode_text(b"a: \xed\xa0\x80\n").is_err());
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let text = decode_text(b"\xef\xbb\xbfapiVersion: v1\nkind: ConfigMap\n").unwrap();
        let docs = parse(text).unwrap();
        assert_eq!(docs[0].value["apiVersion"], "v1");
        let docs = parse("\u{feff}kind: ConfigMap\n").unwrap();
        assert_eq!(docs[0].value["kind"], "ConfigMap");
        assert_eq!(docs[0].position("kind"), Pos { line: 1, column: 1 });
    }

    #[test]
    fn binary_scalars_are_decoded_as_kubectl_does() {
        let docs = parse("a: !!binary aGVsbG8=\nb: !!binary |\n  aGVs\n  bG8=\n").unwrap();
        assert_eq!(docs[0].value["a"], "hello");
        assert_eq!(docs[0].value["b"], "hello");
        let err = parse("a: 1\nb: !!binary not-base64!\n").unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Tag {
                    pos: Pos { line: 2, .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse("b: !!binary /w==\n").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn an_unknown_tag_is_refused_not_dropped() {
        let err = parse("a: 1\nb: !evil x\n").unwrap_err();
        assert_eq!(err.pos().line, 2, "{err}");
        assert!(err.to_string().contains("tag !evil: unknown tag"), "{err}");
        let err = parse("a:\n  b: !evil {x: 1}\n").unwrap_err();
        assert!(err.to_string().contains("tag !evil"), "{err}");
        let err = parse("a: !!set {x: 1}\n").unwrap_err();
        assert!(err.to_string().contains("tag !!set"), "{err}");
        let err = parse("a: !!int abc\n").unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }

    #[test]
    fn standard_tags_resolve() {
        let docs = parse(
            "a: !!int \"3\"\nb: !!bool 'true'\nc: !!float 1\nd: !!map {x: !!seq [1]}\ne: ! 5\n",
        )
        .unwrap();
        let v = &docs[0].value;
        assert_eq!(v["a"], 3);
        assert_eq!(v["b"], true);
        assert_eq!(v["c"], 1);
        assert_eq!(v["d"]["x"][0], 1);
        assert_eq!(v["e"], "5");
    }

    #[test]
    fn merge_keys_merge_as_kubectl_reads_them() {
        let text = "base: &b {x: 1, y: 2}\nmore: &m {y: 3, z: 4}\nobj:\n  y: 0\n  <<: [*b, *m]\n  w: 5\nquoted:\n  \"<<\": kept\n";
        let docs = parse(text).unwrap();
        let obj = &docs[0].value["obj"];
        assert_eq!(obj, &serde_json::json!({"y": 0, "w": 5, "x": 1, "z": 4}));
        assert_eq!(docs[0].value["quoted"]["<<"], "kept");
        let err = parse("a: {<<: 3}\n").unwrap_err();
        assert!(err.to_string().contains("merge key"), "{err}");
        let err = parse("b: &b {x: 1}\na:\n  <<: *b\n  <<: *b\n").unwrap_err();
        assert_eq!(err.pos().line, 4, "{err}");
    }
}
