//! Messages: their template for grouping (parameters replaced) and their text for display.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b").unwrap()
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?\b")
        .unwrap()
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap());
static HEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b").unwrap()
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d+(\.\d+)?").unwrap());

/// A message with its variable parts replaced: UUIDs (`<uuid>`), dates (`<date>`), IPv4
/// addresses (`<ip>`), hex numbers and ids of 8+ hex digits (`<hex>`), numbers (`<int>`,
/// `<float>`). Surrounding whitespace is removed.
pub fn message_template(message: &str) -> String {
    let text = UUID.replace_all(message.trim(), "<uuid>");
    let text = DATE.replace_all(&text, "<date>");
    let text = IPV4.replace_all(&text, "<ip>");
    let text = HEX.replace_all(&text, |caps: &regex::Captures| {
        let matched = &caps[0];
        if matched.starts_with("0x") || matched.starts_with("0X") || matched.len() >= 8 {
            "<hex>".to_owned()
        } else {
            matched.to_owned()
        }
    });
    NUMBER
        .replace_all(&text, |caps: &regex::Captures| {
            if caps.get(1).is_some() {
                "<float>"
            } else {
                "<int>"
            }
            .to_owned()
        })
        .into_owned()
}

/// The event's message: the `logentry`/`message` template (`message` key) before its
/// `formatted` text, so that parameters stay out.
pub(super) fn message_of(event: &Value) -> Option<String> {
    for key in ["logentry", "message"] {
        match event.get(key) {
            Some(Value::String(message)) if !message.trim().is_empty() => {
                return Some(message.clone())
            }
            Some(Value::Object(entry)) => {
                for field in ["message", "formatted"] {
                    if let Some(Value::String(message)) = entry.get(field) {
                        if !message.trim().is_empty() {
                            return Some(message.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The formatted message for display (`formatted` before the template).
pub(super) fn display_message(event: &Value) -> Option<String> {
    for key in ["logentry", "message"] {
        match event.get(key) {
            Some(Value::String(message)) if !message.trim().is_empty() => {
                return Some(message.clone())
            }
            Some(Value::Object(entry)) => {
                for field in ["formatted", "message"] {
                    if let Some(Value::String(message)) = entry.get(field) {
                        if !message.trim().is_empty() {
                            return Some(message.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}
