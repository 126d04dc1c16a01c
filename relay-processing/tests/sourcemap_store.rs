//! Finding source maps in an artifact directory (URL and `~/` layouts, `sourceMappingURL`,
//! `<file>.map`, inline maps, debug ids, artifact bundles) and rewriting whole events, on
//! copies of tests/fixtures/js laid out in temporary directories.

use std::fs;
use std::io::Write;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use relay_processing::sourcemap::{symbolicate_js_event, JsStats, SourceMapStore, StoreOptions};
use serde_json::{json, Value};

fn js_dir() -> PathBuf {
    common::fixture_dir("js")
}

fn fixture(path: &str) -> Vec<u8> {
    let path = js_dir().join(path);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An artifact directory, a cache directory and a store over them.
struct Artifacts {
    root: tempfile::TempDir,
}

impl Artifacts {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("artifacts")
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    fn put(&self, relative: &str, data: impl AsRef<[u8]>) -> &Self {
        let path = self.dir().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
        self
    }

    fn store(&self) -> SourceMapStore {
        SourceMapStore::open(self.dir(), self.cache_dir(), 64 << 20).unwrap()
    }
}

fn event(frames: Value) -> Value {
    json!({
        "platform": "javascript",
        "exception": {"values": [{"type": "Error", "value": "failed!", "stacktrace": {"frames": frames}}]}
    })
}

fn frames(event: &Value) -> &Vec<Value> {
    event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap()
}

/// The three frames of symbolicator's `01_sourcemap_expansion`, caller first, at `url`.
fn expansion_frames(url: &str) -> Value {
    json!([
        {"function": "produceStack", "abs_path": "http://example.com/index.html", "filename": "index.html", "lineno": 6, "colno": 7},
        {"function": "i", "abs_path": url, "filename": "test.min.js", "lineno": 1, "colno": 183},
        {"function": "r", "abs_path": url, "filename": "test.min.js", "lineno": 1, "colno": 136},
        {"function": "e", "abs_path": url, "filename": "test.min.js", "lineno": 1, "colno": 64},
    ])
}

const EXPANSION: &str = "symbolicator/01_sourcemap_expansion";

#[test]
fn url_match_rewrites_frames_like_symbolicator() {
    let artifacts = Artifacts::new();
    artifacts
        .put(
            "example.com/test.min.js",
            fixture(&format!("{EXPANSION}/test.min.js")),
        )
        .put(
            "example.com/test.min.js.map",
            fixture(&format!("{EXPANSION}/test.min.js.map")),
        );
    let store = artifacts.store();
    let mut event = event(expansion_frames("http://example.com/test.min.js"));
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(
        stats,
        JsStats {
            frames: 4,
            symbolicated: 3,
            missing_sourcemap: 1,
            ..Default::default()
        }
    );
    let frames = frames(&event);
    assert_eq!(frames[0]["function"], "produceStack");
    assert_eq!(frames[0]["data"]["sourcemap_status"], "missing_sourcemap");
    assert_eq!(frames[0]["data"]["symbolicated"], false);

    // symbolicator's snapshot (expected/integration__sourcemap__sourcemap_expansion.snap).
    let test = &frames[1];
    assert_eq!(test["function"], "test");
    assert_eq!(test["raw_function"], "i");
    assert_eq!(test["filename"], "test.js");
    assert_eq!(test["module"], "test");
    assert_eq!(test["abs_path"], "http://example.com/test.js");
    assert_eq!(
        (test["lineno"].as_u64(), test["colno"].as_u64()),
        (Some(20), Some(5))
    );
    assert_eq!(test["context_line"], "    invoke(data);");
    assert_eq!(
        test["pre_context"],
        json!([
            "    cb(data);",
            "  }",
            "",
            "  function test() {",
            "    var data = {failed: true, value: 42};"
        ])
    );
    assert_eq!(
        test["post_context"],
        json!(["  }", "", "  return test;", "})();"])
    );
    let data = &test["data"];
    assert_eq!(data["sourcemap"], "http://example.com/test.min.js.map");
    assert_eq!(data["sourcemap_origin"], "example.com/test.min.js.map");
    assert_eq!(data["resolved_with"], "url");
    assert_eq!(data["symbolicated"], true);
    assert_eq!(data["sourcemap_status"], "symbolicated");
    assert_eq!(data["raw_abs_path"], "http://example.com/test.min.js");
    assert_eq!(
        (data["raw_lineno"].as_u64(), data["raw_colno"].as_u64()),
        (Some(1), Some(183))
    );

    let invoke = &frames[2];
    assert_eq!(invoke["function"], "invoke");
    assert_eq!(
        (invoke["lineno"].as_u64(), invoke["colno"].as_u64()),
        (Some(15), Some(5))
    );
    assert_eq!(invoke["context_line"], "    cb(data);");
    let on_failure = &frames[3];
    assert_eq!(on_failure["function"], "onFailure");
    assert_eq!(
        (on_failure["lineno"].as_u64(), on_failure["colno"].as_u64()),
        (Some(5), Some(11))
    );
    assert_eq!(
        on_failure["context_line"],
        "    throw new Error('failed!');"
    );

    // Built once, kept on disk.
    let cached: Vec<_> = fs::read_dir(artifacts.cache_dir()).unwrap().collect();
    assert_eq!(cached.len(), 1);
}

#[test]
fn tilde_and_plain_paths_match_any_host() {
    let dir = "symbolicator/09_webpack";
    let artifacts = Artifacts::new();
    artifacts
        .put(
            "~/static/test1.min.js",
            fixture(&format!("{dir}/test1.min.js")),
        )
        .put(
            "~/static/test1.min.js.map",
            fixture(&format!("{dir}/test1.min.js.map")),
        )
        .put(
            "assets/test2.min.js",
            fixture(&format!("{dir}/test2.min.js")),
        )
        .put(
            "assets/test2.min.js.map",
            fixture(&format!("{dir}/test2.min.js.map")),
        )
        .put(
            "other.example/only/test1.min.js",
            fixture(&format!("{dir}/test1.min.js")),
        );
    let store = artifacts.store();
    let mut event = event(json!([
        {"abs_path": "https://cdn.example.org/static/test1.min.js?v=3#x", "lineno": 1, "colno": 183, "function": "i"},
        {"abs_path": "http://localhost:8080/assets/test2.min.js", "lineno": 1, "colno": 183, "function": "i"},
        {"abs_path": "https://example.com/only/test1.min.js", "lineno": 1, "colno": 183},
        {"abs_path": "http://example.com/../../../etc/passwd", "lineno": 1, "colno": 1},
    ]));
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(
        (stats.symbolicated, stats.missing_sourcemap),
        (2, 2),
        "{stats:?}"
    );
    let frames = frames(&event);

    // symbolicator's webpack snapshot.
    assert_eq!(frames[0]["function"], "test");
    assert_eq!(
        frames[0]["abs_path"],
        "webpack:///./src/components/CampaignContent.tsx"
    );
    assert_eq!(
        frames[0]["filename"],
        "./src/components/CampaignContent.tsx"
    );
    assert_eq!(frames[0]["module"], "src/components/CampaignContent");
    assert_eq!(
        (frames[0]["lineno"].as_u64(), frames[0]["colno"].as_u64()),
        (Some(20), Some(5))
    );
    assert_eq!(frames[0]["context_line"], "    invoke(data);");
    assert_eq!(
        frames[0]["data"]["sourcemap"],
        "https://cdn.example.org/static/test1.min.js.map"
    );
    assert_eq!(
        frames[0]["data"]["sourcemap_origin"],
        "~/static/test1.min.js.map"
    );

    assert_eq!(
        frames[1]["abs_path"],
        "webpack:///./src/node_modules/components/CampaignContent.tsx"
    );
    assert_eq!(
        frames[1]["filename"],
        "./src/node_modules/components/CampaignContent.tsx"
    );
    assert_eq!(
        frames[1]["module"],
        "src/node_modules/components/CampaignContent"
    );
    assert_eq!(frames[1]["in_app"], false, "node_modules is not in-app");

    // A host folder only serves its host; path traversal finds nothing.
    assert_eq!(frames[2]["data"]["sourcemap_status"], "missing_sourcemap");
    assert_eq!(frames[3]["data"]["sourcemap_status"], "missing_sourcemap");
}

#[test]
fn indexed_map_takes_context_from_original_files_in_the_artifacts() {
    let dir = "symbolicator/07_indexed_sourcemap";
    let artifacts = Artifacts::new();
    for file in [
        "indexed.min.js",
        "indexed.min.js.map",
        "file1.js",
        "file2.js",
    ] {
        artifacts.put(
            &format!("example.com/{file}"),
            fixture(&format!("{dir}/{file}")),
        );
    }
    let mut event = event(json!([
        {"abs_path": "http://example.com/indexed.min.js", "lineno": 1, "colno": 39},
        {"abs_path": "http://example.com/indexed.min.js", "lineno": 2, "colno": 44},
    ]));
    let stats = symbolicate_js_event(&mut event, &artifacts.store());
    assert_eq!(stats.symbolicated, 2);
    let frames = frames(&event);
    // symbolicator's indexed_sourcemap snapshot.
    assert_eq!(frames[0]["function"], "add");
    assert_eq!(frames[0]["abs_path"], "http://example.com/file1.js");
    assert_eq!(frames[0]["filename"], "file1.js");
    assert_eq!(
        (frames[0]["lineno"].as_u64(), frames[0]["colno"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(
        frames[0]["pre_context"],
        json!(["function add(a, b) {", "\t\"use strict\";"])
    );
    assert_eq!(frames[0]["context_line"], "\treturn a + b; // fôo");
    assert_eq!(frames[0]["post_context"], json!(["}"]));
    assert_eq!(
        frames[0]["data"]["sourcemap"],
        "http://example.com/indexed.min.js.map"
    );
    assert_eq!(frames[1]["function"], "multiply");
    assert_eq!(frames[1]["abs_path"], "http://example.com/file2.js");
    assert_eq!(frames[1]["context_line"], "\treturn a * b;");
    assert_eq!(
        frames[1]["post_context"],
        json!([
            "}",
            "function divide(a, b) {",
            "\t\"use strict\";",
            "\ttry {",
            "\t\treturn multiply(add(a, b), a, b) / c;"
        ])
    );
}

#[test]
fn dot_map_fallback_inline_maps_and_map_only() {
    let minified = String::from_utf8(fixture(&format!("{EXPANSION}/test.min.js"))).unwrap();
    let map = fixture(&format!("{EXPANSION}/test.min.js.map"));
    let code = minified.lines().next().unwrap();
    let inline = format!(
        "{code}\n//# sourceMappingURL=data:application/json;charset=utf-8;base64,{}\n",
        base64::engine::general_purpose::STANDARD.encode(&map)
    );
    let artifacts = Artifacts::new();
    artifacts
        // No sourceMappingURL comment: `<file>.map` is used.
        .put("nocomment/test.min.js", format!("{code}\n"))
        .put("nocomment/test.min.js.map", &map)
        .put("inline/test.min.js", inline)
        // Only the map: resolves, without scopes.
        .put("maponly/test.min.js.map", &map);
    let store = artifacts.store();
    let mut event = json!({
        "exception": {"values": [
            {"stacktrace": {"frames": expansion_frames("http://example.com/nocomment/test.min.js")}},
            {"stacktrace": {"frames": expansion_frames("http://example.com/inline/test.min.js")}},
        ]},
        "threads": {"values": [
            {"stacktrace": {"frames": expansion_frames("http://example.com/maponly/test.min.js")}},
        ]},
    });
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(
        (stats.symbolicated, stats.missing_sourcemap),
        (9, 3),
        "{stats:?}"
    );

    let nocomment = event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(nocomment[1]["function"], "test");
    assert_eq!(
        nocomment[1]["data"]["sourcemap"],
        "http://example.com/nocomment/test.min.js.map"
    );

    let inline = event["exception"]["values"][1]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(inline[3]["function"], "onFailure");
    assert_eq!(
        inline[3]["data"]["sourcemap"],
        "data:application/json;charset=utf-8;base64,"
    );
    assert_eq!(
        inline[3]["data"]["sourcemap_origin"],
        "inline/test.min.js (inline)"
    );

    // Without the minified source there are no scopes: a frame is named after the token at
    // its caller's call site (`r(n)` calls `invoke`), the first frame keeps its own name.
    let maponly = event["threads"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(maponly[1]["function"], "i");
    assert_eq!(
        (maponly[1]["lineno"].as_u64(), maponly[1]["colno"].as_u64()),
        (Some(20), Some(5))
    );
    assert_eq!(maponly[2]["function"], "invoke");
    assert_eq!(maponly[2]["raw_function"], "r");
}

/// Copies of the 01 files with a debug id: `//# debugId=` in the minified file, and the map's
/// `debug_id` field (`debugId` with `camel`).
fn with_debug_id(id: &str, camel: bool) -> (String, String) {
    let minified = String::from_utf8(fixture(&format!("{EXPANSION}/test.min.js"))).unwrap();
    let code = minified.lines().next().unwrap();
    let minified = format!("{code}\n//# debugId={id}\n");
    let mut map: Value =
        serde_json::from_slice(&fixture(&format!("{EXPANSION}/test.min.js.map"))).unwrap();
    map[if camel { "debugId" } else { "debug_id" }] = id.into();
    (minified, map.to_string())
}

#[test]
fn debug_ids_from_the_event_and_from_the_minified_file() {
    let event_id = "b7e0b3a2-6c5e-4c5f-9d7e-2f3a1c4b5d6e";
    let file_id = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
    let (minified_a, map_a) = with_debug_id(event_id, false);
    let (minified_b, map_b) = with_debug_id(file_id, true);
    let artifacts = Artifacts::new();
    artifacts
        // Names unrelated to the URLs: only debug ids connect them.
        .put("uploads/1/chunk.js", minified_a)
        .put("uploads/2/a.map", map_a)
        .put("static/app.js", minified_b)
        .put("maps/x.map", map_b);
    let store = artifacts.store();
    let mut event = event(json!([
        {"abs_path": "app:///bundle.js", "lineno": 1, "colno": 183, "function": "i"},
        {"abs_path": "http://example.com/static/app.js", "lineno": 1, "colno": 136, "function": "r"},
    ]));
    event["debug_meta"] = json!({"images": [
        {"type": "sourcemap", "code_file": "app:///bundle.js", "debug_id": event_id.to_uppercase()},
        {"type": "elf", "code_file": "http://example.com/static/app.js", "debug_id": "00000000-0000-0000-0000-000000000000"},
    ]});
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(stats.symbolicated, 2, "{stats:?}");
    let frames = frames(&event);
    assert_eq!(
        frames[0]["function"], "test",
        "scopes: the minified file was found by debug id"
    );
    assert_eq!(frames[0]["abs_path"], "app:///test.js");
    assert_eq!(frames[0]["data"]["resolved_with"], "debug_id");
    assert_eq!(
        frames[0]["data"]["sourcemap"],
        format!("debug-id://{event_id}/uploads/2/a.map")
    );
    assert_eq!(frames[1]["function"], "invoke");
    assert_eq!(frames[1]["abs_path"], "http://example.com/static/test.js");
    assert_eq!(frames[1]["data"]["resolved_with"], "debug_id");
    assert_eq!(frames[1]["data"]["sourcemap_origin"], "maps/x.map");
}

/// A Sentry artifact bundle: `manifest.json` plus `files/...`, as sentry-cli writes it.
fn write_bundle(path: &Path, files: &[(&str, Value, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let mut manifest = serde_json::Map::new();
    for (name, meta, data) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
        manifest.insert((*name).to_owned(), meta.clone());
    }
    zip.start_file("manifest.json", options).unwrap();
    let manifest = json!({"org": "acme", "release": "1.0", "files": manifest});
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    zip.finish().unwrap();
}

#[test]
fn artifact_bundles_by_url_header_and_debug_id() {
    let webpack = "symbolicator/09_webpack";
    let id = "6c0a8d4e-2b1f-4e3a-9c5d-7e8f9a0b1c2d";
    let (minified_id, map_id) = with_debug_id(id, false);
    let artifacts = Artifacts::new();
    fs::create_dir_all(artifacts.dir().join("bundles")).unwrap();
    // A store opened before the bundle is dropped in finds it once the index is refreshed:
    // not before `index_refresh` (10 s by default), at once when it is zero.
    let store = artifacts.store();
    let refreshing = SourceMapStore::with_options(
        Some(artifacts.dir()),
        None,
        StoreOptions {
            index_refresh: Duration::ZERO,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let url = "https://example.com/static/test1.min.js";
    assert!(store.resolve(url, None).unwrap().is_none());
    assert!(refreshing.resolve(url, None).unwrap().is_none());
    write_bundle(
        &artifacts.dir().join("bundles/release-1.0.zip"),
        &[
            (
                "files/_/_/static/test1.min.js",
                json!({"url": "~/static/test1.min.js", "type": "minified_source",
                       "headers": {"Sourcemap": "maps/test1.map"}}),
                fixture(&format!("{webpack}/test1.min.js")),
            ),
            (
                "files/_/_/static/maps/test1.map",
                json!({"url": "~/static/maps/test1.map", "type": "source_map"}),
                fixture(&format!("{webpack}/test1.min.js.map")),
            ),
            (
                "files/_/_/chunk.js",
                json!({"url": "~/chunk.js", "type": "minified_source", "headers": {"debug-id": id}}),
                minified_id.into_bytes(),
            ),
            (
                "files/_/_/chunk.js.map",
                json!({"url": "~/chunk.js.map", "type": "source_map", "headers": {"debug-id": id}}),
                map_id.into_bytes(),
            ),
        ],
    );
    assert!(
        store.resolve(url, None).unwrap().is_none(),
        "index refreshes every 10 s"
    );
    assert!(refreshing.resolve(url, None).unwrap().is_some());
    let store = artifacts.store();
    assert!(store.resolve(url, None).unwrap().is_some());
    let mut event = event(json!([
        {"abs_path": "https://example.com/static/test1.min.js", "lineno": 1, "colno": 183},
        {"abs_path": "https://example.com/dist/renamed.js", "lineno": 1, "colno": 64},
    ]));
    event["debug_meta"] = json!({"images": [
        {"type": "sourcemap", "code_file": "https://example.com/dist/renamed.js", "debug_id": id},
    ]});
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(stats.symbolicated, 2, "{stats:?}");
    let frames = frames(&event);
    assert_eq!(frames[0]["function"], "test");
    assert_eq!(
        frames[0]["filename"],
        "./src/components/CampaignContent.tsx"
    );
    assert_eq!(
        frames[0]["data"]["sourcemap"],
        "https://example.com/static/maps/test1.map"
    );
    assert_eq!(
        frames[0]["data"]["sourcemap_origin"],
        "bundles/release-1.0.zip!files/_/_/static/maps/test1.map"
    );
    assert_eq!(frames[1]["function"], "onFailure");
    assert_eq!(
        (frames[1]["lineno"].as_u64(), frames[1]["colno"].as_u64()),
        (Some(5), Some(11))
    );
    assert_eq!(frames[1]["data"]["resolved_with"], "debug_id");
}

#[test]
fn broken_maps_and_positions_get_a_status_not_an_error() {
    let minified = fixture(&format!("{EXPANSION}/test.min.js"));
    let artifacts = Artifacts::new();
    artifacts
        .put("broken/test.min.js", &minified)
        .put(
            "broken/test.min.js.map",
            b"{\"version\":3,\"mappings\":\"!!!",
        )
        .put("ok/test.min.js", &minified)
        .put(
            "ok/test.min.js.map",
            fixture(&format!("{EXPANSION}/test.min.js.map")),
        );
    let store = artifacts.store();
    let mut event = event(json!([
        {"abs_path": "http://x/broken/test.min.js", "lineno": 1, "colno": 183},
        {"abs_path": "http://x/ok/test.min.js", "lineno": 40, "colno": 1},
        {"abs_path": "http://x/ok/test.min.js", "lineno": 0, "colno": 0},
        {"abs_path": "http://x/ok/test.min.js", "lineno": 1, "colno": 183, "platform": "native"},
    ]));
    let stats = symbolicate_js_event(&mut event, &store);
    assert_eq!(
        stats,
        JsStats {
            frames: 3,
            invalid_sourcemap: 1,
            invalid_location: 2,
            ..Default::default()
        }
    );
    let frames = frames(&event);
    assert_eq!(frames[0]["data"]["sourcemap_status"], "invalid_sourcemap");
    assert!(frames[0]["data"]["sourcemap_error"]
        .as_str()
        .unwrap()
        .contains("invalid source map"));
    assert_eq!(frames[1]["data"]["sourcemap_status"], "invalid_location");
    assert_eq!(
        frames[1]["data"]["sourcemap"],
        "http://x/ok/test.min.js.map"
    );
    assert_eq!(frames[1]["lineno"], 40, "position kept");
    assert!(
        frames[3].get("data").is_none(),
        "native frames are not touched"
    );
}

#[test]
fn disk_cache_is_shared_and_bounded() {
    let artifacts = Artifacts::new();
    artifacts
        .put(
            "a/test.min.js",
            fixture(&format!("{EXPANSION}/test.min.js")),
        )
        .put(
            "a/test.min.js.map",
            fixture(&format!("{EXPANSION}/test.min.js.map")),
        )
        .put(
            "b/test.min.js",
            fixture("symbolicator/09_webpack/test1.min.js"),
        )
        .put(
            "b/test.min.js.map",
            fixture("symbolicator/09_webpack/test1.min.js.map"),
        );
    let url = |dir: &str| format!("http://x/{dir}/test.min.js");

    // A second store over the same cache directory reuses the built file.
    for _ in 0..2 {
        let store = artifacts.store();
        let resolved = store.resolve(&url("a"), None).unwrap().unwrap();
        assert_eq!(resolved.view.lookup(1, 183).unwrap().line, 20);
    }
    assert_eq!(fs::read_dir(artifacts.cache_dir()).unwrap().count(), 1);

    // A bound smaller than two entries keeps only the newest.
    let small =
        SourceMapStore::open(artifacts.dir(), artifacts.root.path().join("small"), 1).unwrap();
    small.resolve(&url("a"), None).unwrap().unwrap();
    let b = small.resolve(&url("b"), None).unwrap().unwrap();
    assert_eq!(b.view.lookup(1, 183).unwrap().function(), Some("test"));
    assert_eq!(
        fs::read_dir(artifacts.root.path().join("small"))
            .unwrap()
            .count(),
        1
    );

    // Replacing an artifact (new mtime or size) is picked up.
    let store = artifacts.store();
    artifacts.put(
        "a/test.min.js.map",
        fixture("symbolicator/09_webpack/test1.min.js.map"),
    );
    let resolved = store.resolve(&url("a"), None).unwrap().unwrap();
    assert_eq!(
        resolved.view.lookup(1, 183).unwrap().source.as_deref(),
        Some("webpack:///./src/components/CampaignContent.tsx")
    );
}

#[test]
fn damaged_cache_files_are_rebuilt_not_trusted() {
    let artifacts = Artifacts::new();
    artifacts
        .put(
            "a/test.min.js",
            fixture(&format!("{EXPANSION}/test.min.js")),
        )
        .put(
            "a/test.min.js.map",
            fixture(&format!("{EXPANSION}/test.min.js.map")),
        );
    let url = "http://x/a/test.min.js";
    artifacts.store().resolve(url, None).unwrap().unwrap();
    let entry = fs::read_dir(artifacts.cache_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&entry).unwrap();
    let magic = good
        .windows(8)
        .position(|w| w == b"RLYSMV02")
        .expect("index magic after the cache header");

    /// Damages the file whose index starts at the given offset.
    type Damage = fn(&mut Vec<u8>, usize);
    let damages: [Damage; 3] = [
        // Truncated in the middle of the tokens.
        |bytes, index| bytes.truncate(index + 200),
        // Another format version.
        |bytes, index| bytes[index + 7] = b'1',
        // A line table that points past the tokens (token count 0).
        |bytes, index| bytes[index + 12..index + 16].copy_from_slice(&0u32.to_le_bytes()),
    ];
    for damage in damages {
        let mut bytes = good.clone();
        damage(&mut bytes, magic);
        fs::write(&entry, &bytes).unwrap();
        // A new store (nothing in memory) finds the damaged file, rebuilds and rewrites it.
        let resolved = artifacts.store().resolve(url, None).unwrap().unwrap();
        let location = resolved.view.lookup(1, 183).unwrap();
        assert_eq!((location.line, location.function()), (20, Some("test")));
        assert_eq!(fs::read(&entry).unwrap(), good);
    }
}

#[test]
fn original_file_shorter_than_the_map_says_gives_no_context() {
    let dir = "symbolicator/07_indexed_sourcemap";
    let artifacts = Artifacts::new();
    for file in ["indexed.min.js", "indexed.min.js.map"] {
        artifacts.put(
            &format!("example.com/{file}"),
            fixture(&format!("{dir}/{file}")),
        );
    }
    artifacts.put("example.com/file1.js", "function add(a, b) {\n");
    let mut event = event(json!([
        {"abs_path": "http://example.com/indexed.min.js", "lineno": 1, "colno": 39,
         "context_line": "function add(a,b){\"use strict\";return a+b}"},
    ]));
    let stats = symbolicate_js_event(&mut event, &artifacts.store());
    assert_eq!(stats.symbolicated, 1);
    let frame = &frames(&event)[0];
    assert_eq!(
        (frame["lineno"].as_u64(), frame["function"].as_str()),
        (Some(3), Some("add"))
    );
    assert!(
        frame.get("context_line").is_none(),
        "the minified line is not kept: {frame}"
    );
    assert!(frame.get("pre_context").is_none());
}

/// Uploaded bundles live in a directory of their own, searched with the artifact directory
/// (or alone); `refresh_index` makes a bundle stored after the last scan visible at once,
/// long before `index_refresh`.
#[test]
fn uploaded_bundles_are_found_after_refresh_index() {
    let webpack = "symbolicator/09_webpack";
    let id = "7d1b9e5f-3c2a-4f4b-8d6e-8f9a0b1c2d3e";
    let (minified_id, map_id) = with_debug_id(id, false);
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    let artifacts = root.path().join("artifacts");
    fs::create_dir_all(&artifacts).unwrap();
    fs::write(
        artifacts.join("plain.js.map"),
        fixture(&format!("{webpack}/test1.min.js.map")),
    )
    .unwrap();
    for dir in [None, Some(artifacts.clone())] {
        let _ = fs::remove_dir_all(&uploads);
        let store = SourceMapStore::with_options(dir.clone(), None, StoreOptions::default())
            .unwrap()
            .with_uploads_dir(&uploads);
        assert_eq!(store.uploads_dir(), Some(uploads.as_path()));
        let url = "https://example.com/dist/chunk.js";
        assert!(store.resolve(url, Some(id)).unwrap().is_none());
        fs::create_dir_all(&uploads).unwrap();
        write_bundle(
            &uploads.join("0123.zip"),
            &[
                (
                    "files/_/_/chunk.js",
                    json!({"url": "~/dist/chunk.js", "type": "minified_source",
                           "headers": {"debug-id": id, "sourcemap": "chunk.js.map"}}),
                    minified_id.clone().into_bytes(),
                ),
                (
                    "files/_/_/chunk.js.map",
                    json!({"url": "~/dist/chunk.js.map", "type": "source_map",
                           "headers": {"debug-id": id}}),
                    map_id.clone().into_bytes(),
                ),
            ],
        );
        // Not yet: the index was built a moment ago and is kept for 10 s.
        assert!(store.resolve(url, Some(id)).unwrap().is_none());
        store.refresh_index();
        let by_id = store
            .resolve(url, Some(id))
            .unwrap()
            .expect("found by debug id");
        assert_eq!(by_id.resolved_with.as_str(), "debug_id");
        assert_eq!(by_id.origin, "0123.zip!files/_/_/chunk.js.map");
        let by_url = store.resolve(url, None).unwrap().expect("found by URL");
        assert_eq!(
            by_url.resolved_with.as_str(),
            "debug_id",
            "via the bundle's debug-id header"
        );
        // The artifact directory still answers for its own files.
        let plain = store.resolve("https://example.com/plain.js", None).unwrap();
        assert_eq!(plain.is_some(), dir.is_some());
    }
}
