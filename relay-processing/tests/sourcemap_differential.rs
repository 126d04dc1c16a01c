//! relay's source map index against symbolic's `SourceMapCache` (which relay used before),
//! position by position, on every map of tests/fixtures/js: the original file, line,
//! column, name and scope name must agree at every generated position the `sourcemap` crate
//! lists (each token's start), and one column after it.

mod common;

use std::path::PathBuf;

use relay_processing::sourcemap::{RawScope, SourceMapView};
use symbolic_sourcemapcache::{
    ScopeLookupResult, SourceMapCache, SourceMapCacheWriter, SourcePosition,
};

fn js_dir() -> PathBuf {
    common::fixture_dir("js")
}

fn read(path: &str) -> String {
    let path = js_dir().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (minified source, map).
const CASES: &[(Option<&str>, &str)] = &[
    (
        Some("symbolicator/01_sourcemap_expansion/test.min.js"),
        "symbolicator/01_sourcemap_expansion/test.min.js.map",
    ),
    (
        Some("symbolicator/07_indexed_sourcemap/indexed.min.js"),
        "symbolicator/07_indexed_sourcemap/indexed.min.js.map",
    ),
    (
        Some("symbolicator/09_webpack/test1.min.js"),
        "symbolicator/09_webpack/test1.min.js.map",
    ),
    (
        Some("symbolicator/09_webpack/test2.min.js"),
        "symbolicator/09_webpack/test2.min.js.map",
    ),
    (
        Some("symbolic-sourcemapcache/inlining/module.js"),
        "symbolic-sourcemapcache/inlining/module.js.map",
    ),
    (
        Some("symbolic-sourcemapcache/simple/minified.js"),
        "symbolic-sourcemapcache/simple/minified.js.map",
    ),
    (
        Some("symbolic-sourcemapcache/preact.module.js"),
        "symbolic-sourcemapcache/preact.module.js.map",
    ),
    (
        Some("symbolic-sourcemapcache/nofiles.js"),
        "symbolic-sourcemapcache/nofiles.js.map",
    ),
    (
        Some("symbolic-sourcemapcache/webpack/bundle.js"),
        "symbolic-sourcemapcache/webpack/bundle.js.map",
    ),
    (
        None,
        "symbolic-sourcemapcache/hermes-metro/react-native-hermes.map",
    ),
    (
        Some("symbolic-sourcemapcache/hermes-metro/react-native-metro.js"),
        "symbolic-sourcemapcache/hermes-metro/react-native-metro.js.map",
    ),
    (
        Some("symbolic-py/jquery.min.js"),
        "symbolic-py/jquery.min.map",
    ),
    (None, "symbolic-py/jquery.min.map"),
    (None, "symbolic-py/android-release.bundle.map"),
    (
        Some("symbolic-py/unicode.min.js"),
        "symbolic-py/unicode.min.map",
    ),
    (
        Some("symbolic-py/traceback-unicode.min.js"),
        "symbolic-py/traceback-unicode.min.map",
    ),
];

/// Every token start of the map, per the `sourcemap` crate, 0-based.
fn positions(map: &str) -> Vec<(u32, u32)> {
    let decoded = sourcemap::decode_slice(map.as_bytes()).unwrap();
    let mut positions: Vec<(u32, u32)> = match decoded {
        sourcemap::DecodedMap::Regular(map) => map.tokens().map(|t| t.get_dst()).collect(),
        sourcemap::DecodedMap::Index(index) => index
            .flatten()
            .unwrap()
            .tokens()
            .map(|t| t.get_dst())
            .collect(),
        sourcemap::DecodedMap::Hermes(map) => map.tokens().map(|t| t.get_dst()).collect(),
    };
    positions.sort_unstable();
    positions.dedup();
    positions
}

type Resolved = (Option<String>, u32, u32, Option<String>, String);

fn ours(view: &SourceMapView, line: u32, col: u32) -> Option<Resolved> {
    let raw = view.lookup_raw(line, col)?;
    let scope = match raw.scope {
        RawScope::Named(name) => name.to_owned(),
        RawScope::Anonymous => "<anonymous>".to_owned(),
        RawScope::Unknown => "-".to_owned(),
    };
    Some((
        raw.source.map(str::to_owned),
        raw.line,
        raw.col,
        raw.name.map(str::to_owned),
        scope,
    ))
}

fn symbolic(cache: &SourceMapCache<'_>, line: u32, col: u32) -> Option<Resolved> {
    let location = cache.lookup(SourcePosition::new(line, col))?;
    let scope = match location.scope() {
        ScopeLookupResult::NamedScope(name) => name.to_owned(),
        ScopeLookupResult::AnonymousScope => "<anonymous>".to_owned(),
        ScopeLookupResult::Unknown => "-".to_owned(),
    };
    Some((
        location.file_name().map(str::to_owned),
        location.line(),
        location.column(),
        location.name().map(str::to_owned),
        scope,
    ))
}

#[test]
fn same_results_as_symbolic_sourcemapcache() {
    for &(minified, map_path) in CASES {
        let map = read(map_path);
        let minified = minified.map(read);
        let view = SourceMapView::build(minified.as_deref(), &map).unwrap();
        let writer = SourceMapCacheWriter::new(minified.as_deref().unwrap_or(""), &map).unwrap();
        let mut bytes = Vec::new();
        writer.serialize(&mut bytes).unwrap();
        let cache = SourceMapCache::parse(&bytes).unwrap();

        let positions = positions(&map);
        // A map whose positions all fail to resolve on both sides would "agree" everywhere.
        assert!(!positions.is_empty(), "{map_path}: no positions to compare");
        let mut differences = Vec::new();
        let mut resolved = 0;
        for &(line, col) in &positions {
            for col in [col, col + 1] {
                let (a, b) = (ours(&view, line, col), symbolic(&cache, line, col));
                resolved += usize::from(a.is_some() && b.is_some());
                if a != b {
                    differences.push(format!("{line}:{col}: relay {a:?}, symbolic {b:?}"));
                }
            }
        }
        assert!(
            differences.is_empty(),
            "{map_path}: {} of {} positions differ:\n{}",
            differences.len(),
            positions.len() * 2,
            differences[..differences.len().min(20)].join("\n")
        );
        assert!(
            resolved * 2 >= positions.len(),
            "{map_path}: only {resolved} of {} positions resolved on both sides",
            positions.len() * 2
        );
    }
}
