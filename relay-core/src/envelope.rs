//! Sentry envelopes: the container format SDKs send to `/api/{project_id}/envelope/`.
//!
//! An envelope is one JSON header line followed by items. Each item is a JSON header line and a
//! payload. With a `length` header the payload is exactly that many bytes; without it, the
//! payload runs to the next newline. The last item may lack its trailing newline.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

// The header lines are read by hand rather than with a derived `Deserialize`: with
// `#[serde(flatten)]` serde first buffers the whole line in an intermediate tree and then
// builds the struct and the map of other headers from it, copying every string twice. Both
// are read once per request at intake and once more when the spool is read.

/// A header line read by hand: its `Deserialize` is [`HeadersVisitor`] over `read`.
trait HeaderLine: Sized {
    /// What the line must be, for error messages.
    const EXPECTING: &'static str;
    /// Reads the line's object.
    fn read<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// The visitor of any [`HeaderLine`].
struct HeadersVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: HeaderLine> Visitor<'de> for HeadersVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::read(map)
    }
}

impl HeaderLine for EnvelopeHeaders {
    const EXPECTING: &'static str = "an object of envelope headers";
    fn read<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut headers = EnvelopeHeaders::default();
        headers.other = read_headers(map, |key, seen, map| {
            match key {
                "event_id" => headers.event_id = seen.value("event_id", map)?,
                "dsn" => headers.dsn = seen.value("dsn", map)?,
                "sent_at" => headers.sent_at = seen.value("sent_at", map)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(headers)
    }
}

impl HeaderLine for ItemHeaders {
    const EXPECTING: &'static str = "an object of item headers";
    fn read<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut ty = None;
        let mut headers = ItemHeaders::new(ItemType::Unknown(String::new()));
        headers.other = read_headers(map, |key, seen, map| {
            match key {
                "type" => ty = Some(seen.value("type", map)?),
                "length" => headers.length = seen.value("length", map)?,
                "content_type" => headers.content_type = seen.value("content_type", map)?,
                "filename" => headers.filename = seen.value("filename", map)?,
                "attachment_type" => {
                    headers.attachment_type = seen.value("attachment_type", map)?
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        headers.ty = ty.ok_or_else(|| A::Error::missing_field("type"))?;
        Ok(headers)
    }
}

impl<'de> Deserialize<'de> for EnvelopeHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeadersVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for ItemHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeadersVisitor(std::marker::PhantomData))
    }
}

/// Reads a header object key by key: `named` reads the value of a field the struct has and
/// says `true`, or says `false`; every other header is returned as sent.
fn read_headers<'de, A: MapAccess<'de>>(
    mut map: A,
    mut named: impl FnMut(&str, &mut Seen, &mut A) -> Result<bool, A::Error>,
) -> Result<Map<String, Value>, A::Error> {
    let mut other = Map::new();
    let mut seen = Seen::default();
    while let Some(HeaderKey(key)) = map.next_key()? {
        if !named(&key, &mut seen, &mut map)? {
            other.insert(key.into_owned(), map.next_value()?);
        }
    }
    Ok(other)
}

/// A header name, borrowed from the input unless it had escapes.
struct HeaderKey<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for HeaderKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = HeaderKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(HeaderKey(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(HeaderKey(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
                Ok(HeaderKey(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The named header fields read so far: a repeated one is an error, as with a derived
/// `Deserialize`.
#[derive(Default)]
struct Seen(Vec<&'static str>);

impl Seen {
    fn value<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
        &mut self,
        field: &'static str,
        map: &mut A,
    ) -> Result<T, A::Error> {
        if self.0.contains(&field) {
            return Err(A::Error::duplicate_field(field));
        }
        self.0.push(field);
        map.next_value()
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
        let mut out = Vec::with_capacity(self.wire_size_hint());
        self.write_to(&mut out);
        out
    }

    /// About how many bytes [`Envelope::write_to`] appends: the payloads plus room for the
    /// header lines, so that a buffer reserved with it rarely grows.
    pub fn wire_size_hint(&self) -> usize {
        self.items
            .iter()
            .map(|i| i.payload.len() + 64)
            .sum::<usize>()
            + 64
    }

    /// Appends the wire format to `out` (as [`Envelope::to_vec`]), so that a caller framing
    /// the envelope (a spool record) copies large payloads once, not twice.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Serializing these plain maps and strings cannot fail.
        serde_json::to_writer(&mut *out, &self.headers).expect("envelope headers serialize");
        for item in &self.items {
            out.push(b'\n');
            let mut headers = item.headers.clone();
            headers.length = Some(item.payload.len() as u64);
            serde_json::to_writer(&mut *out, &headers).expect("item headers serialize");
            out.push(b'\n');
            out.extend_from_slice(&item.payload);
        }
        out.push(b'\n');
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
    use std::path::Path;

    use super::*;

    fn parse(s: &str) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// What a derived `Deserialize` with `#[serde(flatten)]` reads: the reference for the
    /// hand-written header readers.
    #[derive(Deserialize)]
    struct DerivedEnvelopeHeaders {
        #[serde(default)]
        event_id: Option<EventId>,
        #[serde(default)]
        dsn: Option<String>,
        #[serde(default)]
        sent_at: Option<String>,
        #[serde(flatten)]
        other: Map<String, Value>,
    }

    #[derive(Deserialize)]
    struct DerivedItemHeaders {
        #[serde(rename = "type")]
        ty: ItemType,
        #[serde(default)]
        length: Option<u64>,
        #[serde(default)]
        content_type: Option<String>,
        #[serde(default)]
        filename: Option<String>,
        #[serde(default)]
        attachment_type: Option<String>,
        #[serde(flatten)]
        other: Map<String, Value>,
    }

    /// Header lines: those of every SDK capture in the fixtures, and edge cases.
    fn header_lines() -> Vec<String> {
        let mut lines: Vec<String> = [
            r#"{}"#,
            r#"{"event_id":null,"dsn":null,"sent_at":null}"#,
            r#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","x":1}"#,
            r#"{"event_id":"9ec79c33-ec99-42ab-8353-589fcb2e04dc"}"#,
            r#"{"event_id":"nope"}"#,
            r#"{"event_id":5}"#,
            r#"{"dsn":"a","dsn":"b"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","é":"é"}"#,
            r#"{"sent_at":7}"#,
            r#"{"type":"event","length":3}"#,
            r#"{"type":"attachment","length":3,"filename":"a.txt","content_type":"text/plain","attachment_type":"event.minidump","item_count":2}"#,
            r#"{"type":"event","type":"transaction"}"#,
            r#"{"length":3}"#,
            r#"{"type":"mystery","length":null,"filename":null}"#,
            r#"{"type":"event","length":-1}"#,
            r#"{"type":7}"#,
            r#"[]"#,
            r#""event""#,
            r#"null"#,
            r#"{"type":"event""#,
        ]
        .map(str::to_owned)
        .to_vec();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sdk");
        for sdk in ["python", "node"] {
            let captures = std::fs::read_dir(fixtures.join(sdk)).expect("the SDK captures exist");
            for capture in captures.flatten() {
                let dir = capture.path();
                let body = std::fs::read(dir.join("body.decompressed.bin"))
                    .or_else(|_| std::fs::read(dir.join("body.bin")));
                if let Ok(Ok(envelope)) = body.map(|b| Envelope::parse(Bytes::from(b))) {
                    lines.push(serde_json::to_string(&envelope.headers).unwrap());
                    for item in &envelope.items {
                        lines.push(serde_json::to_string(&item.headers).unwrap());
                    }
                }
            }
        }
        lines
    }

    #[test]
    fn header_readers_agree_with_derived_ones() {
        let lines = header_lines();
        assert!(
            lines.len() > 30,
            "fixture captures were read: {}",
            lines.len()
        );
        for line in &lines {
            let ours = serde_json::from_str::<EnvelopeHeaders>(line);
            let derived = serde_json::from_str::<DerivedEnvelopeHeaders>(line);
            match (ours, derived) {
                (Ok(ours), Ok(d)) => assert_eq!(
                    (ours.event_id, ours.dsn, ours.sent_at, ours.other),
                    (d.event_id, d.dsn, d.sent_at, d.other),
                    "{line}"
                ),
                (ours, derived) => assert!(ours.is_err() && derived.is_err(), "{line}"),
            }
            let ours = serde_json::from_str::<ItemHeaders>(line);
            let derived = serde_json::from_str::<DerivedItemHeaders>(line);
            match (ours, derived) {
                (Ok(ours), Ok(d)) => assert_eq!(
                    ours,
                    ItemHeaders {
                        ty: d.ty,
                        length: d.length,
                        content_type: d.content_type,
                        filename: d.filename,
                        attachment_type: d.attachment_type,
                        other: d.other,
                    },
                    "{line}"
                ),
                (ours, derived) => assert!(ours.is_err() && derived.is_err(), "{line}"),
            }
        }
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
