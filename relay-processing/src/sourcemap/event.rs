//! Symbolicating the JavaScript frames of an event in place.
//!
//! [`symbolicate_js_event`] walks `exception.values[].stacktrace`, `threads.values[].stacktrace`
//! and the top-level `stacktrace`. A frame is considered when it has `abs_path` (or
//! `filename`), an integer `lineno` and `colno` (1-based, UTF-16 columns), and is not a native
//! or engine-internal frame (`node:…`, `native`, `<anonymous>`). Each considered frame gets
//! `data.sourcemap_status` ([`FrameStatus`]) and `data.symbolicated`. A resolved frame is
//! rewritten:
//!
//! | field | becomes |
//! |---|---|
//! | `abs_path` | the original source, joined with the map's URL (`webpack:///./src/a.ts` stays) |
//! | `filename` | `abs_path` without scheme and host (without `webpack://<ns>/`) |
//! | `module` | derived from `filename` when the frame had none |
//! | `lineno`, `colno` | original position, 1-based |
//! | `function` | the enclosing scope's original name; `<anonymous>`; else the caller's token name; else unchanged |
//! | `context_line`, `pre_context`, `post_context` | original source lines (from `sourcesContent`), or removed |
//! | `in_app` | `false` for `node_modules` sources, when the SDK did not set it |
//! | `raw_function` | the minified function name |
//! | `data.raw_abs_path`, `data.raw_filename`, `data.raw_lineno`, `data.raw_colno` | the minified position |
//! | `data.sourcemap`, `data.sourcemap_origin`, `data.resolved_with` | the map's URL, where it was found, `url`/`debug_id` |
//!
//! Frames that already carry `data.sourcemap_status` are left alone, so processing an event
//! twice (a retried spool entry) changes nothing. Nothing here fails an event.
//!
//! # Bounds
//!
//! [`JsLimits`] bounds the work of one event: frames resolved, distinct files looked up, and
//! a deadline. A frame past a bound keeps its minified position and gets `frame_limit`,
//! `sourcemap_limit` or `timeout` as its status; the event's `errors` gain one
//! `{"type": "js_symbolication_cut_off", "reason": ...}` entry per bound hit. The size of one
//! artifact is bounded by the store ([`StoreOptions::max_artifact_bytes`](super::StoreOptions)):
//! frames of a file too large get `too_large`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::store::ResolvedMap;
use super::url::{self, display_filename, module_name};
use super::view::{Context, Location, Scope, CONTEXT_LINES};
use super::{SourceMapError, SourceMapStore};

/// What happened to one frame, written as `data.sourcemap_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameStatus {
    /// Resolved to its original location.
    Symbolicated,
    /// No source map was found for the frame's file.
    MissingSourcemap,
    /// A map was found but could not be read or parsed (see `data.sourcemap_error`).
    InvalidSourcemap,
    /// The map does not cover the frame's line and column.
    InvalidLocation,
    /// The minified file or its map is larger than the store reads (see
    /// `data.sourcemap_error`).
    TooLarge,
    /// Not resolved: the event already had [`JsLimits::max_frames`] frames resolved.
    FrameLimit,
    /// Not resolved: its file would have been the event's lookup past
    /// [`JsLimits::max_sourcemaps`].
    SourcemapLimit,
    /// Not resolved: the event's [`JsLimits::deadline`] had passed.
    Timeout,
}

impl FrameStatus {
    /// The value written into `data.sourcemap_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Symbolicated => "symbolicated",
            Self::MissingSourcemap => "missing_sourcemap",
            Self::InvalidSourcemap => "invalid_sourcemap",
            Self::InvalidLocation => "invalid_location",
            Self::TooLarge => "too_large",
            Self::FrameLimit => "frame_limit",
            Self::SourcemapLimit => "sourcemap_limit",
            Self::Timeout => "timeout",
        }
    }

    /// The bound that left the frame unresolved, as written into the event's `errors`.
    fn cut_off_reason(self) -> Option<&'static str> {
        match self {
            Self::FrameLimit => Some("too_many_frames"),
            Self::SourcemapLimit => Some("too_many_sourcemaps"),
            Self::Timeout => Some("timeout"),
            _ => None,
        }
    }
}

/// Bounds of one event's JavaScript symbolication; `Default` gives the documented values.
#[derive(Clone, Copy, Debug)]
pub struct JsLimits {
    /// Frames resolved per event; later frames get `frame_limit`. Within a stack trace the
    /// innermost (last) frames are preferred. Defaults to 250.
    pub max_frames: usize,
    /// Distinct minified files looked up per event (each may mean reading and building a
    /// map); frames of further files get `sourcemap_limit`. Also bounds the original source
    /// files read for context lines (frames past it are resolved without them). Defaults
    /// to 64.
    pub max_sourcemaps: usize,
    /// No frame is resolved after this instant; the rest get `timeout`. Checked between
    /// frames, so one map being built when it passes finishes first. Defaults to none.
    pub deadline: Option<Instant>,
}

impl Default for JsLimits {
    fn default() -> Self {
        Self {
            max_frames: 250,
            max_sourcemaps: 64,
            deadline: None,
        }
    }
}

/// Per-event counts, for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsStats {
    /// Frames considered (they have a file, `lineno` and `colno`).
    pub frames: usize,
    /// Frames resolved.
    pub symbolicated: usize,
    /// Frames whose file has no map.
    pub missing_sourcemap: usize,
    /// Frames whose map is broken or unreadable.
    pub invalid_sourcemap: usize,
    /// Frames outside what their map covers.
    pub invalid_location: usize,
    /// Frames whose minified file or map is over the size bound.
    pub too_large: usize,
    /// Frames left unresolved by a [`JsLimits`] bound.
    pub cut_off: usize,
}

impl JsStats {
    fn count(&mut self, status: FrameStatus) {
        self.frames += 1;
        match status {
            FrameStatus::Symbolicated => self.symbolicated += 1,
            FrameStatus::MissingSourcemap => self.missing_sourcemap += 1,
            FrameStatus::InvalidSourcemap => self.invalid_sourcemap += 1,
            FrameStatus::InvalidLocation => self.invalid_location += 1,
            FrameStatus::TooLarge => self.too_large += 1,
            FrameStatus::FrameLimit | FrameStatus::SourcemapLimit | FrameStatus::Timeout => {
                self.cut_off += 1
            }
        }
    }
}

const JS_PLATFORMS: [&str; 2] = ["javascript", "node"];

/// Whether an event should go through [`symbolicate_js_event`]: its `platform` is
/// `javascript` or `node`, or one of its frames says so.
pub fn is_javascript_event(event: &Value) -> bool {
    let is_js = |v: &Value| v.as_str().is_some_and(|p| JS_PLATFORMS.contains(&p));
    if event.get("platform").is_some_and(is_js) {
        return true;
    }
    let mut found = false;
    for_each_frames(event, &mut |frames: &Vec<Value>| {
        found |= frames.iter().any(|f| f.get("platform").is_some_and(is_js));
    });
    found
}

/// Resolves every JavaScript frame of `event` through `store` with the default
/// [`JsLimits`]; see [`symbolicate_js_event_within`].
pub fn symbolicate_js_event(event: &mut Value, store: &SourceMapStore) -> JsStats {
    symbolicate_js_event_within(event, store, &JsLimits::default())
}

/// Resolves every JavaScript frame of `event` through `store`, within `limits`, and rewrites it
/// in place (see the module documentation for the fields). Runs CPU-bound and blocking (file
/// reads, cache builds): call it on the symbolication threads, not on an async executor.
pub fn symbolicate_js_event_within(
    event: &mut Value,
    store: &SourceMapStore,
    limits: &JsLimits,
) -> JsStats {
    let debug_ids = debug_ids(event);
    let mut resolver = Resolver {
        store,
        limits: *limits,
        debug_ids,
        resolved: HashMap::new(),
        sources: HashMap::new(),
    };
    let mut stats = JsStats::default();
    let mut frames_left = limits.max_frames;
    let mut reasons = Vec::new();
    for_each_frames_mut(event, &mut |frames| {
        // When the frame budget runs out inside this stack trace, its outermost frames are
        // the ones left: the innermost are nearest the error.
        let candidates = frames
            .iter()
            .filter(|f| f.as_object().and_then(candidate).is_some())
            .count();
        let mut skip = candidates.saturating_sub(frames_left);
        // Frames are ordered caller first: the caller's token at its call site names the
        // function the next frame is in, when scopes are unknown.
        let mut caller_name: Option<String> = None;
        for frame in frames.iter_mut() {
            let Some(frame) = frame.as_object_mut() else {
                caller_name = None;
                continue;
            };
            let Some(found) = candidate(frame) else {
                caller_name = None;
                continue;
            };
            let (status, name) = if skip > 0 {
                skip -= 1;
                mark(frame, FrameStatus::FrameLimit);
                (FrameStatus::FrameLimit, None)
            } else {
                frames_left = frames_left.saturating_sub(1);
                symbolicate_frame(frame, found, &mut resolver, caller_name.take())
            };
            stats.count(status);
            if status.cut_off_reason().is_some() && !reasons.contains(&status) {
                reasons.push(status);
            }
            caller_name = name;
        }
    });
    note_cut_off(event, &reasons, limits);
    stats
}

/// Adds one `js_symbolication_cut_off` entry to the event's `errors` per bound that left
/// frames unresolved (`reasons` holds their statuses, once each).
fn note_cut_off(event: &mut Value, reasons: &[FrameStatus], limits: &JsLimits) {
    let Some(object) = event.as_object_mut() else {
        return;
    };
    if reasons.is_empty() {
        return;
    }
    let errors = object
        .entry("errors")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !errors.is_array() {
        *errors = Value::Array(Vec::new());
    }
    let errors = errors.as_array_mut().expect("just made an array");
    for status in reasons {
        let details = match status {
            FrameStatus::FrameLimit => format!("at most {} frames resolved", limits.max_frames),
            FrameStatus::SourcemapLimit => {
                format!("at most {} files looked up", limits.max_sourcemaps)
            }
            _ => "symbolication deadline passed".to_owned(),
        };
        errors.push(serde_json::json!({
            "type": "js_symbolication_cut_off",
            "reason": status.cut_off_reason(),
            "details": details,
        }));
    }
}

/// Why a file's map could not be used: the frame's status and `data.sourcemap_error`.
type Unusable = (FrameStatus, String);

struct Resolver<'a> {
    store: &'a SourceMapStore,
    limits: JsLimits,
    debug_ids: HashMap<String, String>,
    /// Per event: one lookup per file, shared by its frames; at most `limits.max_sourcemaps`.
    resolved: HashMap<String, Result<Option<ResolvedMap>, Unusable>>,
    /// Per event: original source files read from the artifacts.
    sources: HashMap<String, Option<Arc<str>>>,
}

impl Resolver<'_> {
    fn resolve(&mut self, abs_path: &str) -> Result<Option<ResolvedMap>, Unusable> {
        if let Some(found) = self.resolved.get(abs_path) {
            return found.clone();
        }
        if self.resolved.len() >= self.limits.max_sourcemaps {
            // Not remembered: the map stays full, so later frames of this file land here too.
            return Err((FrameStatus::SourcemapLimit, String::new()));
        }
        let debug_id = self
            .debug_ids
            .get(url::strip_query(abs_path))
            .map(String::as_str);
        let found = self.store.resolve(abs_path, debug_id).map_err(|error| {
            let status = match error {
                SourceMapError::TooLarge { .. } => FrameStatus::TooLarge,
                _ => FrameStatus::InvalidSourcemap,
            };
            (status, error.to_string())
        });
        self.resolved.insert(abs_path.to_owned(), found.clone());
        found
    }

    /// Context lines around 1-based `line` of the original file at `abs_path`, if the
    /// artifacts hold that file.
    fn context_from_artifact(&mut self, abs_path: &str, line: u32) -> Option<Context> {
        let store = self.store;
        if !self.sources.contains_key(abs_path) && self.sources.len() >= self.limits.max_sourcemaps
        {
            return None;
        }
        let text = self
            .sources
            .entry(abs_path.to_owned())
            .or_insert_with(|| store.original_source(abs_path))
            .clone()?;
        let lines: Vec<&str> = text.lines().collect();
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        let line = (*lines.get(index)?).to_owned();
        let to_string = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect();
        let post_end = (index + 1 + CONTEXT_LINES).min(lines.len());
        Some(Context {
            pre: to_string(&lines[index.saturating_sub(CONTEXT_LINES)..index]),
            line,
            post: to_string(&lines[index + 1..post_end]),
        })
    }
}

/// `code_file` → `debug_id` of the event's `debug_meta.images` of type `sourcemap`.
fn debug_ids(event: &Value) -> HashMap<String, String> {
    let images = event
        .pointer("/debug_meta/images")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    images
        .iter()
        .filter(|image| image.get("type").and_then(Value::as_str) == Some("sourcemap"))
        .filter_map(|image| {
            let code_file = image.get("code_file")?.as_str()?;
            let debug_id = image.get("debug_id")?.as_str()?;
            Some((url::strip_query(code_file).to_owned(), debug_id.to_owned()))
        })
        .collect()
}

/// The minified position of a frame to resolve.
struct Candidate {
    abs_path: String,
    lineno: u64,
    colno: u64,
}

/// The frame's minified position, if it is a frame to resolve: a JavaScript frame with a file,
/// `lineno` and `colno`, not of the engine itself, and not handled before.
fn candidate(frame: &Map<String, Value>) -> Option<Candidate> {
    if frame
        .get("data")
        .and_then(|d| d.get("sourcemap_status"))
        .is_some()
    {
        return None;
    }
    if let Some(platform) = frame.get("platform").and_then(Value::as_str) {
        if !JS_PLATFORMS.contains(&platform) {
            return None;
        }
    }
    let abs_path = frame
        .get("abs_path")
        .or_else(|| frame.get("filename"))
        .and_then(Value::as_str)?;
    let lineno = frame.get("lineno").and_then(Value::as_u64)?;
    let colno = frame.get("colno").and_then(Value::as_u64)?;
    if is_engine_internal(abs_path) {
        return None;
    }
    Some(Candidate {
        abs_path: abs_path.to_owned(),
        lineno,
        colno,
    })
}

/// Resolves one candidate frame: its status and the token name at its minified position
/// (for the next frame).
fn symbolicate_frame(
    frame: &mut Map<String, Value>,
    found: Candidate,
    resolver: &mut Resolver<'_>,
    caller_name: Option<String>,
) -> (FrameStatus, Option<String>) {
    let Candidate {
        abs_path,
        lineno,
        colno,
    } = found;
    if resolver
        .limits
        .deadline
        .is_some_and(|d| Instant::now() >= d)
    {
        mark(frame, FrameStatus::Timeout);
        return (FrameStatus::Timeout, None);
    }
    let resolved = match resolver.resolve(&abs_path) {
        Ok(Some(resolved)) => resolved,
        Ok(None) => {
            mark(frame, FrameStatus::MissingSourcemap);
            return (FrameStatus::MissingSourcemap, None);
        }
        Err((status, error)) => {
            if !error.is_empty() {
                data_mut(frame).insert("sourcemap_error".into(), error.into());
            }
            mark(frame, status);
            return (status, None);
        }
    };
    let location = u32::try_from(lineno)
        .ok()
        .zip(u32::try_from(colno).ok())
        .and_then(|(line, col)| resolved.view.lookup(line, col));
    let Some(location) = location else {
        set_map_info(frame, &resolved);
        mark(frame, FrameStatus::InvalidLocation);
        return (FrameStatus::InvalidLocation, None);
    };
    let abs_path = location
        .source
        .as_deref()
        .filter(|source| !source.is_empty())
        .map(|source| url::join(&resolved.sources_base, source));
    // Without `sourcesContent`, the original file may be in the artifacts itself.
    let context = match (&location.context, &abs_path) {
        (Some(context), _) => Some(context.clone()),
        (None, Some(abs_path)) => resolver.context_from_artifact(abs_path, location.line),
        (None, None) => None,
    };
    rewrite(frame, &resolved, &location, abs_path, context, caller_name);
    (FrameStatus::Symbolicated, location.name.clone())
}

/// Frames of the engine itself, which no source map covers.
fn is_engine_internal(abs_path: &str) -> bool {
    abs_path.is_empty()
        || abs_path.starts_with("node:")
        || abs_path.starts_with("internal/")
        || abs_path == "native"
        || abs_path == "<anonymous>"
        || abs_path.starts_with('<')
}

fn rewrite(
    frame: &mut Map<String, Value>,
    resolved: &ResolvedMap,
    location: &Location,
    abs_path: Option<String>,
    context: Option<Context>,
    caller_name: Option<String>,
) {
    let raw = |key: &str| frame.get(key).cloned();
    let raw_fields = [
        ("raw_abs_path", raw("abs_path")),
        ("raw_filename", raw("filename")),
        ("raw_lineno", raw("lineno")),
        ("raw_colno", raw("colno")),
    ];
    {
        let data = data_mut(frame);
        for (key, value) in raw_fields {
            if let Some(value) = value {
                data.insert(key.into(), value);
            }
        }
    }

    if let Some(abs_path) = abs_path {
        let filename = display_filename(&abs_path);
        if !frame.contains_key("module") {
            frame.insert("module".into(), module_name(&filename).into());
        }
        if !frame.contains_key("in_app") && abs_path.contains("/node_modules/") {
            frame.insert("in_app".into(), false.into());
        }
        frame.insert("abs_path".into(), abs_path.into());
        frame.insert("filename".into(), filename.into());
    }
    frame.insert("lineno".into(), location.line.into());
    frame.insert("colno".into(), location.col.into());

    let function = match &location.scope {
        Scope::Unknown => caller_name,
        _ => location.function().map(str::to_owned),
    };
    if let Some(function) = function {
        if let Some(minified) = frame.insert("function".into(), function.into()) {
            frame.insert("raw_function".into(), minified);
        }
    }

    frame.remove("pre_context");
    frame.remove("context_line");
    frame.remove("post_context");
    if let Some(context) = &context {
        let col = location.col as usize;
        let lines = |lines: &[String]| -> Value {
            lines
                .iter()
                .map(|l| trim_line(l, 0))
                .collect::<Vec<_>>()
                .into()
        };
        frame.insert("pre_context".into(), lines(&context.pre));
        frame.insert("context_line".into(), trim_line(&context.line, col).into());
        frame.insert("post_context".into(), lines(&context.post));
    }

    set_map_info(frame, resolved);
    mark(frame, FrameStatus::Symbolicated);
}

fn set_map_info(frame: &mut Map<String, Value>, resolved: &ResolvedMap) {
    let data = data_mut(frame);
    data.insert("sourcemap".into(), resolved.sourcemap_url.clone().into());
    data.insert("sourcemap_origin".into(), resolved.origin.clone().into());
    data.insert(
        "resolved_with".into(),
        resolved.resolved_with.as_str().into(),
    );
}

fn mark(frame: &mut Map<String, Value>, status: FrameStatus) {
    let data = data_mut(frame);
    data.insert("sourcemap_status".into(), status.as_str().into());
    data.insert(
        "symbolicated".into(),
        (status == FrameStatus::Symbolicated).into(),
    );
}

fn data_mut(frame: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let data = frame
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    data.as_object_mut().expect("just made an object")
}

/// Longest context line kept whole, in characters; longer ones are cut around the column.
const MAX_LINE_CHARS: usize = 150;
const SNIP_WINDOW: usize = 140;

/// Cuts a long line to a window around `col` (1-based; 0 = start), marking cuts `{snip}`.
fn trim_line(line: &str, col: usize) -> String {
    let len = line.chars().count();
    if len <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    let start = col
        .saturating_sub(SNIP_WINDOW / 2)
        .min(len.saturating_sub(SNIP_WINDOW));
    let end = (start + SNIP_WINDOW).min(len);
    let mut out = String::new();
    if start > 0 {
        out.push_str("{snip} ");
    }
    out.extend(line.chars().skip(start).take(end - start));
    if end < len {
        out.push_str(" {snip}");
    }
    out
}

fn for_each_frames(event: &Value, f: &mut dyn FnMut(&Vec<Value>)) {
    let mut visit = |stacktrace: Option<&Value>| {
        if let Some(frames) = stacktrace
            .and_then(|s| s.get("frames"))
            .and_then(Value::as_array)
        {
            f(frames);
        }
    };
    for container in ["exception", "threads"] {
        let values = match event.get(container) {
            Some(Value::Array(values)) => Some(values),
            Some(other) => other.get("values").and_then(Value::as_array),
            None => None,
        };
        for value in values.into_iter().flatten() {
            visit(value.get("stacktrace"));
        }
    }
    visit(event.get("stacktrace"));
}

fn for_each_frames_mut(event: &mut Value, f: &mut dyn FnMut(&mut Vec<Value>)) {
    let mut visit = |stacktrace: Option<&mut Value>| {
        if let Some(frames) = stacktrace
            .and_then(|s| s.get_mut("frames"))
            .and_then(Value::as_array_mut)
        {
            f(frames);
        }
    };
    for container in ["exception", "threads"] {
        let values = match event.get_mut(container) {
            Some(Value::Array(values)) => Some(values),
            Some(other) => other.get_mut("values").and_then(Value::as_array_mut),
            None => None,
        };
        for value in values.into_iter().flatten() {
            visit(value.get_mut("stacktrace"));
        }
    }
    visit(event.get_mut("stacktrace"));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn trims_long_lines_around_the_column() {
        let line: String = "abcdefghij".repeat(30);
        let trimmed = trim_line(&line, 150);
        assert!(trimmed.starts_with("{snip} "), "{trimmed}");
        assert!(trimmed.ends_with(" {snip}"), "{trimmed}");
        assert_eq!(trimmed.chars().count(), 140 + 14);
        assert_eq!(trim_line("short", 3), "short");
        assert!(trim_line(&line, 0).starts_with("abcdefghij"));
    }

    #[test]
    fn detects_javascript_events() {
        assert!(is_javascript_event(&json!({"platform": "node"})));
        assert!(!is_javascript_event(&json!({"platform": "python"})));
        assert!(is_javascript_event(&json!({
            "exception": {"values": [{"stacktrace": {"frames": [{"platform": "javascript"}]}}]}
        })));
    }

    #[test]
    fn without_artifacts_every_frame_is_missing_and_nothing_else_changes() {
        let store = SourceMapStore::with_options(None, None, Default::default()).unwrap();
        let mut event = json!({
            "exception": {"values": [{"stacktrace": {"frames": [
                {"abs_path": "node:internal/process", "lineno": 1, "colno": 1},
                {"abs_path": "http://x/app.min.js", "lineno": 1, "colno": 5, "function": "a"},
                {"filename": "app.min.js", "lineno": 1},
            ]}}]}
        });
        let before = event.clone();
        let stats = symbolicate_js_event(&mut event, &store);
        assert_eq!(
            stats,
            JsStats {
                frames: 1,
                missing_sourcemap: 1,
                ..Default::default()
            }
        );
        let frames = &event["exception"]["values"][0]["stacktrace"]["frames"];
        assert_eq!(
            frames[0],
            before["exception"]["values"][0]["stacktrace"]["frames"][0]
        );
        assert_eq!(frames[1]["data"]["sourcemap_status"], "missing_sourcemap");
        assert_eq!(frames[1]["data"]["symbolicated"], false);
        assert_eq!(frames[1]["function"], "a");
        assert!(frames[2].get("data").is_none());
        // A second pass leaves the frame alone.
        let once = event.clone();
        assert_eq!(symbolicate_js_event(&mut event, &store), JsStats::default());
        assert_eq!(event, once);
    }
}
