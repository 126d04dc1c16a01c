//! The messages the relay publishes; `docs/kafka.md` documents them with JSON Schemas.
//!
//! All messages of one envelope share one key (the event id), so they land on one partition
//! in order: attachment chunks first, then the items that reference them.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use relay_core::{EventId, Item, ItemHeaders, ItemType};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::managed::ManagedEnvelope;

/// Version of the message formats below; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The logical topics; their names come from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Events and every other non-attachment item.
    Events,
    /// Attachment chunks.
    Attachments,
    /// Aggregated outcomes.
    Outcomes,
    /// Issue aggregates.
    Issues,
}

/// One message ready to produce.
#[derive(Debug)]
pub struct KafkaMessage {
    /// Where it goes.
    pub topic: Topic,
    /// The partitioning key: the event id in 32 hex digits.
    pub key: String,
    /// The JSON value.
    pub payload: Vec<u8>,
}

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

/// How an item message points at an attachment's chunks.
#[derive(Serialize)]
struct AttachmentRef<'a> {
    id: String,
    name: &'a str,
    content_type: &'a str,
    attachment_type: &'a str,
    size: usize,
    chunks: usize,
}

/// A message on the attachments topic: one chunk of one attachment.
#[derive(Serialize)]
struct ChunkMessage<'a> {
    version: u32,
    event_id: Option<String>,
    project_id: u64,
    attachment_id: &'a str,
    name: &'a str,
    content_type: &'a str,
    attachment_type: &'a str,
    size: usize,
    chunk_index: usize,
    chunk_count: usize,
    data: String,
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
    for item in managed
        .envelope
        .items
        .iter()
        .filter(|i| i.ty() == &ItemType::Attachment)
    {
        let reference = attachment_ref(item, chunk_size);
        for (index, chunk) in chunks(&item.payload, chunk_size).enumerate() {
            let message = ChunkMessage {
                version: FORMAT_VERSION,
                event_id: event_id.clone(),
                project_id: managed.meta.project_id,
                attachment_id: &reference.id,
                name: reference.name,
                content_type: reference.content_type,
                attachment_type: reference.attachment_type,
                size: reference.size,
                chunk_index: index,
                chunk_count: reference.chunks,
                data: base64::engine::general_purpose::STANDARD.encode(chunk),
            };
            messages.push(KafkaMessage {
                topic: Topic::Attachments,
                key: key.clone(),
                payload: to_json(&message),
            });
        }
        attachments.push(reference);
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

fn attachment_ref(item: &Item, chunk_size: usize) -> AttachmentRef<'_> {
    AttachmentRef {
        id: uuid::Uuid::new_v4().simple().to_string(),
        name: item.headers.filename.as_deref().unwrap_or("attachment"),
        content_type: item
            .headers
            .content_type
            .as_deref()
            .unwrap_or("application/octet-stream"),
        attachment_type: item
            .headers
            .attachment_type
            .as_deref()
            .unwrap_or("event.attachment"),
        size: item.payload.len(),
        chunks: item.payload.len().div_ceil(chunk_size).max(1),
    }
}

/// Splits `data` into chunks of `size`; an empty attachment is one empty chunk.
fn chunks(data: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    let empty: &[u8] = &[];
    let first_if_empty = data.is_empty().then_some(empty);
    first_if_empty.into_iter().chain(data.chunks(size))
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

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn to_json(message: &impl Serialize) -> Vec<u8> {
    // These structs hold only strings, numbers and JSON values: serialization cannot fail.
    serde_json::to_vec(message).expect("kafka message serializes")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
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
