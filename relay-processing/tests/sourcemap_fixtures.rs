//! Source map resolution on the fixtures of tests/fixtures/js, with the expectations of
//! its README ("js/" section): symbolicator's integration cases, symbolic's sourcemapcache
//! cases, jQuery and the React Native (Hermes/Metro) maps.
//!
//! `lookup` takes and returns SDK positions (1-based line and column); `lookup0` goes through
//! the raw 0-based lookup for the cases the README gives 0-based.

mod common;

use std::path::PathBuf;

use relay_processing::sourcemap::{Location, Scope, SourceMapView};

fn js_dir() -> PathBuf {
    common::fixture_dir("js")
}

fn read(path: &str) -> String {
    let path = js_dir().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn view(minified: Option<&str>, map: &str) -> SourceMapView {
    let minified = minified.map(read);
    SourceMapView::build(minified.as_deref(), &read(map)).expect("map builds")
}

#[track_caller]
fn lookup(view: &SourceMapView, line: u32, col: u32) -> Location {
    view.lookup(line, col)
        .unwrap_or_else(|| panic!("{line}:{col} resolves"))
}

/// (file, line, column, name, scope), all 0-based, straight from the index.
type Raw = (Option<String>, u32, u32, Option<String>, Scope);

#[track_caller]
fn lookup0(view: &SourceMapView, line: u32, col: u32) -> Option<Raw> {
    let raw = view.lookup_raw(line, col)?;
    Some((
        raw.source.map(str::to_owned),
        raw.line,
        raw.col,
        raw.name.map(str::to_owned),
        raw.scope.to_scope(),
    ))
}

fn named(name: &str) -> Scope {
    Scope::Named(name.to_owned())
}

// --- symbolicator/ -------------------------------------------------------------------------

#[test]
fn symbolicator_sourcemap_expansion() {
    let dir = "symbolicator/01_sourcemap_expansion";
    let view = view(
        Some(&format!("{dir}/test.min.js")),
        &format!("{dir}/test.min.js.map"),
    );
    let cases = [
        (183, "test", 20, 5),
        (136, "invoke", 15, 5),
        (64, "onFailure", 5, 11),
    ];
    for (col, function, line, orig_col) in cases {
        let loc = lookup(&view, 1, col);
        assert_eq!(loc.source.as_deref(), Some("test.js"), "1:{col}");
        assert_eq!((loc.line, loc.col), (line, orig_col), "1:{col}");
        assert_eq!(loc.function(), Some(function), "1:{col}");
    }
    // The enclosing scope, not the token: at 1:183 the token is the call `invoke(data)`.
    let loc = lookup(&view, 1, 183);
    assert_eq!(loc.name.as_deref(), Some("invoke"));
    let context = loc.context.expect("sourcesContent");
    assert_eq!(context.line, "    invoke(data);");
    assert_eq!(
        context.pre,
        [
            "    cb(data);",
            "  }",
            "",
            "  function test() {",
            "    var data = {failed: true, value: 42};"
        ]
    );
    assert_eq!(context.post, ["  }", "", "  return test;", "})();"]);
}

#[test]
fn symbolicator_webpack() {
    let dir = "symbolicator/09_webpack";
    for (n, source) in [
        (1, "webpack:///./src/components/CampaignContent.tsx"),
        (
            2,
            "webpack:///./src/node_modules/components/CampaignContent.tsx",
        ),
    ] {
        let view = view(
            Some(&format!("{dir}/test{n}.min.js")),
            &format!("{dir}/test{n}.min.js.map"),
        );
        let loc = lookup(&view, 1, 183);
        assert_eq!(loc.source.as_deref(), Some(source));
        assert_eq!((loc.line, loc.col), (20, 5));
        assert_eq!(loc.function(), Some("test"));
    }
}

#[test]
fn symbolicator_indexed_sourcemap() {
    let dir = "symbolicator/07_indexed_sourcemap";
    let view = view(
        Some(&format!("{dir}/indexed.min.js")),
        &format!("{dir}/indexed.min.js.map"),
    );
    let add = lookup(&view, 1, 39);
    assert_eq!(add.source.as_deref(), Some("file1.js"));
    assert_eq!((add.line, add.col), (3, 9));
    assert_eq!(add.function(), Some("add"));
    // No sourcesContent in this map: context comes from the artifact store (sourcemap_store.rs).
    assert!(add.context.is_none());

    let multiply = lookup(&view, 2, 44);
    assert_eq!(multiply.source.as_deref(), Some("file2.js"));
    assert_eq!((multiply.line, multiply.col), (3, 9));
    assert_eq!(multiply.function(), Some("multiply"));
}

// --- symbolic-sourcemapcache/ (README positions are 0-based unless noted) ------------------

#[test]
fn sourcemapcache_inlining() {
    let dir = "symbolic-sourcemapcache/inlining";
    let view = view(
        Some(&format!("{dir}/module.js")),
        &format!("{dir}/module.js.map"),
    );
    let (file, line, col, _, scope) = lookup0(&view, 0, 62).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("../src/app.js"), 2, 29));
    assert_eq!(scope, named("buttonCallback"));

    let (file, line, col, name, scope) = lookup0(&view, 0, 46).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("../src/bar.js"), 3, 2));
    assert_eq!(scope, named("bar"));
    assert_eq!(name.as_deref(), Some("foo"));

    let (file, line, col, _, scope) = lookup0(&view, 0, 33).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("../src/foo.js"), 1, 8));
    assert_eq!(scope, Scope::Anonymous);

    assert!(
        lookup0(&view, 1, 17).is_none(),
        "the sourceMappingURL line is unmapped"
    );

    // The same through the 1-based API.
    let loc = lookup(&view, 1, 47);
    assert_eq!((loc.line, loc.col), (4, 3));
    assert_eq!(loc.scope, named("bar"));
    assert_eq!(lookup(&view, 1, 34).function(), Some("<anonymous>"));
    assert!(view.lookup(2, 18).is_none());
}

#[test]
fn sourcemapcache_simple() {
    let dir = "symbolic-sourcemapcache/simple";
    let view = view(
        Some(&format!("{dir}/minified.js")),
        &format!("{dir}/minified.js.map"),
    );
    let (file, line, col, _, scope) = lookup0(&view, 0, 10).unwrap();
    assert!(file.unwrap().ends_with("original.js"));
    assert_eq!((line, col), (1, 9));
    assert_eq!(scope, named("abcd"));
}

#[test]
fn sourcemapcache_preact() {
    // The README gives the input in SDK terms (1-based line and column) and the original
    // position 0-based, as symbolic reports it; `Location` is 1-based, hence the `+ 1`s.
    let view = view(
        Some("symbolic-sourcemapcache/preact.module.js"),
        "symbolic-sourcemapcache/preact.module.js.map",
    );
    let cases = [
        (50, "../src/constants.js", 2, 34, None),
        (133, "../src/util.js", 11, 22, Some("assign")),
        (
            482,
            "../src/create-element.js",
            39,
            8,
            Some("createElement"),
        ),
        (9780, "../src/component.js", 181, 4, None),
        (9795, "../src/create-context.js", 2, 11, None),
    ];
    for (col, source, line, orig_col, function) in cases {
        let loc = lookup(&view, 1, col);
        assert_eq!(loc.source.as_deref(), Some(source), "1:{col}");
        assert_eq!((loc.line, loc.col), (line + 1, orig_col + 1), "1:{col}");
        if let Some(function) = function {
            assert_eq!(loc.function(), Some(function), "1:{col}");
        }
    }
}

#[test]
fn sourcemapcache_nofiles() {
    let view = view(
        Some("symbolic-sourcemapcache/nofiles.js"),
        "symbolic-sourcemapcache/nofiles.js.map",
    );
    let (_, line, col, _, scope) = lookup0(&view, 0, 38).unwrap();
    assert_eq!((line, col), (2, 8));
    assert_eq!(scope, named("add"));
    let loc = lookup(&view, 1, 39);
    assert_eq!(loc.source.as_deref().unwrap_or(""), "", "sources are null");
    let context = loc.context.expect("sourcesContent without file names");
    assert!(context.line.contains("fôo"), "{}", context.line);
}

#[test]
fn sourcemapcache_webpack() {
    let dir = "symbolic-sourcemapcache/webpack";
    let view = view(
        Some(&format!("{dir}/bundle.js")),
        &format!("{dir}/bundle.js.map"),
    );
    let (file, line, col, _, scope) = lookup0(&view, 0, 84).unwrap();
    assert_eq!(
        (file.as_deref(), line, col),
        (Some("webpack:///./foo.js"), 1, 8)
    );
    assert_eq!(scope, named("module.exports"));
    let (file, line, col, _, scope) = lookup0(&view, 0, 43).unwrap();
    assert_eq!(
        (file.as_deref(), line, col),
        (Some("webpack:///./bar.js"), 1, 2)
    );
    assert_eq!(scope, named("module.exports"));
}

#[test]
fn sourcemapcache_hermes_and_metro() {
    let dir = "symbolic-sourcemapcache/hermes-metro";
    // Hermes: bytecode, no minified source; the scopes come from x_facebook_sources.
    let hermes = view(None, &format!("{dir}/react-native-hermes.map"));
    let (file, line, col, _, scope) = lookup0(&hermes, 0, 11939).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("module.js"), 1, 10));
    assert_eq!(scope, named("foo"));
    let (file, line, col, _, scope) = lookup0(&hermes, 0, 11857).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("input.js"), 2, 0));
    assert_eq!(scope, named("<global>"));

    let metro = view(
        Some(&format!("{dir}/react-native-metro.js")),
        &format!("{dir}/react-native-metro.js.map"),
    );
    let (file, line, col, _, scope) = lookup0(&metro, 6, 100).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("module.js"), 1, 10));
    assert_eq!(scope, named("foo"));
    let (file, line, col, _, scope) = lookup0(&metro, 5, 43).unwrap();
    assert_eq!((file.as_deref(), line, col), (Some("input.js"), 2, 0));
    assert_eq!(scope, named("<global>"));
}

// --- symbolic-py/ --------------------------------------------------------------------------

#[test]
fn jquery_every_named_token_maps_to_its_identifier() {
    let map_text = read("symbolic-py/jquery.min.map");
    let original = read("symbolic-py/jquery.js");
    let original_lines: Vec<&str> = original.lines().collect();
    let view = view(
        Some("symbolic-py/jquery.min.js"),
        "symbolic-py/jquery.min.map",
    );
    let map = sourcemap::SourceMap::from_slice(map_text.as_bytes()).unwrap();

    let mut checked = 0;
    let mut mismatches = Vec::new();
    for token in map.tokens().filter(|t| t.get_name().is_some()) {
        let name = token.get_name().unwrap();
        let (line, col) = token.get_dst();
        let loc = lookup(&view, line + 1, col + 1);
        assert_eq!(loc.name.as_deref(), Some(name), "{}:{}", line + 1, col + 1);
        assert_eq!(loc.source.as_deref(), Some("jquery.js"));
        // jquery.js is ASCII: UTF-16 columns are byte offsets. Quoted keys (`"embed": true`,
        // minified to `embed:!0`) start at their quote.
        let text = original_lines[loc.line as usize - 1];
        let at = &text[loc.col as usize - 1..];
        if !at.trim_start_matches(['"', '\'']).starts_with(name) {
            mismatches.push(format!(
                "{}:{} -> {}:{} is {:?}, expected {name}",
                line + 1,
                col + 1,
                loc.line,
                loc.col,
                &at[..at.len().min(20)]
            ));
        }
        checked += 1;
    }
    assert!(
        mismatches.is_empty(),
        "{} of {checked}: {mismatches:#?}",
        mismatches.len()
    );
    assert!(checked > 5000, "only {checked} named tokens");
}

#[test]
fn react_native_android_release_bundle() {
    // 0-based positions in and out, as in the README; no bundle, so no scopes.
    let view = view(None, "symbolic-py/android-release.bundle.map");
    let (_, line, col, name, _) = lookup0(&view, 308, 765).unwrap();
    assert_eq!(
        (name.as_deref(), line, col),
        (Some("invalidFunction"), 40, 72)
    );
    let (_, line, col, name, _) = lookup0(&view, 308, 573).unwrap();
    assert_eq!(
        (name.as_deref(), line, col),
        (Some("invalidFunction"), 34, 9)
    );
    // And in SDK terms.
    let loc = lookup(&view, 309, 766);
    assert_eq!((loc.line, loc.col), (41, 73));
}

/// The UTF-16 column (1-based) of the first `needle` in `line`.
fn utf16_col(line: &str, needle: &str) -> u32 {
    let byte = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in {line}"));
    line[..byte].encode_utf16().count() as u32 + 1
}

#[test]
fn non_ascii_columns_count_utf16_units() {
    // `ñ` before `alert`: one UTF-16 unit, two bytes.
    let unicode = view(
        Some("symbolic-py/unicode.min.js"),
        "symbolic-py/unicode.min.map",
    );
    let minified = read("symbolic-py/unicode.min.js");
    let col = utf16_col(minified.lines().next().unwrap(), "alert");
    let loc = lookup(&unicode, 1, col);
    assert_eq!(loc.name.as_deref(), Some("alert"));
    assert_eq!((loc.line, loc.col), (3, 3));

    // An emoji (two UTF-16 units) before the call `r(n)` to `invoke`, inside `ÿ`.
    let traceback = view(
        Some("symbolic-py/traceback-unicode.min.js"),
        "symbolic-py/traceback-unicode.min.map",
    );
    let minified = read("symbolic-py/traceback-unicode.min.js");
    let col = utf16_col(minified.lines().next().unwrap(), "r(n)}return");
    let loc = lookup(&traceback, 1, col);
    let original = read("symbolic-py/traceback-unicode.js");
    let line = original.lines().nth(20).unwrap();
    assert_eq!(loc.name.as_deref(), Some("invoke"));
    assert_eq!((loc.line, loc.col), (21, utf16_col(line, "invoke(data)")));
    assert_eq!(loc.function(), Some("ÿ"));
    // This map's generated columns count the emoji as one unit (its generator predates UTF-16
    // columns), so the token sits one column early: the lookup still lands on it.
}
