//! Timestamps: parsed into Unix seconds, corrected for SDK clock drift, and kept within
//! bounds around the receive time.
//!
//! 1. `timestamp` (and `start_timestamp` when present) arrive as Unix seconds or RFC 3339
//!    strings and leave as numbers; an unreadable `timestamp` becomes the receive time
//!    (noted as `invalid_data`).
//! 2. Clock drift: the envelope's `sent_at` is the SDK's clock at sending. When it differs
//!    from the receive time by at least `clock_drift_threshold_secs`, the SDK clock is
//!    taken to be wrong and every timestamp of the event (`timestamp`, `start_timestamp`,
//!    span and breadcrumb timestamps) is shifted by the difference; noted as `clock_drift`
//!    with both times.
//! 3. Bounds: a `timestamp` older than `max_secs_in_past` or later than
//!    `max_secs_in_future` relative to the receive time is replaced by the receive time;
//!    the other timestamps move by the same amount (durations and order are kept). Noted as
//!    `past_timestamp` / `future_timestamp` with the original value.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{add_error, add_note, unix_seconds, NormalizeConfig};

/// Parses the envelope header's `sent_at` (RFC 3339, or a zone-less ISO time read as UTC).
pub fn parse_sent_at(sent_at: &str) -> Option<DateTime<Utc>> {
    let secs = parse_timestamp_string(sent_at)?;
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

/// Reads a protocol timestamp: non-negative Unix seconds or an RFC 3339 string.
pub(crate) fn parse_timestamp(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|secs| secs.is_finite() && *secs >= 0.0),
        Value::String(s) => parse_timestamp_string(s),
        _ => None,
    }
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

/// Applies the three steps of the module documentation to an event object.
pub(crate) fn normalize(
    object: &mut Map<String, Value>,
    received: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    config: &NormalizeConfig,
) {
    let received_secs = unix_seconds(received);
    let parsed = object.get("timestamp").and_then(parse_timestamp);
    let timestamp = match parsed {
        Some(secs) => secs,
        None => {
            if let Some(invalid) = object.get("timestamp").filter(|v| !v.is_null()).cloned() {
                add_error(object, "timestamp", invalid);
            }
            received_secs
        }
    };
    object.insert("timestamp".to_owned(), json!(timestamp));
    normalize_start_timestamp(object);
    if parsed.is_none() {
        // The receive time is already on the relay's clock and within bounds.
        return;
    }

    let mut timestamp = timestamp;
    if let Some(sent_at) = sent_at {
        let drift = received_secs - unix_seconds(sent_at);
        if drift.abs() >= config.clock_drift_threshold_secs as f64 {
            shift_all(object, drift);
            timestamp += drift;
            add_note(
                object,
                json!({
                    "type": "clock_drift",
                    "name": "sent_at",
                    "sdk_time": sent_at.to_rfc3339(),
                    "server_time": received.to_rfc3339(),
                }),
            );
        }
    }

    let (kind, out_of_bounds) = if timestamp < received_secs - config.max_secs_in_past as f64 {
        ("past_timestamp", true)
    } else if timestamp > received_secs + config.max_secs_in_future as f64 {
        ("future_timestamp", true)
    } else {
        ("", false)
    };
    if out_of_bounds {
        shift_all(object, received_secs - timestamp);
        object.insert("timestamp".to_owned(), json!(received_secs));
        add_note(
            object,
            json!({"type": kind, "name": "timestamp", "value": timestamp}),
        );
    }
}

/// `start_timestamp` (transactions, sometimes errors) leaves as a number or not at all.
fn normalize_start_timestamp(object: &mut Map<String, Value>) {
    let Some(value) = object.get("start_timestamp") else {
        return;
    };
    match parse_timestamp(value) {
        Some(secs) => {
            object.insert("start_timestamp".to_owned(), json!(secs));
        }
        None => {
            let invalid = object.remove("start_timestamp").unwrap_or_default();
            if !invalid.is_null() {
                add_error(object, "start_timestamp", invalid);
            }
        }
    }
}

/// Moves every timestamp of the event by `delta` seconds. Values that are not readable
/// timestamps are left as they are (other rules deal with them).
fn shift_all(object: &mut Map<String, Value>, delta: f64) {
    for key in ["timestamp", "start_timestamp"] {
        if let Some(value) = object.get_mut(key) {
            shift(value, delta);
        }
    }
    if let Some(Value::Array(spans)) = object.get_mut("spans") {
        for span in spans.iter_mut().filter_map(Value::as_object_mut) {
            for key in ["timestamp", "start_timestamp"] {
                if let Some(value) = span.get_mut(key) {
                    shift(value, delta);
                }
            }
        }
    }
    let breadcrumbs = match object.get_mut("breadcrumbs") {
        Some(Value::Object(crumbs)) => crumbs.get_mut("values"),
        Some(list @ Value::Array(_)) => Some(list),
        _ => None,
    };
    if let Some(Value::Array(crumbs)) = breadcrumbs {
        for crumb in crumbs.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(value) = crumb.get_mut("timestamp") {
                shift(value, delta);
            }
        }
    }
}

fn shift(value: &mut Value, delta: f64) {
    if let Some(secs) = parse_timestamp(value) {
        // Milliseconds, like the rest of the relay's timestamps.
        *value = json!(((secs + delta) * 1000.0).round() / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn run(event: Value, sent_at: Option<DateTime<Utc>>) -> Value {
        on_object(event, |o| {
            normalize(o, received(), sent_at, &NormalizeConfig::default())
        })
    }

    const NOW: f64 = 1_795_608_000.25;

    #[test]
    fn rfc3339_and_zone_less_strings_become_numbers() {
        let event = run(json!({"timestamp": "2026-11-25T11:59:00Z"}), None);
        assert_eq!(event["timestamp"], NOW - 60.25);
        let event = run(json!({"timestamp": "2026-11-25T11:59:00.5"}), None);
        assert_eq!(event["timestamp"], NOW - 59.75);
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn too_old_timestamp_is_clamped_and_noted() {
        let before = NOW - 31.0 * 86400.0;
        let event = run(
            json!({"timestamp": before, "breadcrumbs": {"values": [{"timestamp": before - 5.0}]}}),
            None,
        );
        assert_eq!(event["timestamp"], NOW);
        assert_eq!(event["breadcrumbs"]["values"][0]["timestamp"], NOW - 5.0);
        assert_eq!(note_types(&event), ["past_timestamp"]);
        assert_eq!(event["errors"][0]["value"], before);
    }

    #[test]
    fn future_timestamp_is_clamped_with_its_transaction_start() {
        let event = run(
            json!({"timestamp": NOW + 3600.0, "start_timestamp": NOW + 3590.0}),
            None,
        );
        assert_eq!(event["timestamp"], NOW);
        assert_eq!(event["start_timestamp"], NOW - 10.0);
        assert_eq!(note_types(&event), ["future_timestamp"]);
    }

    #[test]
    fn timestamps_within_bounds_are_kept() {
        let event = run(json!({"timestamp": NOW + 30.0}), None);
        assert_eq!(event["timestamp"], NOW + 30.0);
        let event = run(json!({"timestamp": NOW - 29.0 * 86400.0}), None);
        assert_eq!(event["timestamp"], NOW - 29.0 * 86400.0);
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn clock_drift_shifts_every_timestamp() {
        // The SDK's clock is one day behind: without correction the event would be clamped.
        let sent_at = received() - chrono::Duration::days(1);
        let sdk_now = NOW - 86400.0;
        let event = run(
            json!({
                "timestamp": sdk_now - 2.0,
                "start_timestamp": sdk_now - 3.0,
                "spans": [{"start_timestamp": sdk_now - 2.5, "timestamp": "2026-11-24T11:59:58.250Z"}],
                "breadcrumbs": [{"timestamp": sdk_now - 10.0}],
            }),
            Some(sent_at),
        );
        assert_eq!(event["timestamp"], NOW - 2.0);
        assert_eq!(event["start_timestamp"], NOW - 3.0);
        assert_eq!(event["spans"][0]["start_timestamp"], NOW - 2.5);
        assert_eq!(event["spans"][0]["timestamp"], NOW - 2.0);
        assert_eq!(event["breadcrumbs"][0]["timestamp"], NOW - 10.0);
        assert_eq!(note_types(&event), ["clock_drift"]);
        assert_eq!(
            event["errors"][0]["sdk_time"],
            "2026-11-24T12:00:00.250+00:00"
        );
    }

    #[test]
    fn small_drift_is_transfer_time() {
        let sent_at = received() - chrono::Duration::seconds(5);
        let event = run(json!({"timestamp": NOW - 6.0}), Some(sent_at));
        assert_eq!(event["timestamp"], NOW - 6.0);
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn sent_at_parses_like_fixtures_send_it() {
        let parsed = parse_sent_at("2026-11-25T18:55:04.247188Z").unwrap();
        assert_eq!(unix_seconds(parsed), 1_795_632_904.247);
        assert!(parse_sent_at("soon").is_none());
    }

    #[test]
    fn invalid_start_timestamp_is_removed_and_noted() {
        let event = run(json!({"timestamp": NOW, "start_timestamp": "later"}), None);
        assert!(event.get("start_timestamp").is_none());
        assert_eq!(note_names(&event), ["start_timestamp"]);
    }
}
