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
        text.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
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
        '\u{1}', '\u{7}', '\u{b}', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}', '\u{2028}',
        '\u{ffff}',
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
    let docs =
        parse("a: !!int \"3\"\nb: !!bool 'true'\nc: !!float 1\nd: !!map {x: !!seq [1]}\ne: ! 5\n")
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
