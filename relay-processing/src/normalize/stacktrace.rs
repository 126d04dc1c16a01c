//! Exceptions, stack traces and threads: the shapes consumers, grouping and symbolication
//! rely on.
//!
//! - `exception` becomes `{"values": [...]}` (a bare list or a single exception object is
//!   wrapped). Each exception is an object with a string `type` or `value` (or at least a
//!   stack trace); a non-string `value` is written as a string (objects as JSON). Exceptions
//!   that are not objects or carry nothing are dropped and noted.
//! - `threads` becomes `{"values": [...]}` the same way; threads that are not objects are
//!   dropped.
//! - Every stack trace (`exception.values[].stacktrace`/`raw_stacktrace`,
//!   `threads.values[].stacktrace`, top-level `stacktrace`) must be an object with a `frames`
//!   list. Frames keep the order the SDK sent (oldest call first, crashing frame last): the
//!   relay never reorders them. A frame is dropped and noted (`invalid_data` with its path)
//!   when it is not an object or has nothing that identifies code (`function`,
//!   `raw_function`, `symbol`, `module`, `package`, `filename`, `abs_path`,
//!   `instruction_addr`). Inside a kept frame, fields of the wrong type are removed and
//!   noted: string fields, `lineno`/`colno` (non-negative integers; digit strings are
//!   accepted), `in_app` (boolean), addresses (`instruction_addr`, `symbol_addr`,
//!   `image_addr`: canonical `0x…` hex; integers and decimal strings are accepted), `vars`
//!   (an object; a list becomes an object keyed by index), `pre_context`/`post_context`
//!   (lists of strings). A stack trace left with no frames is removed and noted.
//! - More than `max_frames` frames: the oldest half and the newest half are kept, and
//!   `frames_omitted: [start, end]` names the dropped range of the original list (the
//!   original count is also recorded in `_meta`).

use serde_json::{json, Map, Value};

use super::{add_note, trimming, NormalizeConfig};

/// Collected while walking, applied to the event afterwards.
#[derive(Default)]
struct Notes {
    errors: Vec<Value>,
    metas: Vec<(Vec<String>, Value)>,
}

impl Notes {
    fn invalid(&mut self, path: &str, value: Value) {
        self.errors
            .push(json!({"type": "invalid_data", "name": path, "value": value}));
    }
}

/// Normalizes `exception`, `threads` and `stacktrace` of an event object.
pub(crate) fn normalize(object: &mut Map<String, Value>, config: &NormalizeConfig) {
    let mut notes = Notes::default();

    if let Some(exception) = object.remove("exception") {
        if let Some(container) = values_container(exception, "exception", &mut notes) {
            let container = normalize_values(container, "exception", &mut notes, |v, path, n| {
                exception_value(v, path, n, config)
            });
            object.insert("exception".to_owned(), container);
        }
    }
    if let Some(threads) = object.remove("threads") {
        if let Some(container) = values_container(threads, "threads", &mut notes) {
            let container = normalize_values(container, "threads", &mut notes, |v, path, n| {
                thread_value(v, path, n, config)
            });
            object.insert("threads".to_owned(), container);
        }
    }
    stacktrace(object, "stacktrace", "", &mut notes, config);

    for error in notes.errors {
        add_note(object, error);
    }
    for (path, meta) in notes.metas {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        trimming::record_meta(object, &path, meta);
    }
}

/// `{"values": [...]}`, `[...]` or a single object → `{"values": [...], ...}`.
fn values_container(value: Value, name: &str, notes: &mut Notes) -> Option<Map<String, Value>> {
    match value {
        Value::Null => None,
        Value::Array(list) => {
            let mut map = Map::new();
            map.insert("values".to_owned(), Value::Array(list));
            Some(map)
        }
        Value::Object(map) if map.contains_key("values") => match map.get("values") {
            Some(Value::Array(_)) => Some(map),
            Some(Value::Null) => None,
            _ => {
                notes.invalid(name, Value::Object(map));
                None
            }
        },
        Value::Object(single) => {
            let mut map = Map::new();
            map.insert("values".to_owned(), json!([single]));
            Some(map)
        }
        other => {
            notes.invalid(name, other);
            None
        }
    }
}

fn normalize_values(
    mut container: Map<String, Value>,
    name: &str,
    notes: &mut Notes,
    mut each: impl FnMut(Value, &str, &mut Notes) -> Option<Value>,
) -> Value {
    let values = match container.remove("values") {
        Some(Value::Array(values)) => values,
        _ => Vec::new(),
    };
    let kept: Vec<Value> = values
        .into_iter()
        .enumerate()
        .filter_map(|(index, value)| each(value, &format!("{name}.values.{index}"), notes))
        .collect();
    container.insert("values".to_owned(), Value::Array(kept));
    Value::Object(container)
}

fn exception_value(
    value: Value,
    path: &str,
    notes: &mut Notes,
    config: &NormalizeConfig,
) -> Option<Value> {
    let Value::Object(mut exception) = value else {
        notes.invalid(path, value);
        return None;
    };
    string_field(&mut exception, "type", path, notes);
    string_field(&mut exception, "module", path, notes);
    match exception.get("value") {
        Some(Value::Null) => {
            exception.remove("value");
        }
        Some(Value::Number(n)) => {
            let text = n.to_string();
            exception.insert("value".to_owned(), json!(text));
        }
        Some(Value::Bool(b)) => {
            let text = b.to_string();
            exception.insert("value".to_owned(), json!(text));
        }
        Some(other @ (Value::Object(_) | Value::Array(_))) => {
            let text = other.to_string();
            exception.insert("value".to_owned(), json!(text));
        }
        Some(Value::String(_)) | None => {}
    }
    stacktrace(&mut exception, "stacktrace", path, notes, config);
    stacktrace(&mut exception, "raw_stacktrace", path, notes, config);
    let identified = ["type", "value", "stacktrace"]
        .iter()
        .any(|key| exception.contains_key(*key));
    if !identified {
        notes.invalid(path, Value::Object(exception));
        return None;
    }
    Some(Value::Object(exception))
}

fn thread_value(
    value: Value,
    path: &str,
    notes: &mut Notes,
    config: &NormalizeConfig,
) -> Option<Value> {
    let Value::Object(mut thread) = value else {
        notes.invalid(path, value);
        return None;
    };
    stacktrace(&mut thread, "stacktrace", path, notes, config);
    Some(Value::Object(thread))
}

/// Validates the stack trace at `parent[key]`, removing it when unusable.
fn stacktrace(
    parent: &mut Map<String, Value>,
    key: &str,
    parent_path: &str,
    notes: &mut Notes,
    config: &NormalizeConfig,
) {
    let path = join(parent_path, key);
    let Some(value) = parent.remove(key) else {
        return;
    };
    let mut st = match value {
        Value::Null => return,
        Value::Object(st) => st,
        other => {
            notes.invalid(&path, other);
            return;
        }
    };
    let frames = match st.remove("frames") {
        Some(Value::Array(frames)) => frames,
        other => {
            st.insert("frames".to_owned(), other.unwrap_or_default());
            notes.invalid(&path, Value::Object(st));
            return;
        }
    };
    let mut kept: Vec<Value> = frames
        .into_iter()
        .enumerate()
        .filter_map(|(index, f)| {
            if is_valid_frame(&f) {
                return Some(f);
            }
            frame(f, &format!("{path}.frames.{index}"), notes)
        })
        .collect();
    if kept.is_empty() {
        st.insert("frames".to_owned(), json!([]));
        notes.invalid(&path, Value::Object(st));
        return;
    }

    match st.get("frames_omitted") {
        None => {}
        Some(Value::Array(range))
            if range.len() == 2 && range.iter().all(|n| n.as_u64().is_some()) => {}
        Some(_) => {
            let invalid = st.remove("frames_omitted").unwrap_or_default();
            if !invalid.is_null() {
                notes.invalid(&format!("{path}.frames_omitted"), invalid);
            }
        }
    }
    if config.max_frames > 0 && kept.len() > config.max_frames {
        let original = kept.len();
        let head = config.max_frames / 2;
        let tail = config.max_frames - head;
        kept.drain(head..original - tail);
        st.insert("frames_omitted".to_owned(), json!([head, original - tail]));
        let meta_path: Vec<String> = path
            .split('.')
            .map(str::to_owned)
            .chain(["frames".to_owned()])
            .collect();
        notes.metas.push((meta_path, json!({"len": original})));
    }
    st.insert("frames".to_owned(), Value::Array(kept));
    parent.insert(key.to_owned(), Value::Object(st));
}

const FRAME_STRINGS: [&str; 10] = [
    "function",
    "raw_function",
    "symbol",
    "module",
    "package",
    "filename",
    "abs_path",
    "platform",
    "context_line",
    "trust",
];
/// Frame fields that must be non-negative integers.
const FRAME_LINE_NUMBERS: [&str; 2] = ["lineno", "colno"];
/// Frame fields holding addresses, written as `0x` and lowercase hex.
const FRAME_ADDRESSES: [&str; 3] = ["instruction_addr", "symbol_addr", "image_addr"];
/// Frame fields holding source lines around the frame's line.
const FRAME_CONTEXT_LINES: [&str; 2] = ["pre_context", "post_context"];
const FRAME_IDENTITY: [&str; 8] = [
    "function",
    "raw_function",
    "symbol",
    "module",
    "package",
    "filename",
    "abs_path",
    "instruction_addr",
];

fn frame(value: Value, path: &str, notes: &mut Notes) -> Option<Value> {
    let Value::Object(mut frame) = value else {
        notes.invalid(path, value);
        return None;
    };
    for key in FRAME_STRINGS {
        string_field(&mut frame, key, path, notes);
    }
    for key in FRAME_LINE_NUMBERS {
        fix_field(&mut frame, key, path, notes, |v| match v {
            Value::Number(n) if n.is_u64() => Fix::Keep,
            Value::Number(n) => n
                .as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map_or(Fix::Invalid, |f| Fix::Replace(json!(f as u64))),
            Value::String(s) => s
                .trim()
                .parse::<u64>()
                .map_or(Fix::Invalid, |n| Fix::Replace(json!(n))),
            _ => Fix::Invalid,
        });
    }
    fix_field(&mut frame, "in_app", path, notes, |v| {
        if v.is_boolean() {
            Fix::Keep
        } else {
            Fix::Invalid
        }
    });
    for key in FRAME_ADDRESSES {
        fix_field(&mut frame, key, path, notes, |v| {
            let addr = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => parse_addr(s.trim()),
                _ => None,
            };
            match addr {
                Some(a) => Fix::same_or(v, json!(format!("0x{a:x}"))),
                None => Fix::Invalid,
            }
        });
    }
    fix_field(&mut frame, "vars", path, notes, |v| match v {
        Value::Object(_) => Fix::Keep,
        Value::Array(items) => Fix::Replace(Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (i.to_string(), item.clone()))
                .collect(),
        )),
        _ => Fix::Invalid,
    });
    for key in FRAME_CONTEXT_LINES {
        fix_field(&mut frame, key, path, notes, |v| {
            let Some(lines) = v.as_array() else {
                return Fix::Invalid;
            };
            if lines.iter().all(Value::is_string) {
                return Fix::Keep;
            }
            lines
                .iter()
                .map(|line| match line {
                    Value::String(_) => Some(line.clone()),
                    Value::Null => Some(json!("")),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map_or(Fix::Invalid, |lines| Fix::Replace(Value::Array(lines)))
        });
    }
    if !FRAME_IDENTITY.iter().any(|key| frame.contains_key(*key)) {
        notes.invalid(path, Value::Object(frame));
        return None;
    }
    Some(Value::Object(frame))
}

/// Whether [`frame`] would keep `value` exactly as it is, told in one pass over the frame's
/// fields: `frame` looks up each of the 19 keys its rules cover. Most frames arrive valid.
fn is_valid_frame(value: &Value) -> bool {
    let Value::Object(frame) = value else {
        return false;
    };
    let mut identified = false;
    for (key, value) in frame {
        let key = key.as_str();
        if !is_valid_frame_field(key, value) {
            return false;
        }
        identified |= FRAME_IDENTITY.contains(&key);
    }
    identified
}

/// [`frame`]'s rules, read-only: whether they keep `value` under `key` as it is.
fn is_valid_frame_field(key: &str, value: &Value) -> bool {
    if FRAME_STRINGS.contains(&key) {
        value.is_string()
    } else if FRAME_LINE_NUMBERS.contains(&key) {
        value.is_u64()
    } else if FRAME_ADDRESSES.contains(&key) {
        value.as_str().is_some_and(is_canonical_addr)
    } else if FRAME_CONTEXT_LINES.contains(&key) {
        value
            .as_array()
            .is_some_and(|lines| lines.iter().all(Value::is_string))
    } else {
        match key {
            "in_app" => value.is_boolean(),
            "vars" => value.is_object(),
            _ => true,
        }
    }
}

/// The form [`frame`] writes addresses in: `0x`, then lowercase hex digits without leading
/// zeros, at most 16.
fn is_canonical_addr(addr: &str) -> bool {
    addr.strip_prefix("0x").is_some_and(|hex| {
        (1..=16).contains(&hex.len())
            && (hex == "0" || !hex.starts_with('0'))
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn parse_addr(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A field that must be a string: `null` is removed silently, other types with a note.
fn string_field(object: &mut Map<String, Value>, key: &str, path: &str, notes: &mut Notes) {
    fix_field(object, key, path, notes, |v| {
        if v.is_string() {
            Fix::Keep
        } else {
            Fix::Invalid
        }
    });
}

/// What [`fix_field`] does with a field's value. Most values are already valid: `Keep` leaves
/// them in place without the clone and comparison a replacement would cost.
enum Fix {
    /// The value is valid as it is.
    Keep,
    /// The value is valid in another form.
    Replace(Value),
    /// The value is invalid: removed, with a note.
    Invalid,
}

impl Fix {
    /// `Keep` when `fixed` equals `value`, else `Replace(fixed)`.
    fn same_or(value: &Value, fixed: Value) -> Fix {
        if &fixed == value {
            Fix::Keep
        } else {
            Fix::Replace(fixed)
        }
    }
}

/// Applies `fix` to `object[key]`; `null` is removed silently.
fn fix_field(
    object: &mut Map<String, Value>,
    key: &str,
    path: &str,
    notes: &mut Notes,
    fix: impl FnOnce(&Value) -> Fix,
) {
    let Some(value) = object.get(key) else {
        return;
    };
    if value.is_null() {
        object.remove(key);
        return;
    }
    match fix(value) {
        Fix::Keep => {}
        Fix::Replace(fixed) => {
            object.insert(key.to_owned(), fixed);
        }
        Fix::Invalid => {
            let invalid = object.remove(key).unwrap_or_default();
            notes.invalid(&join(path, key), invalid);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::test_rng::TestRng;

    fn run(event: Value) -> Value {
        on_object(event, |o| normalize(o, &NormalizeConfig::default()))
    }

    /// Frames made of every key the rules cover (and others), each with values that are
    /// valid, fixable, invalid or null for some rule.
    fn generated_frames() -> Vec<Value> {
        let keys: Vec<&str> = FRAME_STRINGS
            .iter()
            .chain(&FRAME_IDENTITY)
            .copied()
            .chain(FRAME_LINE_NUMBERS)
            .chain(FRAME_ADDRESSES)
            .chain(FRAME_CONTEXT_LINES)
            .chain(["in_app", "vars", "data", "addr_mode"])
            .collect();
        let values = [
            json!("main"),
            json!(""),
            json!(12),
            json!(-3),
            json!(2.0),
            json!(2.5),
            json!("17"),
            json!(null),
            json!(true),
            json!({"a": 1}),
            json!(["x", "y"]),
            json!(["x", null]),
            json!([1]),
            json!("0x1a"),
            json!("0x01a"),
            json!("0x1A"),
            json!("0X1a"),
            json!("0x0"),
            json!("0x"),
            json!("0x+1a"),
            json!("0xffffffffffffffff"),
            json!("0x10000000000000000"),
            json!(" 0x1a"),
        ];
        let mut rng = TestRng::new(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n);
        (0..20_000)
            .map(|_| {
                let mut frame = Map::new();
                for _ in 0..=next(5) {
                    let key = keys[next(keys.len())];
                    // Mostly values valid for the key, so that valid frames are common.
                    let value = match (next(3), key) {
                        (0, _) => values[next(values.len())].clone(),
                        (_, k) if FRAME_LINE_NUMBERS.contains(&k) => json!(7),
                        (_, "in_app") => json!(false),
                        (_, k) if FRAME_ADDRESSES.contains(&k) => json!("0x1a"),
                        (_, "vars") => json!({}),
                        (_, k) if FRAME_CONTEXT_LINES.contains(&k) => json!(["a"]),
                        _ => json!("f"),
                    };
                    frame.insert(key.to_owned(), value);
                }
                Value::Object(frame)
            })
            .collect()
    }

    #[test]
    fn valid_frame_shortcut_agrees_with_the_rules() {
        let mut valid = 0;
        for generated in generated_frames() {
            let mut notes = Notes::default();
            let kept = frame(generated.clone(), "f", &mut notes);
            let unchanged = kept.as_ref() == Some(&generated) && notes.errors.is_empty();
            assert_eq!(is_valid_frame(&generated), unchanged, "{generated}");
            valid += usize::from(unchanged);
        }
        assert!(valid > 2_000, "valid frames: {valid}");
    }

    #[test]
    fn legacy_list_and_single_object_are_wrapped() {
        let event = run(json!({"exception": [{"type": "E", "value": "v"}]}));
        assert_eq!(
            event["exception"],
            json!({"values": [{"type": "E", "value": "v"}]})
        );
        let event = run(json!({"exception": {"type": "E"}, "threads": [{"id": 1}]}));
        assert_eq!(event["exception"], json!({"values": [{"type": "E"}]}));
        assert_eq!(event["threads"], json!({"values": [{"id": 1}]}));
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn empty_and_invalid_exceptions_are_dropped_and_noted() {
        let event = run(json!({"exception": {"values": [
            {"type": "ValueError", "value": {"code": 3}},
            "boom",
            {"mechanism": {"type": "generic"}},
            {"value": 12},
        ]}}));
        let values = &event["exception"]["values"];
        assert_eq!(values.as_array().unwrap().len(), 2);
        assert_eq!(values[0]["value"], r#"{"code":3}"#);
        assert_eq!(values[1]["value"], "12");
        assert_eq!(
            note_names(&event),
            ["exception.values.1", "exception.values.2"]
        );
    }

    #[test]
    fn bad_frames_are_dropped_and_order_is_kept() {
        let event = run(
            json!({"exception": {"values": [{"type": "E", "stacktrace": {"frames": [
                {"function": "main", "lineno": 10},
                {"lineno": 3, "colno": 4},
                7,
                {"function": "inner", "lineno": "12", "colno": -1, "in_app": "yes", "instruction_addr": 4096},
            ]}}]}}),
        );
        let frames = &event["exception"]["values"][0]["stacktrace"]["frames"];
        assert_eq!(
            *frames,
            json!([
                {"function": "main", "lineno": 10},
                {"function": "inner", "lineno": 12, "instruction_addr": "0x1000"},
            ])
        );
        let base = "exception.values.0.stacktrace.frames";
        assert_eq!(
            note_names(&event),
            [
                format!("{base}.1"),
                format!("{base}.2"),
                format!("{base}.3.colno"),
                format!("{base}.3.in_app"),
            ]
        );
    }

    #[test]
    fn stacktrace_without_frames_is_removed() {
        let event = run(json!({
            "exception": {"values": [{"type": "E", "stacktrace": {"frames": [{}]}}]},
            "stacktrace": {"frames": "none"},
        }));
        assert!(event["exception"]["values"][0].get("stacktrace").is_none());
        assert!(event.get("stacktrace").is_none());
        assert_eq!(
            note_names(&event),
            [
                "exception.values.0.stacktrace.frames.0",
                "exception.values.0.stacktrace",
                "stacktrace"
            ]
        );
    }

    #[test]
    fn frame_fields_are_canonicalized() {
        let event = run(
            json!({"threads": {"values": [{"id": 1, "stacktrace": {"frames": [{
                "function": "f", "symbol_addr": "0X10", "image_addr": "4096",
                "vars": ["a", "b"], "pre_context": ["x", null], "module": 3,
            }]}}]}}),
        );
        let frame = &event["threads"]["values"][0]["stacktrace"]["frames"][0];
        assert_eq!(frame["symbol_addr"], "0x10");
        assert_eq!(frame["image_addr"], "0x1000");
        assert_eq!(frame["vars"], json!({"0": "a", "1": "b"}));
        assert_eq!(frame["pre_context"], json!(["x", ""]));
        assert!(frame.get("module").is_none());
        assert_eq!(
            note_names(&event),
            ["threads.values.0.stacktrace.frames.0.module"]
        );
    }

    #[test]
    fn long_stacks_keep_both_ends() {
        let frames: Vec<Value> = (0..300)
            .map(|i| json!({"function": format!("f{i}")}))
            .collect();
        let event = run(json!({"stacktrace": {"frames": frames}}));
        let kept = event["stacktrace"]["frames"].as_array().unwrap();
        assert_eq!(kept.len(), 250);
        assert_eq!(kept[0]["function"], "f0");
        assert_eq!(kept[124]["function"], "f124");
        assert_eq!(kept[125]["function"], "f175");
        assert_eq!(kept[249]["function"], "f299");
        assert_eq!(event["stacktrace"]["frames_omitted"], json!([125, 175]));
        assert_eq!(event["_meta"]["stacktrace"]["frames"][""]["len"], 300);
    }
}
