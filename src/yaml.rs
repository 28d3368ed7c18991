//! Located YAML: parses YAML text into JSON values while remembering where
//! every key and item came from, so that any later error (a serde type error,
//! a semantic check, an API server's rejection) can name `file:line:col`.
//!
//! Built on `yaml-rust2`'s marked event parser rather than `serde_yaml`,
//! because serde_yaml keeps no positions for values that deserialize fine and
//! has no budget for alias expansion. This module also turns hostile input
//! into errors instead of outages: duplicate keys, alias bombs ("billion
//! laughs"), nesting depth and total size are all bounded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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
}

impl YamlError {
    /// Where the problem is.
    pub fn pos(&self) -> Pos {
        match self {
            YamlError::Syntax { pos, .. }
            | YamlError::DuplicateKey { pos, .. }
            | YamlError::TooDeep { pos, .. }
            | YamlError::TooManyNodes { pos, .. }
            | YamlError::UnknownAlias { pos } => *pos,
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

/// Parses every document of a (multi-document) YAML text.
pub fn parse_documents(text: &str, limits: &Limits) -> Result<Vec<Document>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: limits.max_bytes,
        });
    }
    let mut builder = Builder::new(*limits);
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
    fn new(limits: Limits) -> Self {
        Builder {
            limits,
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
                path,
                ..
            }) => match pending_key.take() {
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
        let plain_ref = style == TScalarStyle::Plain
            && tag.is_none()
            && (text.contains("${") || text.contains(SUBST_MARK));
        let value = resolve_scalar(text, style, tag.as_ref());
        if !self.is_key_position() {
            let path = self.next_path();
            if plain_ref {
                self.plain_refs.insert(path.clone());
            }
            self.positions.entry(path).or_insert(pos);
        }
        self.place(value, anchor, pos);
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

    fn on_start(&mut self, seq: bool, anchor: usize, pos: Pos) {
        if !self.count(1, pos) {
            return;
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
                anchor,
                path,
            }
        };
        self.open(frame, pos);
    }

    fn on_end(&mut self, pos: Pos) {
        let (value, anchor) = match self.stack.pop() {
            Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
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
            Event::SequenceStart(anchor, _) => self.on_start(true, anchor, pos),
            Event::MappingStart(anchor, _) => self.on_start(false, anchor, pos),
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

/// YAML 1.2 core schema resolution of a scalar (what Kubernetes' YAML
/// decoder does): plain scalars may be null, booleans or numbers; quoted ones
/// and `!!str` are strings.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!")
    {
        match tag.suffix.as_str() {
            "str" => return Value::String(text),
            "null" => return Value::Null,
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
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

/// The mark with which render's substitution replaces a `${...}` before
/// parsing (`render::vars::mask`): a plain scalar holding it is recorded
/// like one holding `${`.
pub const SUBST_MARK: char = '\u{E000}';

/// A plain (unquoted) scalar's value, as YAML resolves its text: null, a
/// boolean, a number or a string — never a map or a list.
pub fn resolve_plain(text: String) -> Value {
    resolve_scalar(text, TScalarStyle::Plain, None)
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
}
