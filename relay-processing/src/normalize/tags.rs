//! Tags: de-duplication and length limits.
//!
//! Tags arrive as an object (`{"key": "value"}`) or a list of pairs (`[["key", "value"]]`);
//! the shape is kept. For each tag:
//!
//! - Keys and values are strings: numbers and booleans become strings; a `null` value drops
//!   the tag silently; anything else drops it with a note.
//! - Surrounding whitespace is removed; an empty key or value drops the tag.
//! - A key longer than `max_tag_key_length` or a value longer than `max_tag_value_length`
//!   drops the tag, noted as `value_too_long` (a cut value would be a different, misleading
//!   tag value).
//! - A key seen before (after trimming) drops the later tag: the first one wins.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::{add_note, NormalizeConfig};

/// Normalizes the `tags` of an event object.
pub(crate) fn normalize(object: &mut Map<String, Value>, config: &NormalizeConfig) {
    let Some(tags) = object.remove("tags") else {
        return;
    };
    let (pairs, as_object) = match tags {
        Value::Object(map) => (map.into_iter().map(|(k, v)| (json!(k), v)).collect(), true),
        Value::Array(list) => (
            list.into_iter()
                .map(|pair| match pair {
                    Value::Array(mut kv) if kv.len() == 2 => {
                        let value = kv.pop().unwrap_or_default();
                        (kv.pop().unwrap_or_default(), value)
                    }
                    other => (Value::Null, other),
                })
                .collect::<Vec<_>>(),
            false,
        ),
        Value::Null => return,
        other => {
            add_note(
                object,
                json!({"type": "invalid_data", "name": "tags", "value": other}),
            );
            return;
        }
    };

    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    for (index, (key, value)) in pairs.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let (Some(key), Some(value)) = (tag_string(&key), tag_string(&value)) else {
            add_note(
                object,
                json!({"type": "invalid_data", "name": format!("tags.{index}"), "value": [key, value]}),
            );
            continue;
        };
        if key.is_empty() || value.is_empty() {
            continue;
        }
        if key.chars().count() > config.max_tag_key_length
            || value.chars().count() > config.max_tag_value_length
        {
            add_note(
                object,
                json!({
                    "type": "value_too_long",
                    "name": format!("tags.{}", shorten(&key)),
                    "key_length": key.chars().count(),
                    "value_length": value.chars().count(),
                }),
            );
            continue;
        }
        if seen.insert(key.clone()) {
            kept.push((key, value));
        }
    }

    let tags = if as_object {
        Value::Object(kept.into_iter().map(|(k, v)| (k, json!(v))).collect())
    } else {
        Value::Array(kept.into_iter().map(|(k, v)| json!([k, v])).collect())
    };
    object.insert("tags".to_owned(), tags);
}

fn tag_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn shorten(key: &str) -> String {
    key.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn run(event: Value) -> Value {
        on_object(event, |o| normalize(o, &NormalizeConfig::default()))
    }

    #[test]
    fn object_tags_keep_their_shape() {
        let event =
            run(json!({"tags": {"a": "1", "foo": " bar ", "n": 5, "b": true, "gone": null}}));
        assert_eq!(
            event["tags"],
            json!({"a": "1", "foo": "bar", "n": "5", "b": "true"})
        );
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn duplicate_pairs_keep_the_first() {
        let event = run(json!({"tags": [["a", "1"], ["b", "2"], [" a", "3"], ["c", ""]]}));
        assert_eq!(event["tags"], json!([["a", "1"], ["b", "2"]]));
    }

    #[test]
    fn too_long_keys_and_values_are_dropped_and_noted() {
        let event = run(
            json!({"tags": [["k".repeat(201), "v"], ["ok", "v".repeat(201)], ["fine", "v".repeat(200)]]}),
        );
        assert_eq!(event["tags"], json!([["fine", "v".repeat(200)]]));
        assert_eq!(note_types(&event), ["value_too_long", "value_too_long"]);
        assert_eq!(event["errors"][1]["value_length"], 201);
    }

    #[test]
    fn malformed_tags_are_noted() {
        let event = run(json!({"tags": [["a", {"x": 1}], "b", ["c", "3"]]}));
        assert_eq!(event["tags"], json!([["c", "3"]]));
        assert_eq!(note_names(&event), ["tags.0", "tags.1"]);
        let event = run(json!({"tags": "a=b"}));
        assert!(event.get("tags").is_none());
        assert_eq!(note_names(&event), ["tags"]);
    }
}
