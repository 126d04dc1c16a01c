//! Minimal event normalization: every published event has a valid id, a timestamp, the time
//! it was received, a platform and a level.
//!
//! Values that are present but invalid are replaced and recorded in the event's `errors`
//! list (the Sentry protocol's place for processing notes), never silently.

use chrono::{DateTime, Utc};
use relay_core::event_id::InvalidEventId;
use relay_core::EventId;
use serde_json::{json, Map, Value};

/// What normalization needs to know besides the event itself.
#[derive(Clone, Debug)]
pub struct NormalizeContext {
    /// When the relay received the request.
    pub received: DateTime<Utc>,
    /// The envelope header's event id, used when the event has none.
    pub envelope_event_id: Option<EventId>,
    /// Whether the item is a transaction (which defaults to level `info`).
    pub is_transaction: bool,
}

/// Why an event cannot be normalized at all.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The payload is JSON but not an object.
    #[error("event payload must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The `event_id` field is not a UUID.
    #[error(transparent)]
    InvalidEventId(#[from] InvalidEventId),
}

const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "fatal"];

/// Normalizes `event` in place and returns its event id.
pub fn normalize_event(
    event: &mut Value,
    ctx: &NormalizeContext,
) -> Result<EventId, NormalizeError> {
    let object = match event {
        Value::Object(object) => object,
        other => return Err(NormalizeError::NotAnObject(json_kind(other))),
    };
    let event_id = normalize_event_id(object, ctx)?;
    normalize_timestamp(object, ctx.received);
    object.insert("received".to_owned(), json!(unix_seconds(ctx.received)));
    normalize_platform(object);
    normalize_level(object, ctx.is_transaction);
    normalize_type(object, ctx.is_transaction);
    Ok(event_id)
}

fn normalize_event_id(
    object: &mut Map<String, Value>,
    ctx: &NormalizeContext,
) -> Result<EventId, NormalizeError> {
    let event_id = match object.get("event_id") {
        Some(Value::String(id)) => id.parse()?,
        Some(Value::Null) | None => ctx.envelope_event_id.unwrap_or_default(),
        Some(other) => return Err(InvalidEventId(other.to_string()).into()),
    };
    object.insert("event_id".to_owned(), json!(event_id.to_string()));
    Ok(event_id)
}

/// Timestamps arrive as Unix seconds (number) or RFC 3339 strings; they leave as numbers.
fn normalize_timestamp(object: &mut Map<String, Value>, received: DateTime<Utc>) {
    let parsed = match object.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().filter(|secs| secs.is_finite() && *secs >= 0.0),
        Some(Value::String(s)) => parse_timestamp_string(s),
        Some(_) => None,
    };
    let timestamp = match parsed {
        Some(secs) => secs,
        None => {
            if let Some(invalid) = object.get("timestamp").filter(|v| !v.is_null()).cloned() {
                add_error(object, "timestamp", invalid);
            }
            unix_seconds(received)
        }
    };
    object.insert("timestamp".to_owned(), json!(timestamp));
}

fn parse_timestamp_string(s: &str) -> Option<f64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(unix_seconds(dt.with_timezone(&Utc)));
    }
    // Some SDKs omit the zone; Sentry reads such timestamps as UTC.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| unix_seconds(naive.and_utc()))
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && *secs >= 0.0)
        })
}

fn normalize_platform(object: &mut Map<String, Value>) {
    let valid = matches!(object.get("platform"), Some(Value::String(p)) if !p.is_empty());
    if !valid {
        object.insert("platform".to_owned(), json!("other"));
    }
}

fn normalize_level(object: &mut Map<String, Value>, is_transaction: bool) {
    let default = if is_transaction { "info" } else { "error" };
    let level = match object.get("level") {
        None | Some(Value::Null) => default.to_owned(),
        Some(Value::String(level)) => match level.to_ascii_lowercase().as_str() {
            "warn" => "warning".to_owned(),
            "critical" => "fatal".to_owned(),
            "log" => "info".to_owned(),
            known if LEVELS.contains(&known) => known.to_owned(),
            _ => {
                add_error(object, "level", json!(level));
                default.to_owned()
            }
        },
        Some(other) => {
            let other = other.clone();
            add_error(object, "level", other);
            default.to_owned()
        }
    };
    object.insert("level".to_owned(), json!(level));
}

/// Sentry's event `type`: `transaction`, `error` when there is an exception, else `default`.
fn normalize_type(object: &mut Map<String, Value>, is_transaction: bool) {
    let ty = if is_transaction {
        "transaction"
    } else if object.get("exception").is_some_and(|e| !e.is_null()) {
        "error"
    } else {
        "default"
    };
    object.insert("type".to_owned(), json!(ty));
}

/// Records a replaced invalid value in the event's `errors` list.
fn add_error(object: &mut Map<String, Value>, name: &str, value: Value) {
    let note = json!({"type": "invalid_data", "name": name, "value": value});
    match object.get_mut("errors") {
        Some(Value::Array(errors)) => errors.push(note),
        _ => {
            object.insert("errors".to_owned(), json!([note]));
        }
    }
}

/// Seconds since the Unix epoch with millisecond precision.
pub fn unix_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NormalizeContext {
        NormalizeContext {
            received: DateTime::parse_from_rfc3339("2026-11-25T12:00:00.250Z")
                .unwrap()
                .with_timezone(&Utc),
            envelope_event_id: None,
            is_transaction: false,
        }
    }

    #[test]
    fn fills_defaults() {
        let mut event = json!({"message": "hi"});
        let id = normalize_event(&mut event, &ctx()).unwrap();
        assert_eq!(event["event_id"], id.to_string());
        assert_eq!(event["timestamp"], 1_795_608_000.25);
        assert_eq!(event["received"], 1_795_608_000.25);
        assert_eq!(event["platform"], "other");
        assert_eq!(event["level"], "error");
        assert_eq!(event["type"], "default");
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn keeps_valid_values_and_canonicalizes() {
        let mut event = json!({
            "event_id": "8be12c14-9f1d-40de-8c80-ed204da87a62",
            "timestamp": "2026-11-25T18:55:04.554934Z",
            "platform": "python",
            "level": "WARN",
            "exception": {"values": []},
        });
        normalize_event(&mut event, &ctx()).unwrap();
        assert_eq!(event["event_id"], "8be12c149f1d40de8c80ed204da87a62");
        assert_eq!(event["timestamp"], 1_795_632_904.554);
        assert_eq!(event["platform"], "python");
        assert_eq!(event["level"], "warning");
        assert_eq!(event["type"], "error");
    }

    #[test]
    fn envelope_id_is_used_when_event_has_none() {
        let mut ctx = ctx();
        ctx.envelope_event_id = Some("9ec79c33ec9942ab8353589fcb2e04dc".parse().unwrap());
        ctx.is_transaction = true;
        let mut event = json!({"timestamp": 1_764_000_000.5});
        let id = normalize_event(&mut event, &ctx).unwrap();
        assert_eq!(id.to_string(), "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(event["timestamp"], 1_764_000_000.5);
        assert_eq!(event["level"], "info");
        assert_eq!(event["type"], "transaction");
    }

    #[test]
    fn invalid_values_are_replaced_and_noted() {
        let mut event = json!({"timestamp": "yesterday", "level": "loud", "platform": 5});
        normalize_event(&mut event, &ctx()).unwrap();
        assert_eq!(event["timestamp"], 1_795_608_000.25);
        assert_eq!(event["level"], "error");
        assert_eq!(event["platform"], "other");
        let names: Vec<_> = event["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect();
        assert_eq!(names, [json!("timestamp"), json!("level")]);
    }

    #[test]
    fn rejects_what_cannot_be_an_event() {
        assert!(normalize_event(&mut json!([1]), &ctx()).is_err());
        assert!(normalize_event(&mut json!({"event_id": "nope"}), &ctx()).is_err());
        assert!(normalize_event(&mut json!({"event_id": 5}), &ctx()).is_err());
    }
}
