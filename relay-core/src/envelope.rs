//! Sentry envelopes: the container format SDKs send to `/api/{project_id}/envelope/`.
//!
//! An envelope is one JSON header line followed by items. Each item is a JSON header line and a
//! payload. With a `length` header the payload is exactly that many bytes; without it, the
//! payload runs to the next newline. The last item may lack its trailing newline.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event_id::EventId;

/// Why an envelope could not be parsed. Each variant tells the client what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The body was empty.
    #[error("empty envelope")]
    Empty,
    /// The first line is not a JSON object.
    #[error("invalid envelope header: {0}")]
    InvalidHeader(String),
    /// An item header line is not a valid JSON object with a `type`.
    #[error("invalid header of item {index}: {reason}")]
    InvalidItemHeader {
        /// Zero-based position of the item in the envelope.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// An item's `length` runs past the end of the body.
    #[error("item {index} declares length {length} but only {available} bytes remain")]
    TruncatedItem {
        /// Zero-based position of the item in the envelope.
        index: usize,
        /// The declared `length`.
        length: u64,
        /// How many bytes were left.
        available: usize,
    },
    /// The byte after a payload of declared `length` is not a newline.
    #[error("item {index}: payload of declared length {length} is not followed by a newline (wrong length?)")]
    MissingNewline {
        /// Zero-based position of the item in the envelope.
        index: usize,
        /// The declared `length`.
        length: u64,
    },
    /// More items than the configured maximum.
    #[error("envelope has more than {0} items")]
    TooManyItems(usize),
}

/// The type of an envelope item, as named in its `type` header.
///
/// Unknown types are kept verbatim so they can be passed on rather than rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ItemType {
    /// An error or message event.
    Event,
    /// A performance transaction.
    Transaction,
    /// A file attached to the event (`attachment_type` says which kind).
    Attachment,
    /// A form field of a multipart upload, kept for the event.
    FormData,
    /// A single release-health session update.
    Session,
    /// Aggregated release-health sessions.
    Sessions,
    /// A standalone span (or span batch).
    Span,
    /// Structured log records.
    Log,
    /// A cron monitor check-in.
    CheckIn,
    /// Client-side discard statistics.
    ClientReport,
    /// A user report attached to an event (legacy feedback).
    UserReport,
    /// User feedback.
    Feedback,
    /// A profiling payload.
    Profile,
    /// Replay metadata.
    ReplayEvent,
    /// Replay recording.
    ReplayRecording,
    /// Browser security report (CSP and friends).
    Security,
    /// Any type this relay does not know; passed on unchanged.
    Unknown(String),
}

impl ItemType {
    /// The wire name of this type.
    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Attachment => "attachment",
            ItemType::FormData => "form_data",
            ItemType::Session => "session",
            ItemType::Sessions => "sessions",
            ItemType::Span => "span",
            ItemType::Log => "log",
            ItemType::CheckIn => "check_in",
            ItemType::ClientReport => "client_report",
            ItemType::UserReport => "user_report",
            ItemType::Feedback => "feedback",
            ItemType::Profile => "profile",
            ItemType::ReplayEvent => "replay_event",
            ItemType::ReplayRecording => "replay_recording",
            ItemType::Security => "security",
            ItemType::Unknown(name) => name,
        }
    }

    /// Whether items of this type carry an event that is normalized and gets an event id.
    pub fn is_event(&self) -> bool {
        matches!(self, ItemType::Event | ItemType::Transaction)
    }
}

impl From<&str> for ItemType {
    fn from(name: &str) -> Self {
        match name {
            "event" => ItemType::Event,
            "transaction" => ItemType::Transaction,
            "attachment" => ItemType::Attachment,
            "form_data" => ItemType::FormData,
            "session" => ItemType::Session,
            "sessions" => ItemType::Sessions,
            "span" => ItemType::Span,
            "log" => ItemType::Log,
            "check_in" => ItemType::CheckIn,
            "client_report" => ItemType::ClientReport,
            "user_report" => ItemType::UserReport,
            "feedback" => ItemType::Feedback,
            "profile" => ItemType::Profile,
            "replay_event" => ItemType::ReplayEvent,
            "replay_recording" => ItemType::ReplayRecording,
            "security" => ItemType::Security,
            other => ItemType::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ItemType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ItemType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(ItemType::from(name.as_ref()))
    }
}

/// The header line of an envelope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeHeaders {
    /// The id of the event in this envelope, if it carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// The DSN the SDK used; one of the accepted ways to authenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<String>,
    /// When the SDK sent the envelope (RFC 3339), used for clock-drift correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// Every other header (`sdk`, `trace`, ...), kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The header line of one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemHeaders {
    /// The item type.
    #[serde(rename = "type")]
    pub ty: ItemType,
    /// Payload length in bytes; without it the payload runs to the next newline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// MIME type of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// File name of an attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Kind of attachment (`event.attachment`, `event.minidump`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_type: Option<String>,
    /// Every other header (`item_count`, ...), kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ItemHeaders {
    /// Headers for a new item of the given type with no optional fields set.
    pub fn new(ty: ItemType) -> Self {
        ItemHeaders {
            ty,
            length: None,
            content_type: None,
            filename: None,
            attachment_type: None,
            other: Map::new(),
        }
    }
}

/// One item: its headers and its payload bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The parsed header line.
    pub headers: ItemHeaders,
    /// The payload, sharing the request body's buffer where possible.
    pub payload: Bytes,
}

impl Item {
    /// A new item; the `length` header is set from the payload.
    pub fn new(mut headers: ItemHeaders, payload: impl Into<Bytes>) -> Self {
        let payload = payload.into();
        headers.length = Some(payload.len() as u64);
        Item { headers, payload }
    }

    /// The item type.
    pub fn ty(&self) -> &ItemType {
        &self.headers.ty
    }
}

/// A parsed envelope.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// The envelope header line.
    pub headers: EnvelopeHeaders,
    /// The items, in order.
    pub items: Vec<Item>,
}

/// The most items one envelope may hold; a guard against pathological inputs of empty items.
pub const MAX_ITEMS: usize = 10_000;

impl Envelope {
    /// Parses an envelope from its (already decompressed) bytes.
    ///
    /// Payloads are slices of `body`, so parsing copies no payload data.
    pub fn parse(body: Bytes) -> Result<Self, EnvelopeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EnvelopeError::Empty);
        }
        let (header_line, mut pos) = split_line(&body, 0);
        let headers: EnvelopeHeaders = serde_json::from_slice(header_line)
            .map_err(|e| EnvelopeError::InvalidHeader(e.to_string()))?;

        let mut items = Vec::new();
        while pos < body.len() {
            let (line, next) = split_line(&body, pos);
            if line.iter().all(u8::is_ascii_whitespace) {
                // Blank lines between or after items carry nothing.
                pos = next;
                continue;
            }
            if items.len() == MAX_ITEMS {
                return Err(EnvelopeError::TooManyItems(MAX_ITEMS));
            }
            let index = items.len();
            let headers: ItemHeaders =
                serde_json::from_slice(line).map_err(|e| EnvelopeError::InvalidItemHeader {
                    index,
                    reason: e.to_string(),
                })?;
            let (payload, after) = read_payload(&body, next, index, headers.length)?;
            items.push(Item { headers, payload });
            pos = after;
        }
        Ok(Envelope { headers, items })
    }

    /// Writes the envelope in wire format, every item with an explicit `length`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.iter().map(|i| i.payload.len() + 64).sum());
        // Serializing these plain maps and strings cannot fail.
        serde_json::to_writer(&mut out, &self.headers).expect("envelope headers serialize");
        for item in &self.items {
            out.push(b'\n');
            let mut headers = item.headers.clone();
            headers.length = Some(item.payload.len() as u64);
            serde_json::to_writer(&mut out, &headers).expect("item headers serialize");
            out.push(b'\n');
            out.extend_from_slice(&item.payload);
        }
        out.push(b'\n');
        out
    }

    /// The first item that carries an event (`event` or `transaction`).
    pub fn event_item(&self) -> Option<&Item> {
        self.items.iter().find(|item| item.ty().is_event())
    }
}

/// Splits off the line starting at `start`: returns it without its newline and the position
/// after the newline (or the end of the body).
fn split_line(body: &Bytes, start: usize) -> (&[u8], usize) {
    match body[start..].iter().position(|&b| b == b'\n') {
        Some(offset) => (&body[start..start + offset], start + offset + 1),
        None => (&body[start..], body.len()),
    }
}

fn read_payload(
    body: &Bytes,
    start: usize,
    index: usize,
    length: Option<u64>,
) -> Result<(Bytes, usize), EnvelopeError> {
    let Some(length) = length else {
        let (line, next) = split_line(body, start);
        let end = start + line.len();
        return Ok((body.slice(start..end), next));
    };
    let available = body.len() - start;
    let len = usize::try_from(length)
        .ok()
        .filter(|&len| len <= available)
        .ok_or(EnvelopeError::TruncatedItem {
            index,
            length,
            available,
        })?;
    let end = start + len;
    match body.get(end) {
        None => Ok((body.slice(start..end), end)),
        Some(b'\n') => Ok((body.slice(start..end), end + 1)),
        // Tolerate a CRLF line ending after the payload.
        Some(b'\r') if body.get(end + 1) == Some(&b'\n') => Ok((body.slice(start..end), end + 2)),
        Some(_) => Err(EnvelopeError::MissingNewline { index, length }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn items_with_and_without_length() {
        let env = parse(
            "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
             {\"type\":\"attachment\",\"length\":10,\"filename\":\"a.txt\"}\n\
             0123\n56789\n\
             {\"type\":\"event\"}\n\
             {\"message\":\"hi\"}\n",
        )
        .unwrap();
        assert_eq!(
            env.headers.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(env.items.len(), 2);
        assert_eq!(&env.items[0].payload[..], b"0123\n56789");
        assert_eq!(env.items[0].headers.filename.as_deref(), Some("a.txt"));
        assert_eq!(&env.items[1].payload[..], b"{\"message\":\"hi\"}");
    }

    #[test]
    fn last_item_without_trailing_newline() {
        let env = parse("{}\n{\"type\":\"event\"}\n{\"a\":1}").unwrap();
        assert_eq!(&env.items[0].payload[..], b"{\"a\":1}");
        let env = parse("{}\n{\"type\":\"attachment\",\"length\":3}\nabc").unwrap();
        assert_eq!(&env.items[0].payload[..], b"abc");
    }

    #[test]
    fn header_only_envelope_has_no_items() {
        assert!(parse("{}").unwrap().items.is_empty());
        assert!(parse("{}\n").unwrap().items.is_empty());
    }

    #[test]
    fn empty_payload_with_zero_length() {
        let env = parse("{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"event\"}\n{}")
            .unwrap();
        assert_eq!(env.items.len(), 2);
        assert!(env.items[0].payload.is_empty());
    }

    #[test]
    fn unknown_item_types_are_kept() {
        let env = parse("{}\n{\"type\":\"brand_new\",\"x\":1}\npayload\n").unwrap();
        assert_eq!(env.items[0].ty(), &ItemType::Unknown("brand_new".into()));
        assert_eq!(env.items[0].headers.other["x"], 1);
        let written = env.to_vec();
        let reparsed = Envelope::parse(written.into()).unwrap();
        assert_eq!(reparsed.items[0].ty().as_str(), "brand_new");
        assert_eq!(&reparsed.items[0].payload[..], b"payload");
    }

    #[test]
    fn hyphenated_event_id_in_header() {
        let env = parse("{\"event_id\":\"9ec79c33-ec99-42ab-8353-589fcb2e04dc\"}\n").unwrap();
        assert_eq!(
            env.headers.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse("  \n"), Err(EnvelopeError::Empty));
        assert!(matches!(
            parse("garbage\n"),
            Err(EnvelopeError::InvalidHeader(_))
        ));
        assert!(matches!(
            parse("{}\n{\"notype\":1}\n{}\n"),
            Err(EnvelopeError::InvalidItemHeader { index: 0, .. })
        ));
        assert_eq!(
            parse("{}\n{\"type\":\"event\",\"length\":50}\n{}\n"),
            Err(EnvelopeError::TruncatedItem {
                index: 0,
                length: 50,
                available: 3
            })
        );
        assert_eq!(
            parse("{}\n{\"type\":\"event\",\"length\":1}\n{}\n"),
            Err(EnvelopeError::MissingNewline {
                index: 0,
                length: 1
            })
        );
        assert!(matches!(
            parse("{\"event_id\":\"nope\"}\n"),
            Err(EnvelopeError::InvalidHeader(_))
        ));
    }

    #[test]
    fn round_trip_keeps_items() {
        let env = parse("{\"sdk\":{\"name\":\"x\"}}\n{\"type\":\"event\"}\n{\"a\":1}\n{\"type\":\"session\"}\n{\"sid\":\"s\"}").unwrap();
        let again = Envelope::parse(env.to_vec().into()).unwrap();
        assert_eq!(again.headers, env.headers);
        assert_eq!(again.items.len(), 2);
        for (a, b) in again.items.iter().zip(&env.items) {
            assert_eq!(a.payload, b.payload);
            assert_eq!(a.ty(), b.ty());
        }
    }
}
