//! Strict JSON with positions: what serde_json accepts, read again to keep
//! the line and column of every key (and to find duplicate keys, which
//! serde_json lets through), under the same bounds as YAML.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{BOM, Document, Limits, Pos, YamlError, check_chars, join_index, join_key};

/// Parses a `.json` file (one JSON value, or a stream of them as kubectl
/// reads) strictly: what JSON does not allow (a trailing comma, a comment,
/// single quotes, `NaN`) is an error at its line and column, not read as
/// YAML. Duplicate keys and the bounds are checked as for YAML, and every
/// key's position is kept.
pub fn parse_json_documents(text: &str, limits: &Limits) -> Result<Vec<Document>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: limits.max_bytes,
        });
    }
    let text = text.strip_prefix(BOM).unwrap_or(text);
    check_chars(text)?;
    // serde_json decides what is valid JSON; the reader below only walks a
    // text it accepted, to keep positions and find duplicate keys.
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut reader = JsonReader {
        text,
        at: 0,
        counted: 0,
        here: Pos { line: 1, column: 1 },
        limits: *limits,
        nodes: 0,
        positions: HashMap::new(),
    };
    let mut docs = Vec::new();
    while let Some(item) = stream.next() {
        if let Err(e) = item {
            return Err(json_error(text, &e));
        }
        let end = stream.byte_offset();
        let value = reader.value("", 0)?;
        if reader.at != end {
            return Err(YamlError::Json {
                pos: reader.pos(),
                message: "unexpected text after a value".into(),
            });
        }
        let positions = std::mem::take(&mut reader.positions);
        let start = positions.get("").copied().unwrap_or_default();
        // JSON has no plain scalars: a `${...}` is always inside a string.
        docs.push(Document {
            value,
            start,
            positions,
            plain_refs: Default::default(),
        });
    }
    Ok(docs)
}

fn json_error(text: &str, e: &serde_json::Error) -> YamlError {
    let full = e.to_string();
    let mut message = match full.rfind(" at line ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    };
    // serde_json names what it expected after a trailing comma; say what
    // is wrong.
    let before = text
        .lines()
        .take(e.line())
        .enumerate()
        .map(|(i, l)| match i + 1 == e.line() {
            true => l.chars().take(e.column().saturating_sub(1)).collect(),
            false => l.to_string(),
        })
        .collect::<Vec<String>>()
        .join("\n");
    if before.trim_end().ends_with(',') {
        message = format!("trailing comma ({message}); JSON allows none");
    }
    YamlError::Json {
        pos: Pos {
            line: e.line().max(1),
            column: e.column().max(1),
        },
        message,
    }
}

/// Walks a JSON text serde_json accepted, building the value with the
/// position of every node. Moves forward only, so positions cost O(n).
struct JsonReader<'a> {
    text: &'a str,
    at: usize,
    /// `here` is the position of byte `counted`.
    counted: usize,
    here: Pos,
    limits: Limits,
    nodes: usize,
    positions: HashMap<String, Pos>,
}

impl JsonReader<'_> {
    fn pos(&mut self) -> Pos {
        let Some(between) = self.text.get(self.counted..self.at) else {
            return self.here;
        };
        for c in between.chars() {
            if c == '\n' {
                self.here.line += 1;
                self.here.column = 1;
            } else {
                self.here.column += 1;
            }
        }
        self.counted = self.at;
        self.here
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn unexpected(&mut self) -> YamlError {
        YamlError::Json {
            pos: self.pos(),
            message: "unexpected character".into(),
        }
    }

    fn value(&mut self, path: &str, depth: usize) -> Result<Value, YamlError> {
        self.skip_ws();
        let pos = self.pos();
        self.positions.entry(path.to_string()).or_insert(pos);
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError::TooManyNodes {
                pos,
                max: self.limits.max_nodes,
            });
        }
        match self.peek() {
            Some(b'{' | b'[') if depth >= self.limits.max_depth => Err(YamlError::TooDeep {
                pos,
                max: self.limits.max_depth,
            }),
            Some(b'{') => self.object(path, depth),
            Some(b'[') => self.array(path, depth),
            Some(b'"') => self.string().map(Value::String),
            Some(_) => {
                let start = self.at;
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.at += 1;
                }
                let raw = self.text.get(start..self.at).unwrap_or_default();
                serde_json::from_str(raw).map_err(|e| YamlError::Json {
                    pos,
                    message: e.to_string(),
                })
            }
            None => Err(self.unexpected()),
        }
    }

    fn object(&mut self, path: &str, depth: usize) -> Result<Value, YamlError> {
        self.at += 1;
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            let key_pos = self.pos();
            let key = self.string()?;
            let key_path = join_key(path, &key);
            if map.contains_key(&key) {
                return Err(YamlError::DuplicateKey {
                    pos: key_pos,
                    path: if path.is_empty() {
                        "(top level)".into()
                    } else {
                        path.to_string()
                    },
                    key,
                });
            }
            self.positions.entry(key_path.clone()).or_insert(key_pos);
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.at += 1;
            let value = self.value(&key_path, depth + 1)?;
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn array(&mut self, path: &str, depth: usize) -> Result<Value, YamlError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(&join_index(path, items.len()), depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// A string token, unescaped by serde_json.
    fn string(&mut self) -> Result<String, YamlError> {
        let start = self.at;
        if self.peek() != Some(b'"') {
            return Err(self.unexpected());
        }
        self.at += 1;
        loop {
            match self.peek() {
                Some(b'\\') => self.at += 2,
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(_) => self.at += 1,
                None => return Err(self.unexpected()),
            }
        }
        let raw = self.text.get(start..self.at).unwrap_or_default();
        serde_json::from_str(raw).map_err(|e| YamlError::Json {
            pos: self.pos(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<Vec<Document>, YamlError> {
        parse_json_documents(text, &Limits::default())
    }

    #[test]
    fn json_is_parsed_strictly_with_positions() {
        let err = json("{\n  \"a\": 1,\n  \"b\": [1, 2,]\n}\n").unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Json {
                    pos: Pos { line: 3, .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = json("{\"a\": 1,}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("1:9: JSON syntax error: trailing comma"),
            "{err}"
        );
        assert!(json("{a: 1}").is_err(), "YAML flow syntax is not JSON");
        assert!(json("{\"a\": 1} // comment").is_err());
        let docs =
            json("{\n\t\"a\": {\"b\": [10, {\"c\": \"\\u00e9\\\"x\"}]},\n\t\"n\": -1.5e3\n}\n")
                .unwrap();
        let d = &docs[0];
        assert_eq!(d.value["a"]["b"][1]["c"], "\u{e9}\"x");
        assert_eq!(d.value["n"], -1500.0);
        assert_eq!(
            d.position("a.b[1].c"),
            Pos {
                line: 2,
                column: 19
            }
        );
        assert_eq!(d.position("n"), Pos { line: 3, column: 2 });
    }

    #[test]
    fn json_streams_duplicates_and_bounds() {
        let docs = json("{\"a\": 1}\n{\"b\": 2}\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].position("b").line, 2);
        let err = json("{\"a\": 1, \"a\": 2}").unwrap_err();
        assert!(matches!(err, YamlError::DuplicateKey { .. }), "{err:?}");
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(json(&deep), Err(YamlError::TooDeep { .. })));
        assert!(matches!(
            json("[1,\u{0}2]"),
            Err(YamlError::ForbiddenChar { .. })
        ));
        assert_eq!(json("\u{feff}{\"a\": 1}").unwrap()[0].value["a"], 1);
    }
}
