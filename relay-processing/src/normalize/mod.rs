//! Event normalization (Sentry event protocol): after it, every published event has a valid
//! id, bounded timestamps, the time it was received, a platform, a level and a type, and its
//! parts have the shapes and sizes consumers can rely on.
//!
//! Values that are present but invalid are replaced or removed and recorded in the event's
//! `errors` list (the Sentry protocol's place for processing notes), never silently. Trimmed
//! values keep their original size in the event's `_meta` tree.
//!
//! The rules, one module each, in the order [`normalize_event_full`] applies them:
//!
//! - [`timestamps`]: clock-drift correction from the envelope's `sent_at`, then timestamps too
//!   far in the past or future replaced by the receive time.
//! - event id, `received`, `platform`, `level`, `logger`, `type` (here).
//! - [`release`]: `release`, `dist` and `environment` validation.
//! - [`user_ip`]: `{{auto}}` user IP from the client address; invalid IPs removed.
//! - [`tags`]: de-duplication, key/value length limits.
//! - [`stacktrace`]: exception, stack trace and thread shapes; bad frames dropped.
//! - [`transaction`]: the lighter path of transactions (`start_timestamp`, spans) instead.
//! - [`trimming`]: oversized strings, breadcrumbs and databags trimmed, sizes kept in `_meta`.
//!
//! [`normalize_event`] is the same with default [`NormalizeOptions`].

pub mod config;
pub mod release;
pub mod stacktrace;
pub mod tags;
pub mod timestamps;
pub mod transaction;
pub mod trimming;
pub mod user_ip;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use relay_core::event_id::InvalidEventId;
use relay_core::EventId;
use serde_json::{json, Map, Value};

pub use config::NormalizeConfig;

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

/// Facts of one request and the relay's limits, for [`normalize_event_full`].
///
/// `NormalizeOptions::default()` knows no `sent_at` and no client address (so neither drift
/// correction nor `{{auto}}` IPs apply) and uses [`NormalizeConfig::default`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormalizeOptions {
    /// The envelope header's `sent_at` (see [`timestamps::parse_sent_at`]): when the SDK sent
    /// the envelope by its own clock. Drives clock-drift correction.
    pub sent_at: Option<DateTime<Utc>>,
    /// The address the request came from (after trusted proxies), for `{{auto}}` user IPs.
    pub client_ip: Option<IpAddr>,
    /// Limits and bounds.
    pub config: NormalizeConfig,
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

/// Longest `logger` name kept, in characters.
const MAX_LOGGER_LENGTH: usize = 64;

/// Normalizes `event` in place with default options and returns its event id.
///
/// Same as [`normalize_event_full`] with [`NormalizeOptions::default`].
pub fn normalize_event(
    event: &mut Value,
    ctx: &NormalizeContext,
) -> Result<EventId, NormalizeError> {
    normalize_event_full(event, ctx, &NormalizeOptions::default())
}

/// Normalizes `event` in place and returns its event id.
///
/// Errors only when the payload cannot be an event (not an object, or an `event_id` that is
/// not a UUID); everything else is repaired and noted in `errors`.
pub fn normalize_event_full(
    event: &mut Value,
    ctx: &NormalizeContext,
    options: &NormalizeOptions,
) -> Result<EventId, NormalizeError> {
    let object = match event {
        Value::Object(object) => object,
        other => return Err(NormalizeError::NotAnObject(json_kind(other))),
    };
    let config = &options.config;
    let event_id = normalize_event_id(object, ctx)?;
    timestamps::normalize(object, ctx.received, options.sent_at, config);
    object.insert("received".to_owned(), json!(unix_seconds(ctx.received)));
    normalize_platform(object);
    normalize_level(object, ctx.is_transaction);
    normalize_logger(object);
    release::normalize(object);
    user_ip::normalize(object, options.client_ip);
    tags::normalize(object, config);
    if ctx.is_transaction {
        transaction::normalize(object, ctx.received);
    } else {
        stacktrace::normalize(object, config);
    }
    normalize_type(object, ctx.is_transaction);
    trimming::trim_event(object, config);
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

/// `logger` is optional: no default is invented, but a kept one is a non-empty string of at
/// most 64 characters (longer names are cut, Sentry's limit).
fn normalize_logger(object: &mut Map<String, Value>) {
    match object.get("logger") {
        None => {}
        Some(Value::Null) => {
            object.remove("logger");
        }
        Some(Value::String(logger)) if logger.trim().is_empty() => {
            object.remove("logger");
        }
        Some(Value::String(logger)) => {
            let length = logger.chars().count();
            if length > MAX_LOGGER_LENGTH {
                let cut: String = logger.chars().take(MAX_LOGGER_LENGTH).collect();
                object.insert("logger".to_owned(), json!(cut));
                trimming::record_meta(
                    object,
                    &["logger"],
                    json!({"len": length, "rem": [["!limit", "s", MAX_LOGGER_LENGTH, MAX_LOGGER_LENGTH]]}),
                );
            }
        }
        Some(other) => {
            let other = other.clone();
            object.remove("logger");
            add_error(object, "logger", other);
        }
    }
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

/// Records a replaced or removed invalid value in the event's `errors` list.
pub(crate) fn add_error(object: &mut Map<String, Value>, name: &str, value: Value) {
    add_note(
        object,
        json!({"type": "invalid_data", "name": name, "value": value}),
    );
}

/// Appends a processing note (`{"type": …, "name": …, …}`) to the event's `errors` list.
pub(crate) fn add_note(object: &mut Map<String, Value>, note: Value) {
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

/// Test helpers shared by the rule modules.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// 2026-11-25T12:00:00.250Z.
    pub fn received() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The `name`s of the event's processing notes.
    pub fn note_names(event: &Value) -> Vec<String> {
        event["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `type`s of the event's processing notes.
    pub fn note_types(event: &Value) -> Vec<String> {
        event["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs one rule on an object event.
    pub fn on_object(mut event: Value, rule: impl FnOnce(&mut Map<String, Value>)) -> Value {
        rule(event.as_object_mut().unwrap());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn ctx() -> NormalizeContext {
        NormalizeContext {
            received: received(),
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
        assert!(event.get("logger").is_none());
        assert!(event.get("_meta").is_none());
    }

    #[test]
    fn keeps_valid_values_and_canonicalizes() {
        let mut event = json!({
            "event_id": "8be12c14-9f1d-40de-8c80-ed204da87a62",
            "timestamp": "2026-11-25T11:55:04.554934Z",
            "platform": "python",
            "level": "WARN",
            "exception": {"values": []},
        });
        normalize_event(&mut event, &ctx()).unwrap();
        assert_eq!(event["event_id"], "8be12c149f1d40de8c80ed204da87a62");
        assert_eq!(event["timestamp"], 1_795_607_704.554);
        assert_eq!(event["platform"], "python");
        assert_eq!(event["level"], "warning");
        assert_eq!(event["type"], "error");
    }

    #[test]
    fn envelope_id_is_used_when_event_has_none() {
        let mut ctx = ctx();
        ctx.envelope_event_id = Some("9ec79c33ec9942ab8353589fcb2e04dc".parse().unwrap());
        ctx.is_transaction = true;
        let mut event = json!({"timestamp": 1_795_607_000.5, "start_timestamp": 1_795_606_999.5});
        let id = normalize_event(&mut event, &ctx).unwrap();
        assert_eq!(id.to_string(), "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(event["timestamp"], 1_795_607_000.5);
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
        assert_eq!(note_names(&event), ["timestamp", "level"]);
    }

    #[test]
    fn rejects_what_cannot_be_an_event() {
        assert!(normalize_event(&mut json!([1]), &ctx()).is_err());
        assert!(normalize_event(&mut json!({"event_id": "nope"}), &ctx()).is_err());
        assert!(normalize_event(&mut json!({"event_id": 5}), &ctx()).is_err());
    }

    #[test]
    fn logger_is_validated_not_invented() {
        let long = "l".repeat(70);
        let mut event = json!({"logger": long});
        normalize_event(&mut event, &ctx()).unwrap();
        assert_eq!(event["logger"].as_str().unwrap().len(), 64);
        assert_eq!(event["_meta"]["logger"][""]["len"], 70);

        let mut event = json!({"logger": ["root"]});
        normalize_event(&mut event, &ctx()).unwrap();
        assert!(event.get("logger").is_none());
        assert_eq!(note_names(&event), ["logger"]);

        let mut event = json!({"logger": "  "});
        normalize_event(&mut event, &ctx()).unwrap();
        assert!(event.get("logger").is_none());
    }

    #[test]
    fn full_options_apply_drift_and_auto_ip() {
        let options = NormalizeOptions {
            sent_at: Some(received() - chrono::Duration::hours(2)),
            client_ip: Some("203.0.113.7".parse().unwrap()),
            config: NormalizeConfig::default(),
        };
        let sdk_now = unix_seconds(received()) - 7200.0;
        let mut event = json!({"timestamp": sdk_now - 1.0, "user": {"ip_address": "{{auto}}"}});
        normalize_event_full(&mut event, &ctx(), &options).unwrap();
        assert_eq!(event["timestamp"], unix_seconds(received()) - 1.0);
        assert_eq!(event["user"]["ip_address"], "203.0.113.7");
        assert_eq!(note_types(&event), ["clock_drift"]);
    }
}
