//! The decoder, the index format and lookups on hand-made maps.

use super::decode::decode;
use super::DecodeError;
use crate::sourcemap::{RawScope, SourceMapError, SourceMapView};
use crate::test_rng::TestRng;

/// Encodes `segments` (lines of segments of fields, deltas as the format stores them).
fn mappings(lines: &[&[&[i64]]]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        for (j, segment) in line.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            for &value in *segment {
                let mut v = if value < 0 {
                    ((-value as u64) << 1) | 1
                } else {
                    (value as u64) << 1
                };
                loop {
                    let mut digit = v & 31;
                    v >>= 5;
                    if v > 0 {
                        digit |= 32;
                    }
                    out.push(ALPHABET[digit as usize] as char);
                    if v == 0 {
                        break;
                    }
                }
            }
        }
    }
    out
}

fn map(sources: &str, names: &str, mappings: &str) -> String {
    format!(r#"{{"version":3,"sources":{sources},"names":{names},"mappings":"{mappings}"}}"#)
}

fn view(text: &str) -> SourceMapView {
    SourceMapView::build(None, text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// (source, line, column, name), 0-based, of the lookup at 0-based `line`:`col`.
fn at(view: &SourceMapView, line: u32, col: u32) -> Option<(String, u32, u32, Option<String>)> {
    let raw = view.lookup_raw(line, col)?;
    Some((
        raw.source?.to_owned(),
        raw.line,
        raw.col,
        raw.name.map(str::to_owned),
    ))
}

fn hit(
    source: &str,
    line: u32,
    col: u32,
    name: Option<&str>,
) -> Option<(String, u32, u32, Option<String>)> {
    Some((source.to_owned(), line, col, name.map(str::to_owned)))
}

fn error(text: &str) -> DecodeError {
    decode(text).map(|_| ()).unwrap_err()
}

#[test]
fn one_four_and_five_field_segments() {
    // Line 0: col 0 -> a.js 0:0; col 4 unmapped (1 field); col 8 -> a.js 1:2 named "x".
    let m = mappings(&[&[&[0, 0, 0, 0], &[4], &[4, 0, 1, 2, 0]]]);
    let v = view(&map(r#"["a.js"]"#, r#"["x"]"#, &m));
    assert_eq!(at(&v, 0, 0), hit("a.js", 0, 0, None));
    assert_eq!(at(&v, 0, 3), hit("a.js", 0, 0, None));
    assert_eq!(at(&v, 0, 4), None, "a 1-field segment maps to nothing");
    assert_eq!(at(&v, 0, 7), None);
    assert_eq!(at(&v, 0, 8), hit("a.js", 1, 2, Some("x")));
}

#[test]
fn negative_deltas_and_running_fields() {
    // Original lines and columns go down, sources and names switch back and forth; the
    // generated column restarts per line, the other fields run across lines.
    let m = mappings(&[
        &[&[2, 0, 10, 5, 1], &[3, 1, -10, -5, -1]],
        &[&[1, -1, 3, 1], &[2, 0, -2, 0, 1]],
    ]);
    let v = view(&map(r#"["a.js","b.js"]"#, r#"["x","y"]"#, &m));
    assert_eq!(at(&v, 0, 2), hit("a.js", 10, 5, Some("y")));
    assert_eq!(at(&v, 0, 5), hit("b.js", 0, 0, Some("x")));
    assert_eq!(at(&v, 1, 1), hit("a.js", 3, 1, None));
    assert_eq!(at(&v, 1, 3), hit("a.js", 1, 1, Some("y")));
}

#[test]
fn empty_lines_and_empty_segments() {
    let v = view(&map(r#"["a.js"]"#, "[]", ";;,AAAA,,CAAC;;"));
    assert_eq!(at(&v, 0, 0), None);
    assert_eq!(at(&v, 1, 5), None);
    assert_eq!(at(&v, 2, 0), hit("a.js", 0, 0, None));
    assert_eq!(at(&v, 2, 1), hit("a.js", 0, 1, None));
    assert_eq!(at(&v, 3, 0), None, "empty line after tokens");
    assert_eq!(at(&v, 9, 0), None, "past the last line");
    let empty = view(&map("[]", "[]", ""));
    assert_eq!(at(&empty, 0, 0), None);
}

#[test]
fn before_the_first_token_and_past_the_last() {
    let m = mappings(&[&[&[10, 0, 0, 0], &[10, 0, 0, 4]], &[&[5, 0, 1, -4]]]);
    let v = view(&map(r#"["a.js"]"#, "[]", &m));
    assert_eq!(at(&v, 0, 9), None, "before the line's first token");
    assert_eq!(at(&v, 0, 10), hit("a.js", 0, 0, None));
    assert_eq!(at(&v, 0, 19), hit("a.js", 0, 0, None));
    assert_eq!(at(&v, 0, 20), hit("a.js", 0, 4, None));
    assert_eq!(
        at(&v, 0, u32::MAX),
        hit("a.js", 0, 4, None),
        "past the last token"
    );
    assert_eq!(at(&v, 1, 4), None, "never the previous line's token");
    assert_eq!(at(&v, 1, 5), hit("a.js", 1, 0, None));
    // The 1-based API: line 0 and column 0 do not exist.
    assert_eq!(v.lookup(1, 11).map(|l| (l.line, l.col)), Some((1, 1)));
    assert!(v.lookup(0, 11).is_none());
    assert!(v.lookup(1, 0).is_none());
}

#[test]
fn unsorted_columns_are_sorted_and_repeated_positions_keep_the_first() {
    // Columns 8, 2 (delta -6), 8 again (the second token at 8 is dropped), 2 again.
    let m = mappings(&[&[
        &[8, 0, 8, 0],
        &[-6, 0, -6, 0],
        &[6, 0, 50, 0],
        &[-6, 0, 0, 0],
    ]]);
    let v = view(&map(r#"["a.js"]"#, "[]", &m));
    assert_eq!(at(&v, 0, 2), hit("a.js", 2, 0, None));
    assert_eq!(at(&v, 0, 8), hit("a.js", 8, 0, None));
    // Sorted input with a repeated position: the first wins too.
    let m = mappings(&[&[&[3, 0, 1, 0], &[0, 0, 1, 0]]]);
    let v = view(&map(r#"["a.js"]"#, "[]", &m));
    assert_eq!(at(&v, 0, 3), hit("a.js", 1, 0, None));
}

#[test]
fn index_map_sections_are_flattened() {
    let first = map(r#"["a.js"]"#, r#"["f"]"#, "AAAAA;CACA");
    let second = map(r#"["b.js"]"#, r#"["g"]"#, "AAAAA,EAAC;AACA");
    let text = format!(
        r#"{{"version":3,"sections":[
            {{"offset":{{"line":1,"column":20}},"map":{second}}},
            {{"offset":{{"line":0,"column":0}},"map":{first}}}]}}"#
    );
    let v = view(&text);
    assert_eq!(at(&v, 0, 0), hit("a.js", 0, 0, Some("f")));
    assert_eq!(at(&v, 1, 1), hit("a.js", 1, 0, None));
    // The second section's first line starts at column 20 of line 1; later lines at 0.
    assert_eq!(at(&v, 1, 19), hit("a.js", 1, 0, None));
    assert_eq!(at(&v, 1, 20), hit("b.js", 0, 0, Some("g")));
    assert_eq!(at(&v, 1, 22), hit("b.js", 0, 1, None));
    assert_eq!(at(&v, 2, 0), hit("b.js", 1, 1, None));

    let nested = r#"{"sections":[{"offset":{"line":0,"column":0},"map":{"sections":[]}}]}"#;
    assert_eq!(error(nested), DecodeError::NestedIndexMap);
    let overlapping = format!(
        r#"{{"sections":[{{"offset":{{"line":0,"column":0}},"map":{first}}},
                        {{"offset":{{"line":0,"column":5}},"map":{first}}}]}}"#
    );
    assert_eq!(error(&overlapping), DecodeError::OverlappingSections);
    let bad = format!(
        r#"{{"sections":[{{"offset":{{"line":3,"column":1}},"map":{}}}]}}"#,
        map("[]", "[]", "AAAA")
    );
    assert!(
        matches!(error(&bad), DecodeError::Section { line: 3, column: 1, ref error }
            if matches!(**error, DecodeError::OutOfRange { what: "source index", .. })),
        "{}",
        error(&bad)
    );
}

#[test]
fn invalid_input_is_a_typed_error() {
    assert!(matches!(error("{not json"), DecodeError::Json(_)));
    assert!(matches!(error("[1, 2]"), DecodeError::Json(_)));
    assert!(matches!(error(r#"{"mappings": 5}"#), DecodeError::Json(_)));
    let one = r#"["a.js"]"#;
    assert_eq!(
        error(&map(one, "[]", "AAAA,AA")),
        DecodeError::BadSegment { at: 5, fields: 2 }
    );
    assert_eq!(
        error(&map(one, "[]", "AAA")),
        DecodeError::BadSegment { at: 0, fields: 3 }
    );
    assert_eq!(
        error(&map(one, "[]", "AAAAAA")),
        DecodeError::BadSegment { at: 0, fields: 6 }
    );
    assert_eq!(
        error(&map(one, "[]", "ACAA")),
        DecodeError::OutOfRange {
            what: "source index",
            value: 1,
            at: 0
        }
    );
    assert_eq!(
        error(&map(one, "[]", "AAAAA")),
        DecodeError::OutOfRange {
            what: "name index",
            value: 0,
            at: 0
        }
    );
    assert_eq!(
        error(&map(one, "[]", "AADA")),
        DecodeError::OutOfRange {
            what: "original line",
            value: -1,
            at: 0
        }
    );
    assert_eq!(
        error(&map(one, "[]", "D")),
        DecodeError::OutOfRange {
            what: "generated column",
            value: -1,
            at: 0
        }
    );
    assert_eq!(
        error(&map(one, "[]", "AA*A")),
        DecodeError::InvalidBase64 { at: 2, byte: '*' }
    );
    assert_eq!(
        error(&map(one, "[]", "AAAg;")),
        DecodeError::UnterminatedVlq { at: 3 }
    );
    // Through the public API: the store's "invalid source map".
    let err = SourceMapView::build(None, &map(one, "[]", "AAAg")).unwrap_err();
    assert!(matches!(err, SourceMapError::InvalidSourceMap(_)), "{err}");
}

#[test]
fn sources_names_and_prefixes() {
    let text = concat!(
        ")]}'\n",
        r#"{"version":3,"sourceRoot":"https://example.com/src/","#,
        r#""sources":["a.js","/abs.js",null,"b\u002ejs"],"names":["n\"q",7,null],"#,
        r#""mappings":"AAAAA,CCAAC,CCAAC,CCAAD"}"#
    );
    let v = view(text);
    assert_eq!(
        at(&v, 0, 0),
        hit("https://example.com/src/a.js", 0, 0, Some("n\"q"))
    );
    assert_eq!(at(&v, 0, 1), hit("/abs.js", 0, 0, Some("7")));
    assert_eq!(
        at(&v, 0, 2),
        hit("https://example.com/src/", 0, 0, Some(""))
    );
    assert_eq!(
        at(&v, 0, 3),
        hit("https://example.com/src/b.js", 0, 0, Some("7"))
    );
}

#[test]
fn sources_content_is_read_on_first_use() {
    let text = r#"{"version":3,"sources":["a.js","b.js","c.js"],"names":[],
        "sourcesContent":["l0\nl1 \"q\"\r\nl2\n",null],"mappings":"AAAA,CCAA,CCAA"}"#;
    let v = view(text);
    let a = v.lookup(1, 1).unwrap().context.unwrap();
    assert_eq!((a.pre.len(), a.line.as_str()), (0, "l0"));
    assert_eq!(a.post, ["l1 \"q\"", "l2"]);
    assert!(v.lookup(1, 2).unwrap().context.is_none(), "null content");
    assert!(
        v.lookup(1, 3).unwrap().context.is_none(),
        "no content entry"
    );
}

#[test]
fn hermes_function_maps_name_the_scopes() {
    // One source; functions `<global>` from 1:0 and `foo` from 2:4 (lines 1-based there).
    // Tokens at original (0-based) 0:0, 1:0, 2:4 and 2:5.
    let text = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA,CACA,CACI,CAAC",
        "x_facebook_sources":[[{"names":["<global>","foo"],"mappings":"AAA,ICC"}]]}"#;
    let v = view(text);
    let scope = |col| v.lookup_raw(0, col).unwrap().scope;
    assert_eq!(scope(0), RawScope::Named("<global>"));
    assert_eq!(scope(1), RawScope::Named("<global>"));
    assert_eq!(scope(2), RawScope::Named("foo"));
    assert_eq!(scope(3), RawScope::Named("foo"));
}

#[test]
fn minified_source_names_the_scopes() {
    const MINIFIED: &str = "function t(){}export default t;";
    const MAP: &str = r#"{"version":3,"names":["abcd"],"sources":["original.js"],"mappings":"AACA,SAASA,oBACMA"}"#;
    let v = SourceMapView::build(Some(MINIFIED), MAP).unwrap();
    assert_eq!(v.lookup_raw(0, 10).unwrap().scope, RawScope::Named("abcd"));
    let plain = SourceMapView::build(None, MAP).unwrap();
    assert_eq!(plain.lookup_raw(0, 10).unwrap().scope, RawScope::Unknown);
    // A minified source that does not parse leaves lookups working, without scopes.
    let broken = SourceMapView::build(Some("function ((("), MAP).unwrap();
    assert_eq!(broken.lookup_raw(0, 10).unwrap().name, Some("abcd"));
}

#[test]
fn corrupt_or_truncated_indexes_are_rejected_or_harmless() {
    use symbolic::common::ByteView;

    let text = r#"{"version":3,"sources":["a.js","b.js"],"names":["x","y"],
        "sourcesContent":["one\ntwo\n","three"],"mappings":"AAAAA,EAAEC;ACAAD,CAAC"}"#;
    let bytes = super::build(Some("function f(){return 1}"), text).unwrap();
    let check = |bytes: Vec<u8>| {
        if let Ok(view) = SourceMapView::from_bytes(ByteView::from_vec(bytes), 0) {
            for line in 0..4 {
                for col in [0, 1, 2, 3, 100, u32::MAX] {
                    let _ = view.lookup(line, col);
                }
            }
        }
    };
    for len in 0..bytes.len() {
        let err = SourceMapView::from_bytes(ByteView::from_vec(bytes[..len].to_vec()), 0);
        assert!(
            matches!(err, Err(SourceMapError::InvalidCache(_))),
            "truncated to {len}"
        );
    }
    let mut rng = TestRng::new(42);
    for _ in 0..2000 {
        let mut corrupt = bytes.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = rng.next_u64() as usize % corrupt.len();
            corrupt[at] = rng.next_u64() as u8;
        }
        check(corrupt);
    }
    let mut old = bytes.clone();
    old[..8].copy_from_slice(b"RLYSMV01");
    assert!(SourceMapView::from_bytes(ByteView::from_vec(old), 0).is_err());
    // At an offset, as the disk cache hands it over.
    let mut shifted = vec![0; 16];
    shifted.extend_from_slice(&bytes);
    let view = SourceMapView::from_bytes(ByteView::from_vec(shifted), 16).unwrap();
    assert_eq!(view.lookup_raw(0, 2).unwrap().name, Some("y"));
}

/// One generated token of a random map: line, column and (source, line, column, name).
type Generated = (u32, u32, Option<(u32, u32, u32, Option<u32>)>);

/// Encodes `tokens` (in map order, lines ascending) as `mappings`.
fn encode(tokens: &[Generated]) -> String {
    let mut lines: Vec<Vec<Vec<i64>>> = Vec::new();
    let (mut source, mut source_line, mut source_column, mut name) = (0i64, 0i64, 0i64, 0i64);
    let mut column = 0i64;
    for &(line, col, record) in tokens {
        if lines.len() <= line as usize {
            lines.resize(line as usize + 1, Vec::new());
            column = 0;
        }
        let mut segment = vec![i64::from(col) - column];
        column = i64::from(col);
        if let Some((s, l, c, n)) = record {
            segment.extend([
                i64::from(s) - source,
                i64::from(l) - source_line,
                i64::from(c) - source_column,
            ]);
            (source, source_line, source_column) = (s.into(), l.into(), c.into());
            if let Some(n) = n {
                segment.push(i64::from(n) - name);
                name = n.into();
            }
        }
        lines[line as usize].push(segment);
    }
    let lines: Vec<Vec<&[i64]>> = lines
        .iter()
        .map(|line| line.iter().map(Vec::as_slice).collect())
        .collect();
    let lines: Vec<&[&[i64]]> = lines.iter().map(Vec::as_slice).collect();
    mappings(&lines)
}

/// The first (in map order) of the tokens with the greatest column at or before `col` on
/// `line`, as the index should find it.
fn naive(tokens: &[Generated], line: u32, col: u32) -> Option<(String, u32, u32, Option<String>)> {
    let best = tokens
        .iter()
        .filter(|t| t.0 == line && t.1 <= col)
        .map(|t| t.1)
        .max()?;
    let (_, _, record) = tokens.iter().find(|t| t.0 == line && t.1 == best)?;
    let (s, l, c, n) = (*record)?;
    Some((format!("s{s}.js"), l, c, n.map(|n| format!("n{n}"))))
}

#[test]
fn random_maps_agree_with_a_naive_lookup() {
    let mut rng = TestRng::new(7);
    for round in 0..300 {
        let lines = 1 + rng.next_u64() as u32 % 4;
        let mut tokens: Vec<Generated> = Vec::new();
        for line in 0..lines {
            // Some long lines (many buckets), some short; clustered and sparse columns.
            let count = rng.next_u64() as u32 % if round % 3 == 0 { 400 } else { 12 };
            let mut col = 0u32;
            for _ in 0..count {
                col += match rng.next_u64() % 10 {
                    0 => rng.next_u64() as u32 % 5000,
                    1 if round % 4 == 0 => 0,
                    _ => rng.next_u64() as u32 % 4,
                };
                // Every fifth round, some columns go backwards.
                let at = if round % 5 == 0 && rng.next_u64().is_multiple_of(6) {
                    col.saturating_sub(rng.next_u64() as u32 % 50)
                } else {
                    col
                };
                let record = (!rng.next_u64().is_multiple_of(8)).then(|| {
                    (
                        rng.next_u64() as u32 % 3,
                        rng.next_u64() as u32 % 1000,
                        rng.next_u64() as u32 % 200,
                        rng.next_u64()
                            .is_multiple_of(2)
                            .then(|| rng.next_u64() as u32 % 4),
                    )
                });
                tokens.push((line, at, record));
            }
        }
        let text = map(
            r#"["s0.js","s1.js","s2.js"]"#,
            r#"["n0","n1","n2","n3"]"#,
            &encode(&tokens),
        );
        let v = view(&text);
        let mut queries: Vec<(u32, u32)> = vec![(lines, 0), (0, u32::MAX)];
        for &(line, col, _) in &tokens {
            queries.extend([(line, col.saturating_sub(1)), (line, col), (line, col + 1)]);
        }
        for (line, col) in queries {
            assert_eq!(
                at(&v, line, col),
                naive(&tokens, line, col),
                "round {round}, {line}:{col}, tokens {tokens:?}"
            );
        }
    }
}
