//! The event receiver that turns `yaml-rust2`'s marked events into JSON
//! values with a position per key and item ([`Builder`]), enforcing the
//! [`Limits`] (node budget, depth, duplicate keys) and resolving tags,
//! anchors and merge keys as it goes. It owns no parsing entry point
//! (those are in [`super`]) and must not read files or know about
//! manifests beyond the [`Schema`] it is handed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scalar::{ScalarError, Schema, resolve_scalar, tag_name};
use super::{Document, Limits, Pos, SUBST_MARK, YamlError, join_index, join_key};

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

pub(super) struct Builder {
    limits: Limits,
    schema: Schema,
    stack: Vec<Frame>,
    pub(super) docs: Vec<Document>,
    positions: HashMap<String, Pos>,
    plain_refs: HashSet<String>,
    anchors: BTreeMap<usize, Value>,
    doc_start: Pos,
    nodes: usize,
    pub(super) error: Option<YamlError>,
}

impl Builder {
    pub(super) fn new(limits: Limits, schema: Schema) -> Self {
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
            Err(problem) => {
                self.fail(match tag.as_ref() {
                    Some(tag) => YamlError::Tag {
                        pos,
                        tag: tag_name(tag),
                        problem,
                    },
                    None => YamlError::Scalar { pos, problem },
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
                    problem: ScalarError::WrongNode { what, want },
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
