//! The title and culprit, shown with its aggregates.

use serde_json::Value;

use super::frames::{
    crashed_thread_frames, exception_values, frames_of, grouping_frames, is_synthetic,
};
use super::message::display_message;

/// Longest title, in characters.
const MAX_TITLE_LENGTH: usize = 200;

/// The issue title: `Type: value` of the top-level (last) exception, else the first line
/// of the message, else the transaction name, else `<unlabeled event>`. At most 200
/// characters.
pub fn title(event: &Value) -> String {
    let exception = exception_values(event)
        .iter()
        .rev()
        .find(|e| !is_synthetic(e) && (e.get("type").is_some() || e.get("value").is_some()));
    let title = exception
        .and_then(|exception| {
            let ty = exception.get("type").and_then(Value::as_str);
            let value = exception
                .get("value")
                .and_then(Value::as_str)
                .and_then(|v| v.lines().next())
                .filter(|v| !v.is_empty());
            match (ty, value) {
                (Some(ty), Some(value)) => Some(format!("{ty}: {value}")),
                (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
                (None, None) => None,
            }
        })
        .or_else(|| display_message(event).and_then(|m| m.lines().next().map(str::to_owned)))
        .or_else(|| {
            event
                .get("transaction")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "<unlabeled event>".to_owned());
    if title.chars().count() > MAX_TITLE_LENGTH {
        let mut cut: String = title.chars().take(MAX_TITLE_LENGTH - 3).collect();
        cut.push_str("...");
        cut
    } else {
        title
    }
}

/// Where the problem is: `<module or file> in <function>` of the crashing in-app frame
/// (the last one; any last frame when none is in-app), else the `transaction` name.
pub fn culprit(event: &Value) -> Option<String> {
    let frames = exception_values(event)
        .iter()
        .rev()
        .map(|e| frames_of(e.get("stacktrace")))
        .find(|frames| !frames.is_empty())
        .unwrap_or_else(|| crashed_thread_frames(event));
    let from_frame = grouping_frames(frames).last().and_then(|frame| {
        let text = |key: &str| {
            frame
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let place = text("module")
            .or_else(|| text("filename"))
            .or_else(|| text("package"));
        let function = text("function").filter(|f| *f != "?");
        match (place, function) {
            (Some(place), Some(function)) => Some(format!("{place} in {function}")),
            (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
            (None, None) => None,
        }
    });
    from_frame.or_else(|| {
        event
            .get("transaction")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    })
}
