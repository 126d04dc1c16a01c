//! The legacy store endpoint's body: one JSON event, wrapped in a one-item envelope.

use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, Item, ItemHeaders, ItemType};
use serde_json::Value;

use super::IntakeError;

/// Wraps a store request's JSON event in a one-item envelope (a transaction if it says so).
pub fn envelope_from_event(body: Bytes) -> Result<Envelope, IntakeError> {
    /// Only the type is needed; the rest is checked for syntax and skipped, not built.
    #[derive(serde::Deserialize)]
    struct EventHead {
        #[serde(default, rename = "type")]
        ty: Option<Value>,
    }
    if !super::items::starts_object(&body)
        && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
    {
        return Err(IntakeError::BadRequest(
            "event must be a JSON object".to_owned(),
        ));
    }
    let head: EventHead = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            IntakeError::BadRequest("event must be a JSON object".to_owned())
        }
        _ => IntakeError::BadRequest(format!("event is not valid JSON: {e}")),
    })?;
    let ty = match head.ty.as_ref().and_then(Value::as_str) {
        Some("transaction") => ItemType::Transaction,
        _ => ItemType::Event,
    };
    Ok(Envelope {
        headers: EnvelopeHeaders::default(),
        items: vec![Item::new(ItemHeaders::new(ty), body)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_transactions() {
        let envelope = envelope_from_event(Bytes::from_static(br#"{"type":"transaction"}"#));
        assert_eq!(envelope.unwrap().items[0].ty(), &ItemType::Transaction);
        let envelope = envelope_from_event(Bytes::from_static(br#"{"message":"x"}"#));
        assert_eq!(envelope.unwrap().items[0].ty(), &ItemType::Event);
    }

    #[test]
    fn not_an_object_or_not_json() {
        let err = envelope_from_event(Bytes::from_static(b"[1]")).unwrap_err();
        assert_eq!(err.to_string(), "event must be a JSON object");
        let err = envelope_from_event(Bytes::from_static(b"{")).unwrap_err();
        assert!(
            err.to_string().starts_with("event is not valid JSON"),
            "{err}"
        );
    }
}
