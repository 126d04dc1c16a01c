//! The bounds of one event's JavaScript symbolication (docs/security.md, "Bounds on one event's work"): frames resolved, files
//! looked up, the deadline, and the size of one artifact (plain file or bundle entry). Frames
//! past a bound keep their minified positions and say why; the other frames are resolved.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use relay_processing::sourcemap::{
    symbolicate_js_event_within, JsLimits, JsStats, SourceMapStore, StoreOptions,
};
use serde_json::{json, Value};

mod common;

const EXPANSION: &str = "symbolicator/01_sourcemap_expansion";

fn fixture(name: &str) -> Vec<u8> {
    let path = common::fixture_dir("js").join(EXPANSION).join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Puts the expansion fixture's minified file and map under `dir/<prefix>/`, the map padded
/// with `padding` bytes of trailing whitespace (still valid JSON).
fn put_expansion(dir: &Path, prefix: &str, padding: usize) {
    let target = dir.join(prefix);
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("test.min.js"), fixture("test.min.js")).unwrap();
    let mut map = fixture("test.min.js.map");
    map.resize(map.len() + padding, b' ');
    fs::write(target.join("test.min.js.map"), map).unwrap();
}

fn store(dir: PathBuf, max_artifact_bytes: u64) -> SourceMapStore {
    let options = StoreOptions {
        max_artifact_bytes,
        ..StoreOptions::default()
    };
    SourceMapStore::with_options(Some(dir), None, options).unwrap()
}

/// The three minified frames of the expansion fixture at `url`, caller first.
fn frames_at(url: &str) -> Vec<Value> {
    vec![
        json!({"function": "i", "abs_path": url, "lineno": 1, "colno": 183}),
        json!({"function": "r", "abs_path": url, "lineno": 1, "colno": 136}),
        json!({"function": "e", "abs_path": url, "lineno": 1, "colno": 64}),
    ]
}

fn event(frames: Vec<Value>) -> Value {
    json!({
        "platform": "javascript",
        "exception": {"values": [{"type": "Error", "stacktrace": {"frames": frames}}]}
    })
}

fn frames(event: &Value) -> &Vec<Value> {
    event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap()
}

fn status(frame: &Value) -> &str {
    frame["data"]["sourcemap_status"].as_str().unwrap()
}

fn cut_off_reasons(event: &Value) -> Vec<&str> {
    event["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "js_symbolication_cut_off")
        .map(|e| e["reason"].as_str().unwrap())
        .collect()
}

#[test]
fn frames_past_the_frame_limit_keep_their_minified_positions() {
    let root = tempfile::tempdir().unwrap();
    put_expansion(root.path(), "example.com", 0);
    let store = store(root.path().to_owned(), 64 << 20);
    let url = "http://example.com/test.min.js";
    let mut frames_in = frames_at(url);
    frames_in.extend(frames_at(url));
    let mut event = event(frames_in);
    event["stacktrace"] = json!({"frames": frames_at(url)});
    let limits = JsLimits {
        max_frames: 4,
        ..JsLimits::default()
    };
    let stats = symbolicate_js_event_within(&mut event, &store, &limits);
    assert_eq!(
        stats,
        JsStats {
            frames: 9,
            symbolicated: 4,
            cut_off: 5,
            ..Default::default()
        }
    );
    // Within the exception's stack trace the innermost four are resolved.
    let exception = frames(&event);
    for frame in &exception[..2] {
        assert_eq!(status(frame), "frame_limit");
        assert_eq!(frame["data"]["symbolicated"], false);
        assert_eq!(frame["abs_path"], url);
        assert_eq!(frame["lineno"], 1);
    }
    for frame in &exception[2..] {
        assert_eq!(status(frame), "symbolicated");
        assert_eq!(frame["abs_path"], "http://example.com/test.js");
    }
    // The budget is per event: the top-level stack trace gets none.
    for frame in event["stacktrace"]["frames"].as_array().unwrap() {
        assert_eq!(status(frame), "frame_limit");
    }
    assert_eq!(cut_off_reasons(&event), ["too_many_frames"]);
}

#[test]
fn files_past_the_lookup_limit_are_not_looked_up() {
    let root = tempfile::tempdir().unwrap();
    put_expansion(root.path(), "a", 0);
    put_expansion(root.path(), "b", 0);
    let store = store(root.path().to_owned(), 64 << 20);
    let mut frames_in = frames_at("http://x/a/test.min.js");
    frames_in.extend(frames_at("http://x/b/test.min.js"));
    let mut event = event(frames_in);
    let limits = JsLimits {
        max_sourcemaps: 1,
        ..JsLimits::default()
    };
    let stats = symbolicate_js_event_within(&mut event, &store, &limits);
    assert_eq!((stats.symbolicated, stats.cut_off), (3, 3));
    let frames = frames(&event);
    assert!(frames[..3].iter().all(|f| status(f) == "symbolicated"));
    for frame in &frames[3..] {
        assert_eq!(status(frame), "sourcemap_limit");
        assert_eq!(frame["abs_path"], "http://x/b/test.min.js");
    }
    assert_eq!(cut_off_reasons(&event), ["too_many_sourcemaps"]);
}

#[test]
fn after_the_deadline_no_frame_is_resolved() {
    let root = tempfile::tempdir().unwrap();
    put_expansion(root.path(), "example.com", 0);
    let store = store(root.path().to_owned(), 64 << 20);
    let mut event = event(frames_at("http://example.com/test.min.js"));
    // A deadline already passed: no timing involved.
    let limits = JsLimits {
        deadline: Some(Instant::now()),
        ..JsLimits::default()
    };
    let stats = symbolicate_js_event_within(&mut event, &store, &limits);
    assert_eq!((stats.frames, stats.cut_off), (3, 3));
    assert!(frames(&event).iter().all(|f| status(f) == "timeout"));
    assert_eq!(cut_off_reasons(&event), ["timeout"]);
}

#[test]
fn an_oversize_map_is_not_loaded_and_other_files_still_resolve() {
    let root = tempfile::tempdir().unwrap();
    let limit = fixture("test.min.js.map").len() + 100;
    put_expansion(root.path(), "small", 0);
    put_expansion(root.path(), "big", limit);
    let store = store(root.path().to_owned(), limit as u64);
    let mut frames_in = frames_at("http://x/big/test.min.js");
    frames_in.extend(frames_at("http://x/small/test.min.js"));
    let mut event = event(frames_in);
    let stats = symbolicate_js_event_within(&mut event, &store, &JsLimits::default());
    assert_eq!((stats.too_large, stats.symbolicated), (3, 3));
    let frames = frames(&event);
    for frame in &frames[..3] {
        assert_eq!(status(frame), "too_large");
        let error = frame["data"]["sourcemap_error"].as_str().unwrap();
        assert!(error.contains("too large"), "{error}");
        assert_eq!(frame["abs_path"], "http://x/big/test.min.js");
    }
    assert!(frames[3..].iter().all(|f| status(f) == "symbolicated"));
    // A size bound is not a cut-off of the event's work.
    assert!(cut_off_reasons(&event).is_empty());
}

#[test]
fn an_oversize_bundle_entry_is_refused_by_its_declared_size() {
    let root = tempfile::tempdir().unwrap();
    let limit = fixture("test.min.js.map").len() + 100;
    let mut map = fixture("test.min.js.map");
    // Whitespace compresses to almost nothing; the entry's declared (uncompressed) size is
    // what is checked, before anything is decompressed.
    map.resize(map.len() + 10 * limit, b' ');
    let mut zip = zip::ZipWriter::new(fs::File::create(root.path().join("b.zip")).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let manifest = json!({"files": {
        "files/_/_/test.min.js": {"url": "~/test.min.js", "type": "minified_source",
                                  "headers": {"sourcemap": "test.min.js.map"}},
        "files/_/_/test.min.js.map": {"url": "~/test.min.js.map", "type": "source_map"},
    }});
    for (name, data) in [
        ("files/_/_/test.min.js", fixture("test.min.js")),
        ("files/_/_/test.min.js.map", map),
        ("manifest.json", manifest.to_string().into_bytes()),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(&data).unwrap();
    }
    zip.finish().unwrap();
    let store = store(root.path().to_owned(), limit as u64);
    let mut event = event(frames_at("https://example.com/test.min.js"));
    let stats = symbolicate_js_event_within(&mut event, &store, &JsLimits::default());
    assert_eq!(stats.too_large, 3);
    let error = frames(&event)[0]["data"]["sourcemap_error"]
        .as_str()
        .unwrap();
    assert!(
        error.contains("b.zip") && error.contains("too large"),
        "{error}"
    );
}
