//! The checks every envelope passes at intake: item sizes, at most one event, and an event
//! that is a JSON object with a valid id.

use relay_core::config::Limits;
use relay_core::{Envelope, EventId, ItemType};
use serde_json::Value;

use super::IntakeError;

/// Checks item sizes and the event item, and returns the event id answered to the client.
///
/// The event's own `event_id` wins, then the envelope header's; an event without either gets
/// a new one, which the spool entry records so a replay publishes the same id.
pub fn check_items(envelope: &Envelope, limits: &Limits) -> Result<Option<EventId>, IntakeError> {
    let mut event_id = None;
    let mut seen_event = false;
    for (index, item) in envelope.items.iter().enumerate() {
        let size = item.payload.len();
        if item.ty().is_event() {
            if size > limits.max_event_size {
                return Err(IntakeError::TooLarge(format!(
                    "{} item {index} is {size} bytes; the limit is {}",
                    item.ty(),
                    limits.max_event_size
                )));
            }
            if seen_event {
                return Err(IntakeError::BadRequest(format!(
                    "item {index}: an envelope may carry only one event"
                )));
            }
            seen_event = true;
            event_id = Some(check_event(&item.payload, item.ty(), index)?);
        } else if item.ty() == &ItemType::Attachment && size > limits.max_attachment_size {
            return Err(IntakeError::TooLarge(format!(
                "attachment item {index} is {size} bytes; the limit is {}",
                limits.max_attachment_size
            )));
        }
    }
    Ok(event_id
        .flatten()
        .or(envelope.headers.event_id)
        .or_else(|| seen_event.then(EventId::new)))
}

/// Checks that an event payload is a JSON object; returns its own valid `event_id`, if any.
fn check_event(
    payload: &[u8],
    ty: &ItemType,
    index: usize,
) -> Result<Option<EventId>, IntakeError> {
    /// Only the id is needed here; the rest is checked for syntax and skipped, not built.
    #[derive(serde::Deserialize)]
    struct EventHead {
        #[serde(default)]
        event_id: Option<Value>,
    }
    let not_an_object =
        || IntakeError::BadRequest(format!("{ty} item {index} must be a JSON object"));
    // serde's derived structs also read JSON arrays; an event is an object.
    if !starts_object(payload) && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok() {
        return Err(not_an_object());
    }
    let head: EventHead = serde_json::from_slice(payload).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => not_an_object(),
        _ => IntakeError::BadRequest(format!("{ty} item {index} is not valid JSON: {e}")),
    })?;
    match head.event_id {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => id
            .parse()
            .map(Some)
            .map_err(|e| IntakeError::BadRequest(format!("{ty} item {index}: {e}"))),
        Some(other) => Err(IntakeError::BadRequest(format!(
            "{ty} item {index}: invalid event id {other}: expected a string"
        ))),
    }
}

/// Whether the JSON text starts with `{` (after whitespace).
pub(crate) fn starts_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use relay_core::{Item, ItemHeaders};

    use super::*;

    fn one_event(payload: &'static [u8]) -> Result<Option<EventId>, IntakeError> {
        let envelope = Envelope {
            headers: Default::default(),
            items: vec![Item::new(
                ItemHeaders::new(ItemType::Event),
                Bytes::from_static(payload),
            )],
        };
        check_items(&envelope, &Limits::default())
    }

    #[test]
    fn events_must_be_objects() {
        for payload in [&b"[]"[..], b"[1]", b" 1", b"\"x\""] {
            let err = one_event(payload).unwrap_err();
            assert_eq!(
                err.to_string(),
                "event item 0 must be a JSON object",
                "{payload:?}"
            );
        }
        let err = one_event(b"{").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("event item 0 is not valid JSON"),
            "{err}"
        );
        assert!(one_event(b"{}").unwrap().is_some());
    }
}
