//! Error message filter (`error-message`): drops events whose message matches a glob.
//!
//! Candidates: each exception as `Type: value` (or just the one of them that is present),
//! and the message (`logentry.formatted`, `logentry.message`, or `message` as a string or
//! an object with those keys).

use serde_json::Value;

use super::{exceptions, FilterReason, GlobPatterns};

/// `Err(ErrorMessage)` when one of the event's messages matches one of `patterns`.
pub fn should_filter(event: &Value, patterns: &GlobPatterns) -> Result<(), FilterReason> {
    if patterns.is_empty() {
        return Ok(());
    }
    if messages(event)
        .iter()
        .any(|message| patterns.is_match(message))
    {
        return Err(FilterReason::ErrorMessage);
    }
    Ok(())
}

/// The texts the filter matches against.
fn messages(event: &Value) -> Vec<String> {
    let mut messages = Vec::new();
    for exception in exceptions(event) {
        let ty = exception.get("type").and_then(Value::as_str);
        let value = exception.get("value").and_then(Value::as_str);
        match (ty, value) {
            (Some(ty), Some(value)) => messages.push(format!("{ty}: {value}")),
            (Some(text), None) | (None, Some(text)) => messages.push(text.to_owned()),
            (None, None) => {}
        }
    }
    for container in [event.get("logentry"), event.get("message")]
        .into_iter()
        .flatten()
    {
        match container {
            Value::String(message) => messages.push(message.clone()),
            Value::Object(entry) => {
                for key in ["formatted", "message"] {
                    if let Some(Value::String(message)) = entry.get(key) {
                        messages.push(message.clone());
                    }
                }
            }
            _ => {}
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn globs(patterns: &[&str]) -> GlobPatterns {
        GlobPatterns::new(patterns.iter().map(|p| (*p).to_owned()).collect()).unwrap()
    }

    #[test]
    fn exception_type_and_value_are_matched_together() {
        let event = json!({"exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero"}]}});
        let reason = Err(FilterReason::ErrorMessage);
        assert_eq!(
            should_filter(&event, &globs(&["ZeroDivisionError: *"])),
            reason
        );
        assert_eq!(should_filter(&event, &globs(&["*by zero"])), reason);
        assert_eq!(should_filter(&event, &globs(&["ValueError*"])), Ok(()));
        // The legacy list shape too.
        let event = json!({"exception": [{"type": "Error", "value": "ResizeObserver loop limit exceeded"}]});
        assert_eq!(
            should_filter(&event, &globs(&["*resizeobserver loop*"])),
            reason
        );
    }

    #[test]
    fn messages_in_every_shape_are_matched() {
        let reason = Err(FilterReason::ErrorMessage);
        let patterns = globs(&["hello from *"]);
        assert_eq!(
            should_filter(&json!({"message": "hello from sentry-python"}), &patterns),
            reason
        );
        assert_eq!(
            should_filter(
                &json!({"message": {"formatted": "hello from x"}}),
                &patterns
            ),
            reason
        );
        assert_eq!(
            should_filter(
                &json!({"logentry": {"message": "hello from %s", "params": ["y"]}}),
                &patterns
            ),
            reason
        );
        assert_eq!(
            should_filter(&json!({"message": "goodbye"}), &patterns),
            Ok(())
        );
        assert_eq!(
            should_filter(
                &json!({"message": "hello from x"}),
                &GlobPatterns::default()
            ),
            Ok(())
        );
    }
}
