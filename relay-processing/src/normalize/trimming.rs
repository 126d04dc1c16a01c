//! Trimming of oversized values, with the original sizes recorded in `_meta`.
//!
//! The event's `_meta` object mirrors the event's structure (list indexes become keys); the
//! entry for a trimmed value sits under the key `""` at its path, as in Sentry's protocol:
//!
//! ```json
//! {"extra": {"blob": "xxxx..."},
//!  "_meta": {"extra": {"blob": {"": {"len": 100000, "rem": [["!limit", "s", 8189, 8192]]}}}}}
//! ```
//!
//! - `len` is the original length: characters for a string, items for a list or object.
//! - `rem` says what was removed: `["!limit", "s", start, end]` for a cut string (the
//!   replacement `...` spans `start..end` of the new value), `["!limit", "x"]` for a value
//!   removed entirely.
//!
//! Rules, in order:
//!
//! 1. Breadcrumbs: at most `max_breadcrumbs`, the latest ones (`_meta` at
//!    `breadcrumbs.values`). Likewise, so that no list of the event is wider than the SDKs
//!    ever send: at most `max_exceptions` of `exception.values` (the last ones, the last
//!    being the one raised), `max_threads` of `threads.values` (crashed and current ones
//!    always, then the first others), `max_tags` tags (the first) and `max_contexts` entries
//!    of `contexts` (the first in key order).
//! 2. Databags (`extra`, each entry of `contexts`, `request.data`, `request.env`,
//!    `user.data`, breadcrumb and span `data`, frame `vars`): containers nested deeper than
//!    `max_databag_depth` become `null`; once a databag has used `max_databag_size` bytes of
//!    JSON, its remaining entries are removed (the container's `len` is recorded).
//! 3. Strings anywhere in the event longer than `max_string_length` characters are cut to
//!    that length, ending in `...`.

use serde_json::{json, Map, Value};

use super::NormalizeConfig;

const ELLIPSIS: &str = "...";

/// A `_meta` entry to write: the path of the value and the entry for its `""` key.
type Meta = (Vec<String>, Value);

/// Applies the three rules of the module documentation to an event object.
pub(crate) fn trim_event(object: &mut Map<String, Value>, config: &NormalizeConfig) {
    let mut metas = Vec::new();
    trim_breadcrumbs(object, config, &mut metas);
    trim_breadth(object, config, &mut metas);
    for_each_databag(object, &mut |path, bag| {
        let mut budget = config.max_databag_size;
        trim_databag(bag, &Path::root(path), 0, &mut budget, config, &mut metas);
    });
    for (key, value) in object.iter_mut() {
        if key != "_meta" {
            let path = Path::key(None, key);
            trim_strings(value, &path, config.max_string_length, &mut metas);
        }
    }
    for (path, meta) in metas {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        record_meta(object, &path, meta);
    }
}

/// Writes `entry` under `_meta.<path>.""` of an event object. An existing entry keeps its
/// `len` (the value's original size) and gains the new `rem` items.
pub(crate) fn record_meta(object: &mut Map<String, Value>, path: &[&str], entry: Value) {
    let mut node = object.entry("_meta").or_insert_with(|| json!({}));
    if !node.is_object() {
        *node = json!({});
    }
    for segment in path {
        let map = node.as_object_mut().expect("meta nodes are objects");
        node = map.entry(*segment).or_insert_with(|| json!({}));
        if !node.is_object() {
            *node = json!({});
        }
    }
    let map = node.as_object_mut().expect("meta nodes are objects");
    match map.get_mut("") {
        Some(Value::Object(existing)) => {
            let Value::Object(entry) = entry else {
                return;
            };
            for (key, value) in entry {
                match (key.as_str(), existing.get_mut(&key)) {
                    ("rem", Some(Value::Array(rem))) => {
                        if let Value::Array(more) = value {
                            rem.extend(more);
                        }
                    }
                    (_, Some(_)) => {}
                    (_, None) => {
                        existing.insert(key, value);
                    }
                }
            }
        }
        _ => {
            map.insert(String::new(), entry);
        }
    }
}

fn trim_breadcrumbs(
    object: &mut Map<String, Value>,
    config: &NormalizeConfig,
    metas: &mut Vec<Meta>,
) {
    let (list, path) = match object.get_mut("breadcrumbs") {
        Some(Value::Object(crumbs)) => match crumbs.get_mut("values") {
            Some(Value::Array(list)) => (list, vec!["breadcrumbs".to_owned(), "values".to_owned()]),
            _ => return,
        },
        Some(Value::Array(list)) => (list, vec!["breadcrumbs".to_owned()]),
        _ => return,
    };
    if list.len() > config.max_breadcrumbs {
        let original = list.len();
        list.drain(..original - config.max_breadcrumbs);
        metas.push((path, json!({"len": original})));
    }
}

/// Bounds the number of exceptions, threads, tags and contexts (rule 1).
fn trim_breadth(object: &mut Map<String, Value>, config: &NormalizeConfig, metas: &mut Vec<Meta>) {
    if let Some((list, path)) = values_list(object, "exception") {
        if list.len() > config.max_exceptions {
            let original = list.len();
            list.drain(..original - config.max_exceptions);
            metas.push((path, json!({"len": original})));
        }
    }
    if let Some((list, path)) = values_list(object, "threads") {
        if list.len() > config.max_threads {
            let original = list.len();
            let flagged = |thread: &Value| {
                let flag = |key: &str| thread.get(key).and_then(Value::as_bool) == Some(true);
                flag("crashed") || flag("current")
            };
            // Crashed and current threads are few; the others fill the rest of the bound.
            let mut others_left = config
                .max_threads
                .saturating_sub(list.iter().filter(|t| flagged(t)).count());
            list.retain(|thread| {
                if flagged(thread) {
                    return true;
                }
                let keep = others_left > 0;
                others_left = others_left.saturating_sub(1);
                keep
            });
            // Should the flagged ones alone exceed the bound, the end is cut.
            list.truncate(config.max_threads);
            metas.push((path, json!({"len": original})));
        }
    }
    for (key, max) in [("tags", config.max_tags), ("contexts", config.max_contexts)] {
        let original = match object.get_mut(key) {
            Some(Value::Array(list)) if list.len() > max => {
                let original = list.len();
                list.truncate(max);
                original
            }
            Some(Value::Object(map)) if map.len() > max => {
                let original = map.len();
                let kept: Map<String, Value> = std::mem::take(map).into_iter().take(max).collect();
                *map = kept;
                original
            }
            _ => continue,
        };
        metas.push((vec![key.to_owned()], json!({"len": original})));
    }
}

/// The list of `exception`/`threads` (`{"values": [...]}` or a bare list) and its path.
fn values_list<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> Option<(&'a mut Vec<Value>, Vec<String>)> {
    match object.get_mut(key)? {
        Value::Object(container) => match container.get_mut("values") {
            Some(Value::Array(list)) => Some((list, vec![key.to_owned(), "values".to_owned()])),
            _ => None,
        },
        Value::Array(list) => Some((list, vec![key.to_owned()])),
        _ => None,
    }
}

/// Calls `f` with the path and value of every databag of the event.
fn for_each_databag(object: &mut Map<String, Value>, f: &mut dyn FnMut(&[String], &mut Value)) {
    let p = |parts: &[&str]| parts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    if let Some(extra) = object.get_mut("extra") {
        f(&p(&["extra"]), extra);
    }
    if let Some(Value::Object(contexts)) = object.get_mut("contexts") {
        for (name, context) in contexts.iter_mut() {
            f(&p(&["contexts", name]), context);
        }
    }
    if let Some(Value::Object(request)) = object.get_mut("request") {
        for key in ["data", "env"] {
            if let Some(bag) = request.get_mut(key) {
                f(&p(&["request", key]), bag);
            }
        }
    }
    if let Some(data) = object.get_mut("user").and_then(|u| u.get_mut("data")) {
        f(&p(&["user", "data"]), data);
    }
    for (list_key, prefix) in [("breadcrumbs", "breadcrumbs"), ("spans", "spans")] {
        let (list, mut base) = match object.get_mut(list_key) {
            Some(Value::Object(container)) => match container.get_mut("values") {
                Some(Value::Array(list)) => (list, p(&[prefix, "values"])),
                _ => continue,
            },
            Some(Value::Array(list)) => (list, p(&[prefix])),
            _ => continue,
        };
        for (index, item) in list.iter_mut().enumerate() {
            if let Some(data) = item.get_mut("data") {
                base.push(index.to_string());
                base.push("data".to_owned());
                f(&base, data);
                base.truncate(base.len() - 2);
            }
        }
    }
    // Frame variables of every stack trace.
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "exception" | "threads" => {
                let Some(Value::Array(values)) = value.get_mut("values") else {
                    continue;
                };
                for (index, value) in values.iter_mut().enumerate() {
                    for st_key in ["stacktrace", "raw_stacktrace"] {
                        if let Some(st) = value.get_mut(st_key) {
                            let base = p(&[key, "values", &index.to_string(), st_key]);
                            frame_vars(st, base, f);
                        }
                    }
                }
            }
            "stacktrace" => frame_vars(value, p(&["stacktrace"]), f),
            _ => {}
        }
    }
}

fn frame_vars(
    stacktrace: &mut Value,
    mut base: Vec<String>,
    f: &mut dyn FnMut(&[String], &mut Value),
) {
    if let Some(Value::Array(frames)) = stacktrace.get_mut("frames") {
        base.push("frames".to_owned());
        for (index, frame) in frames.iter_mut().enumerate() {
            if let Some(vars) = frame.get_mut("vars") {
                base.push(index.to_string());
                base.push("vars".to_owned());
                f(&base, vars);
                base.truncate(base.len() - 2);
            }
        }
    }
}

/// Approximate JSON size of a scalar, in bytes.
fn scalar_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len() + 2,
        Value::Array(_) | Value::Object(_) => 2,
    }
}

/// Where a value sits in the event: a chain of segments on the stack, turned into strings only
/// when a value is trimmed and needs a `_meta` entry, so walking an event that needs no
/// trimming allocates nothing.
struct Path<'a> {
    segment: Segment<'a>,
    parent: Option<&'a Path<'a>>,
}

enum Segment<'a> {
    /// The path of a databag, as `for_each_databag` names it.
    Prefix(&'a [String]),
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    fn root(prefix: &'a [String]) -> Self {
        Path {
            segment: Segment::Prefix(prefix),
            parent: None,
        }
    }

    fn key(parent: Option<&'a Path<'a>>, key: &'a str) -> Self {
        Path {
            segment: Segment::Key(key),
            parent,
        }
    }

    fn index(parent: &'a Path<'a>, index: usize) -> Self {
        Path {
            segment: Segment::Index(index),
            parent: Some(parent),
        }
    }

    fn to_strings(&self) -> Vec<String> {
        let mut chain = vec![self];
        while let Some(parent) = chain.last().and_then(|node| node.parent) {
            chain.push(parent);
        }
        let mut strings = Vec::new();
        for node in chain.into_iter().rev() {
            match node.segment {
                Segment::Prefix(prefix) => strings.extend_from_slice(prefix),
                Segment::Key(key) => strings.push(key.to_owned()),
                Segment::Index(index) => strings.push(index.to_string()),
            }
        }
        strings
    }
}

fn trim_databag(
    value: &mut Value,
    path: &Path<'_>,
    depth: usize,
    budget: &mut usize,
    config: &NormalizeConfig,
    metas: &mut Vec<Meta>,
) {
    match value {
        Value::String(s) => {
            let limit = config
                .max_string_length
                .min(budget.saturating_sub(2))
                .max(ELLIPSIS.len());
            trim_string(s, path, limit, metas);
            *budget = budget.saturating_sub(s.len() + 2);
        }
        Value::Object(map) => {
            if depth >= config.max_databag_depth && !map.is_empty() {
                metas.push((
                    path.to_strings(),
                    json!({"len": map.len(), "rem": [["!limit", "x"]]}),
                ));
                *value = Value::Null;
                *budget = budget.saturating_sub(4);
                return;
            }
            *budget = budget.saturating_sub(2);
            let original = map.len();
            let mut kept = 0;
            for (key, item) in map.iter_mut() {
                if *budget == 0 {
                    break;
                }
                *budget = budget.saturating_sub(key.len() + 4);
                trim_databag(
                    item,
                    &Path::key(Some(path), key),
                    depth + 1,
                    budget,
                    config,
                    metas,
                );
                kept += 1;
            }
            if kept < original {
                let over: Vec<String> = map.keys().skip(kept).cloned().collect();
                for key in &over {
                    map.remove(key);
                }
                metas.push((path.to_strings(), json!({"len": original})));
            }
        }
        Value::Array(items) => {
            if depth >= config.max_databag_depth && !items.is_empty() {
                metas.push((
                    path.to_strings(),
                    json!({"len": items.len(), "rem": [["!limit", "x"]]}),
                ));
                *value = Value::Null;
                *budget = budget.saturating_sub(4);
                return;
            }
            *budget = budget.saturating_sub(2);
            let original = items.len();
            let mut kept = 0;
            for (index, item) in items.iter_mut().enumerate() {
                if *budget == 0 {
                    break;
                }
                *budget = budget.saturating_sub(1);
                trim_databag(
                    item,
                    &Path::index(path, index),
                    depth + 1,
                    budget,
                    config,
                    metas,
                );
                kept += 1;
            }
            if kept < original {
                items.truncate(kept);
                metas.push((path.to_strings(), json!({"len": original})));
            }
        }
        scalar => *budget = budget.saturating_sub(scalar_size(scalar)),
    }
}

fn trim_strings(value: &mut Value, path: &Path<'_>, limit: usize, metas: &mut Vec<Meta>) {
    match value {
        Value::String(s) => trim_string(s, path, limit, metas),
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                trim_strings(item, &Path::index(path, index), limit, metas);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                trim_strings(item, &Path::key(Some(path), key), limit, metas);
            }
        }
        _ => {}
    }
}

/// Cuts `s` to `limit` characters ending in `...` and records its original length.
fn trim_string(s: &mut String, path: &Path<'_>, limit: usize, metas: &mut Vec<Meta>) {
    if s.len() <= limit {
        return;
    }
    let length = s.chars().count();
    if length <= limit {
        return;
    }
    let keep = limit.saturating_sub(ELLIPSIS.len());
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(cut);
    s.push_str(ELLIPSIS);
    metas.push((
        path.to_strings(),
        json!({"len": length, "rem": [["!limit", "s", keep, keep + ELLIPSIS.len()]]}),
    ));
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn run(event: Value, config: NormalizeConfig) -> Value {
        on_object(event, |o| trim_event(o, &config))
    }

    /// The databag walk as it was written first: it rebuilds every container and clones its
    /// path at every step. The walk above trims in place with a path built only on demand;
    /// both must give the same bag, the same `_meta` entries and the same remaining budget.
    fn reference_trim_databag(
        value: &mut Value,
        path: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
        config: &NormalizeConfig,
        metas: &mut Vec<Meta>,
    ) {
        let cut = |s: &mut String, path: &[String], limit: usize, metas: &mut Vec<Meta>| {
            let length = s.chars().count();
            if length > limit {
                let keep = limit.saturating_sub(ELLIPSIS.len());
                let at = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
                s.truncate(at);
                s.push_str(ELLIPSIS);
                metas.push((
                    path.to_vec(),
                    json!({"len": length, "rem": [["!limit", "s", keep, keep + ELLIPSIS.len()]]}),
                ));
            }
        };
        match value {
            Value::String(s) => {
                let limit = config
                    .max_string_length
                    .min(budget.saturating_sub(2))
                    .max(ELLIPSIS.len());
                cut(s, path, limit, metas);
                *budget = budget.saturating_sub(s.len() + 2);
            }
            Value::Object(map) => {
                if depth >= config.max_databag_depth && !map.is_empty() {
                    metas.push((
                        path.clone(),
                        json!({"len": map.len(), "rem": [["!limit", "x"]]}),
                    ));
                    *value = Value::Null;
                    *budget = budget.saturating_sub(4);
                    return;
                }
                *budget = budget.saturating_sub(2);
                let original = map.len();
                let mut kept = Map::new();
                for (key, mut item) in std::mem::take(map) {
                    if *budget == 0 {
                        break;
                    }
                    *budget = budget.saturating_sub(key.len() + 4);
                    path.push(key.clone());
                    reference_trim_databag(&mut item, path, depth + 1, budget, config, metas);
                    path.pop();
                    kept.insert(key, item);
                }
                if kept.len() < original {
                    metas.push((path.clone(), json!({"len": original})));
                }
                *map = kept;
            }
            Value::Array(items) => {
                if depth >= config.max_databag_depth && !items.is_empty() {
                    metas.push((
                        path.clone(),
                        json!({"len": items.len(), "rem": [["!limit", "x"]]}),
                    ));
                    *value = Value::Null;
                    *budget = budget.saturating_sub(4);
                    return;
                }
                *budget = budget.saturating_sub(2);
                let original = items.len();
                let mut kept = Vec::new();
                for (index, mut item) in std::mem::take(items).into_iter().enumerate() {
                    if *budget == 0 {
                        break;
                    }
                    *budget = budget.saturating_sub(1);
                    path.push(index.to_string());
                    reference_trim_databag(&mut item, path, depth + 1, budget, config, metas);
                    path.pop();
                    kept.push(item);
                }
                if kept.len() < original {
                    metas.push((path.clone(), json!({"len": original})));
                }
                *items = kept;
            }
            scalar => *budget = budget.saturating_sub(scalar_size(scalar)),
        }
    }

    /// Trimming in place agrees with the first, rebuilding walk on bags of every shape around
    /// the size, depth and string limits, including the bags it leaves untouched.
    #[test]
    fn databag_trimming_agrees_with_the_rebuilding_walk() {
        let config = NormalizeConfig {
            max_databag_size: 60,
            max_databag_depth: 3,
            max_string_length: 12,
            ..NormalizeConfig::default()
        };
        let mut bags = Vec::new();
        for n in 0..14 {
            bags.push(json!({"k": "v".repeat(n)}));
            bags.push(json!({"k": "é".repeat(n)}));
            bags.push(json!((0..n).map(|i| json!(i)).collect::<Vec<_>>()));
            bags.push(json!((0..n)
                .map(|i| (format!("key{i}"), json!(i * 1000)))
                .collect::<Map<_, _>>()));
            bags.push(
                json!({"a": {"b": {"c": (0..n % 3).collect::<Vec<_>>()}}, "n": null, "t": true}),
            );
            bags.push(json!(["x".repeat(n * 4), false, 1.5, {"d": [n]}]));
        }
        let prefix = vec!["extra".to_owned()];
        let mut untouched = 0;
        for bag in bags {
            let (mut trimmed, mut metas, mut budget) = (bag.clone(), Vec::new(), 60);
            trim_databag(
                &mut trimmed,
                &Path::root(&prefix),
                0,
                &mut budget,
                &config,
                &mut metas,
            );
            let (mut expected, mut expected_metas, mut expected_budget) =
                (bag.clone(), Vec::new(), 60);
            reference_trim_databag(
                &mut expected,
                &mut prefix.clone(),
                0,
                &mut expected_budget,
                &config,
                &mut expected_metas,
            );
            assert_eq!(trimmed, expected, "{bag}");
            assert_eq!(metas, expected_metas, "{bag}");
            assert_eq!(budget, expected_budget, "{bag}");
            untouched += usize::from(trimmed == bag && metas.is_empty());
        }
        // Both kinds occur: bags left as they are and bags trimmed.
        assert!(
            untouched > 0 && untouched < 84,
            "{untouched} of 84 untouched"
        );
    }

    #[test]
    fn long_strings_are_cut_and_their_length_recorded() {
        let event = run(
            json!({"message": "é".repeat(9000), "extra": {"blob": "x".repeat(100_000)}}),
            NormalizeConfig::default(),
        );
        let message = event["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), 8192);
        assert!(message.ends_with("é..."));
        assert_eq!(
            event["_meta"]["message"][""],
            json!({"len": 9000, "rem": [["!limit", "s", 8189, 8192]]})
        );
        assert_eq!(event["extra"]["blob"].as_str().unwrap().len(), 8192);
        assert_eq!(event["_meta"]["extra"]["blob"][""]["len"], 100_000);
    }

    #[test]
    fn short_values_leave_no_meta() {
        let before = json!({"message": "hi", "extra": {"a": [1, 2, {"b": null}]}});
        assert_eq!(run(before.clone(), NormalizeConfig::default()), before);
    }

    #[test]
    fn deep_databags_are_cut() {
        let event = run(
            json!({"extra": {"a": {"b": {"c": [1]}}, "ok": {"x": 1}}}),
            NormalizeConfig {
                max_databag_depth: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            event["extra"],
            json!({"a": {"b": {"c": null}}, "ok": {"x": 1}})
        );
        assert_eq!(
            event["_meta"]["extra"]["a"]["b"]["c"][""],
            json!({"len": 1, "rem": [["!limit", "x"]]})
        );
    }

    #[test]
    fn databag_over_budget_loses_its_last_entries() {
        let vars: Map<String, Value> = (0..100)
            .map(|i| (format!("v{i:02}"), json!("y".repeat(50))))
            .collect();
        let event = run(
            json!({"exception": {"values": [{"type": "E", "stacktrace": {"frames": [{"function": "f", "vars": vars}]}}]}}),
            NormalizeConfig {
                max_databag_size: 1000,
                ..Default::default()
            },
        );
        let kept = event["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
            .as_object()
            .unwrap();
        assert!(kept.len() < 20 && kept.len() > 10, "{}", kept.len());
        assert!(kept.contains_key("v00"));
        let meta =
            &event["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"]["0"]["vars"][""];
        assert_eq!(meta["len"], 100);
        assert!(serde_json::to_string(kept).unwrap().len() <= 1100);
    }

    #[test]
    fn only_the_latest_breadcrumbs_are_kept() {
        let crumbs: Vec<Value> = (0..120)
            .map(|i| json!({"message": format!("c{i}")}))
            .collect();
        let event = run(
            json!({"breadcrumbs": {"values": crumbs}}),
            NormalizeConfig::default(),
        );
        let kept = event["breadcrumbs"]["values"].as_array().unwrap();
        assert_eq!(kept.len(), 100);
        assert_eq!(kept[0]["message"], "c20");
        assert_eq!(event["_meta"]["breadcrumbs"]["values"][""]["len"], 120);
    }

    #[test]
    fn only_the_last_exceptions_are_kept() {
        let values: Vec<Value> = (0..30).map(|i| json!({"type": format!("E{i}")})).collect();
        let event = run(
            json!({"exception": {"values": values}}),
            NormalizeConfig::default(),
        );
        let kept = event["exception"]["values"].as_array().unwrap();
        assert_eq!(kept.len(), 25);
        assert_eq!(kept[0]["type"], "E5");
        assert_eq!(kept[24]["type"], "E29");
        assert_eq!(event["_meta"]["exception"]["values"][""]["len"], 30);
    }

    #[test]
    fn threads_past_the_bound_go_but_the_crashed_one_stays() {
        let mut threads: Vec<Value> = (0..10).map(|i| json!({"id": i})).collect();
        threads[8]["crashed"] = json!(true);
        let config = NormalizeConfig {
            max_threads: 4,
            ..NormalizeConfig::default()
        };
        let event = run(json!({"threads": {"values": threads}}), config);
        let ids: Vec<u64> = event["threads"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [0, 1, 2, 8]);
        assert_eq!(event["_meta"]["threads"]["values"][""]["len"], 10);
    }

    #[test]
    fn tags_and_contexts_past_the_bound_go() {
        let tags: Vec<Value> = (0..5).map(|i| json!([format!("t{i}"), "v"])).collect();
        let contexts: Map<String, Value> = (0..5)
            .map(|i| (format!("c{i}"), json!({"type": "x"})))
            .collect();
        let config = NormalizeConfig {
            max_tags: 3,
            max_contexts: 2,
            ..NormalizeConfig::default()
        };
        let event = run(json!({"tags": tags, "contexts": contexts}), config);
        assert_eq!(
            event["tags"],
            json!([["t0", "v"], ["t1", "v"], ["t2", "v"]])
        );
        assert_eq!(event["_meta"]["tags"][""]["len"], 5);
        let kept: Vec<&String> = event["contexts"].as_object().unwrap().keys().collect();
        assert_eq!(kept, ["c0", "c1"]);
        assert_eq!(event["_meta"]["contexts"][""]["len"], 5);
    }

    #[test]
    fn narrow_events_leave_no_breadth_meta() {
        let event = run(
            json!({"exception": {"values": [{"type": "E"}]}, "tags": {"a": "b"}}),
            NormalizeConfig::default(),
        );
        assert!(event.get("_meta").is_none());
    }

    #[test]
    fn meta_entries_merge() {
        let mut event = json!({});
        let object = event.as_object_mut().unwrap();
        record_meta(
            object,
            &["a", "0"],
            json!({"len": 10, "rem": [["!limit", "s", 1, 4]]}),
        );
        record_meta(
            object,
            &["a", "0"],
            json!({"len": 4, "rem": [["@password", "s"]]}),
        );
        assert_eq!(
            event["_meta"]["a"]["0"][""],
            json!({"len": 10, "rem": [["!limit", "s", 1, 4], ["@password", "s"]]})
        );
        assert!(note_names(&event).is_empty());
    }
}
