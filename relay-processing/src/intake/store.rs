//! The legacy store endpoint's body: one JSON event, wrapped in a one-item envelope.

use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, Item, ItemHeaders, ItemType};
use serde_json::Value;

use super::IntakeError;

/// Wraps a store request's JSON event in a one-item envelope (a transaction if it says so).
///
/// The event is parsed whole (unlike an envelope's event, which intake only skims): the legacy
/// endpoint is rare, and so a store event too deep or not UTF-8 is refused here with 400.
pub fn envelope_from_event(body: Bytes) -> Result<Envelope, IntakeError> {
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| IntakeError::BadRequest(format!("event is not valid JSON: {e}")))?;
    let Some(object) = event.as_object() else {
        return Err(IntakeError::BadRequest(
            "event must be a JSON object".to_owned(),
        ));
    };
    let ty = match object.get("type").and_then(Value::as_str) {
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
