//! The events topic: one message per envelope item that is not an attachment, and
//! [`build_messages`], which turns a processed envelope into all of its messages.

use base64::Engine;
use relay_core::{EventId, ItemHeaders, ItemType};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::attachments::{attachment_messages, AttachmentRef, ChunkContext};
use super::{rfc3339, to_json, KafkaMessage, Topic, FORMAT_VERSION};
use crate::managed::ManagedEnvelope;

/// A message on the events topic: one envelope item that is not an attachment.
#[derive(Serialize)]
struct ItemMessage<'a> {
    version: u32,
    #[serde(rename = "type")]
    ty: &'a str,
    event_id: Option<String>,
    project_id: u64,
    public_key: &'a str,
    received: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
    item_headers: &'a ItemHeaders,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attachments: &'a [AttachmentRef<'a>],
}

/// Builds every message for one processed envelope.
///
/// `fallback_key` keys envelopes that carry no event id at all (a lone session, say); it is
/// called only for those, as a random id costs a system call.
pub fn build_messages(
    managed: &ManagedEnvelope,
    chunk_size: usize,
    fallback_key: impl FnOnce() -> EventId,
) -> Vec<KafkaMessage> {
    let event_id = managed.event_id.or(managed.envelope.headers.event_id);
    let key = event_id.unwrap_or_else(fallback_key).to_string();
    let event_id = event_id.map(|id| id.to_string());
    let received = rfc3339(managed.meta.received);

    let mut messages = Vec::new();
    let mut attachments = Vec::new();
    let chunk_context = ChunkContext {
        event_id: event_id.clone(),
        project_id: managed.meta.project_id,
        key: &key,
        chunk_size,
    };
    for item in managed
        .envelope
        .items
        .iter()
        .filter(|i| i.ty() == &ItemType::Attachment)
    {
        attachments.push(attachment_messages(item, &chunk_context, &mut messages));
    }

    let mut attachments_pending = Some(attachments);
    for item in managed
        .envelope
        .items
        .iter()
        .filter(|i| i.ty() != &ItemType::Attachment)
    {
        let is_event = item.ty().is_event();
        // The event item carries the references; without one, the first item does.
        let attachments = if is_event || managed.event.is_none() {
            attachments_pending.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (payload, payload_base64) = if is_event {
            (None, None)
        } else {
            raw_payload(&item.payload)
        };
        let message = ItemMessage {
            version: FORMAT_VERSION,
            ty: item.ty().as_str(),
            event_id: event_id.clone(),
            project_id: managed.meta.project_id,
            public_key: &managed.meta.public_key,
            received: received.clone(),
            event: if is_event {
                managed.event.as_ref()
            } else {
                None
            },
            group_id: if is_event {
                managed.group_id.as_deref()
            } else {
                None
            },
            payload,
            payload_base64,
            item_headers: &item.headers,
            attachments: &attachments,
        };
        messages.push(KafkaMessage {
            topic: Topic::Events,
            key: key.clone(),
            payload: to_json(&message),
        });
    }
    messages
}

/// JSON payloads are embedded as they are; anything else is base64.
fn raw_payload(payload: &[u8]) -> (Option<&RawValue>, Option<String>) {
    match serde_json::from_slice::<&RawValue>(payload) {
        Ok(raw) => (Some(raw), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(payload)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::{DateTime, Utc};
    use relay_core::Envelope;
    use serde_json::json;

    use super::*;
    use crate::managed::RequestMeta;

    fn managed(body: &str, event: Option<Value>) -> ManagedEnvelope {
        let envelope = Envelope::parse(Bytes::copy_from_slice(body.as_bytes())).unwrap();
        let meta = RequestMeta {
            project_id: 42,
            public_key: "abc123def456abc123def456abc123de".into(),
            received: DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            client_ip: None,
            sent_at: None,
            sdk: Default::default(),
        };
        let (mut managed, _rx) = ManagedEnvelope::new(envelope, meta, event, 0);
        managed.event_id = managed.envelope.headers.event_id;
        managed
    }

    fn json_of(message: &KafkaMessage) -> Value {
        serde_json::from_slice(&message.payload).unwrap()
    }

    #[test]
    fn event_with_attachments_is_chunked_and_referenced() {
        let body = "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
                    {\"type\":\"event\"}\n{\"message\":\"hi\"}\n\
                    {\"type\":\"attachment\",\"length\":10,\"filename\":\"a.bin\"}\n0123456789\n\
                    {\"type\":\"attachment\",\"length\":0,\"filename\":\"empty\"}\n\n";
        let event = json!({"message": "hi", "event_id": "9ec79c33ec9942ab8353589fcb2e04dc"});
        let messages = build_messages(&managed(body, Some(event)), 4, EventId::new);
        let topics: Vec<_> = messages.iter().map(|m| m.topic).collect();
        assert_eq!(
            topics,
            [
                Topic::Attachments,
                Topic::Attachments,
                Topic::Attachments,
                Topic::Attachments,
                Topic::Events
            ]
        );
        assert!(messages
            .iter()
            .all(|m| m.key == "9ec79c33ec9942ab8353589fcb2e04dc"));

        let chunks: Vec<_> = messages[..3].iter().map(json_of).collect();
        let data: Vec<u8> = chunks
            .iter()
            .flat_map(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(c["data"].as_str().unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(data, b"0123456789");
        assert_eq!(chunks[2]["chunk_index"], 2);
        assert_eq!(chunks[2]["chunk_count"], 3);
        assert_eq!(json_of(&messages[3])["chunk_count"], 1);
        assert_eq!(json_of(&messages[3])["data"], "");

        let event = json_of(&messages[4]);
        assert_eq!(event["type"], "event");
        assert_eq!(event["event"]["message"], "hi");
        assert_eq!(event["project_id"], 42);
        assert_eq!(event["received"], "2026-11-25T12:00:00.000Z");
        assert_eq!(event["attachments"][0]["name"], "a.bin");
        assert_eq!(event["attachments"][0]["size"], 10);
        assert_eq!(event["attachments"][0]["id"], chunks[0]["attachment_id"]);
        assert_eq!(event["attachments"][1]["chunks"], 1);
    }

    #[test]
    fn other_items_carry_their_payload() {
        let body = "{}\n{\"type\":\"session\"}\n{\"sid\":\"abc\",\"status\":\"ok\"}\n\
                    {\"type\":\"mystery\",\"length\":3}\n\x01\x02\x03\n";
        let fallback = EventId::new();
        let messages = build_messages(&managed(body, None), 1024, || fallback);
        assert_eq!(messages.len(), 2);
        assert!(messages.iter().all(|m| m.key == fallback.to_string()));
        let session = json_of(&messages[0]);
        assert_eq!(session["type"], "session");
        assert_eq!(session["payload"]["sid"], "abc");
        assert_eq!(session["event_id"], Value::Null);
        let mystery = json_of(&messages[1]);
        assert_eq!(mystery["type"], "mystery");
        assert_eq!(mystery["payload_base64"], "AQID");
        assert_eq!(mystery["item_headers"]["length"], 3);
    }
}
