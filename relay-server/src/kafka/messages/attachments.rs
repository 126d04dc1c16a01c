//! The attachments topic: one message per chunk of an attachment, and the reference to an
//! attachment's chunks that its envelope's item message carries.

use base64::Engine;
use relay_core::Item;
use serde::Serialize;

use super::{to_json, KafkaMessage, Topic, FORMAT_VERSION};

/// How an item message points at an attachment's chunks.
#[derive(Serialize)]
pub struct AttachmentRef<'a> {
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

/// Envelope facts every chunk message repeats.
pub struct ChunkContext<'a> {
    /// The envelope's event id, if it has one.
    pub event_id: Option<String>,
    /// The project.
    pub project_id: u64,
    /// The partitioning key of the envelope's messages.
    pub key: &'a str,
    /// Bytes per chunk.
    pub chunk_size: usize,
}

/// Appends the chunk messages of one attachment `item` to `messages`; returns the reference
/// its envelope's item message carries.
pub fn attachment_messages<'a>(
    item: &'a Item,
    context: &ChunkContext<'_>,
    messages: &mut Vec<KafkaMessage>,
) -> AttachmentRef<'a> {
    let reference = attachment_ref(item, context.chunk_size);
    for (index, chunk) in chunks(&item.payload, context.chunk_size).enumerate() {
        let message = ChunkMessage {
            version: FORMAT_VERSION,
            event_id: context.event_id.clone(),
            project_id: context.project_id,
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
            key: context.key.to_owned(),
            payload: to_json(&message),
        });
    }
    reference
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
