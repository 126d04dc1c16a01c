//! The lighter path of transactions: instead of exception and stack trace validation, only
//! what makes a transaction readable.
//!
//! - `start_timestamp` is required: a missing one becomes `timestamp` (noted as
//!   `missing_attribute`), one after `timestamp` is set to it (noted as `invalid_data`).
//! - `transaction` (the name) is a string; anything else is removed and noted.
//! - `spans` is a list of objects; other entries are dropped and noted. Span
//!   `start_timestamp`/`timestamp` become Unix seconds; unreadable ones are removed and
//!   noted.
//!
//! Transactions still get the shared rules (timestamps, release, tags, user IP, trimming).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::timestamps::parse_timestamp;
use super::{add_error, add_note, unix_seconds};

/// Normalizes the transaction-specific fields of an event object.
pub(crate) fn normalize(object: &mut Map<String, Value>, received: DateTime<Utc>) {
    let end = object
        .get("timestamp")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| unix_seconds(received));
    match object.get("start_timestamp").and_then(Value::as_f64) {
        None => {
            object.insert("start_timestamp".to_owned(), json!(end));
            add_note(
                object,
                json!({"type": "missing_attribute", "name": "start_timestamp"}),
            );
        }
        Some(start) if start > end => {
            object.insert("start_timestamp".to_owned(), json!(end));
            add_error(object, "start_timestamp", json!(start));
        }
        Some(_) => {}
    }

    match object.get("transaction") {
        None | Some(Value::String(_)) => {}
        Some(_) => {
            let invalid = object.remove("transaction").unwrap_or_default();
            if !invalid.is_null() {
                add_error(object, "transaction", invalid);
            }
        }
    }

    let Some(spans) = object.remove("spans") else {
        return;
    };
    let spans = match spans {
        Value::Array(spans) => spans,
        Value::Null => return,
        other => {
            add_error(object, "spans", other);
            return;
        }
    };
    let mut invalid = Vec::new();
    let kept: Vec<Value> = spans
        .into_iter()
        .enumerate()
        .filter_map(|(index, span)| {
            let Value::Object(mut span) = span else {
                invalid.push((format!("spans.{index}"), span));
                return None;
            };
            for key in ["start_timestamp", "timestamp"] {
                let Some(value) = span.get(key) else {
                    continue;
                };
                match parse_timestamp(value) {
                    Some(secs) => {
                        span.insert(key.to_owned(), json!(secs));
                    }
                    None => {
                        let bad = span.remove(key).unwrap_or_default();
                        if !bad.is_null() {
                            invalid.push((format!("spans.{index}.{key}"), bad));
                        }
                    }
                }
            }
            Some(Value::Object(span))
        })
        .collect();
    object.insert("spans".to_owned(), Value::Array(kept));
    for (name, value) in invalid {
        add_error(object, &name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    const NOW: f64 = 1_795_608_000.25;

    fn run(event: Value) -> Value {
        on_object(event, |o| normalize(o, received()))
    }

    #[test]
    fn valid_transaction_is_untouched() {
        let before = json!({
            "timestamp": NOW, "start_timestamp": NOW - 1.0, "transaction": "GET /",
            "spans": [{"span_id": "a", "start_timestamp": NOW - 0.5, "timestamp": NOW - 0.25}],
        });
        assert_eq!(run(before.clone()), before);
    }

    #[test]
    fn missing_or_late_start_is_repaired() {
        let event = run(json!({"timestamp": NOW}));
        assert_eq!(event["start_timestamp"], NOW);
        assert_eq!(note_types(&event), ["missing_attribute"]);
        let event = run(json!({"timestamp": NOW, "start_timestamp": NOW + 5.0}));
        assert_eq!(event["start_timestamp"], NOW);
        assert_eq!(note_names(&event), ["start_timestamp"]);
    }

    #[test]
    fn spans_are_checked() {
        let event = run(json!({
            "timestamp": NOW, "start_timestamp": NOW, "transaction": 5,
            "spans": [1, {"span_id": "b", "start_timestamp": "2026-11-25T12:00:00Z", "timestamp": "x"}],
        }));
        assert_eq!(
            event["spans"],
            json!([{"span_id": "b", "start_timestamp": NOW - 0.25}])
        );
        assert!(event.get("transaction").is_none());
        assert_eq!(
            note_names(&event),
            ["transaction", "spans.0", "spans.1.timestamp"]
        );
    }
}
