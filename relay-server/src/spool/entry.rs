//! What one spool record holds: who sent the envelope, when, its event id, and the envelope.
//!
//! In forward mode the record also keeps the SDK's request headers that go upstream with the
//! envelope ([`SdkHeaders`]). Fields added later are optional, so records written by an older
//! relay still read (and an older relay reading newer records fails on nothing but the
//! unknown field, which serde ignores).

use std::net::IpAddr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use relay_core::{Envelope, EventId};
use serde::{Deserialize, Serialize};

/// The request metadata stored before the envelope bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// The authenticated project.
    pub project_id: u64,
    /// The client's public key.
    pub public_key: String,
    /// When the request arrived.
    pub received: DateTime<Utc>,
    /// The event id answered to the client (generated at intake when the event had none).
    pub event_id: Option<EventId>,
    /// The client's address, for IP filters and `{{auto}}` user IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// What the SDK said about itself, forwarded upstream in forward mode (empty otherwise).
    #[serde(default, skip_serializing_if = "SdkHeaders::is_empty")]
    pub sdk: SdkHeaders,
}

/// The SDK's own request headers, kept for forwarding: the upstream sees the request as the
/// SDK sent it (its `sentry_client`, `User-Agent`, `Origin` and `Referer`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SdkHeaders {
    /// `sentry_client` of the request's authentication, e.g. `sentry.python/2.75.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Header names (lowercase) and values, in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl SdkHeaders {
    /// The request headers forwarded upstream as they were received.
    pub const FORWARDED: [&'static str; 3] = ["user-agent", "origin", "referer"];

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.client.is_none() && self.headers.is_empty()
    }
}

/// Encodes a record payload: the metadata as one JSON line, then the envelope bytes.
pub fn encode(meta: &EntryMeta, envelope: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(meta).expect("entry metadata serializes");
    out.push(b'\n');
    out.extend_from_slice(envelope);
    out
}

/// Encodes a record payload from an envelope, writing its items straight into the record:
/// an attachment is copied once (into the record), not into a wire form first.
pub fn encode_envelope(meta: &EntryMeta, envelope: &Envelope) -> Vec<u8> {
    let mut out = serde_json::to_vec(meta).expect("entry metadata serializes");
    out.reserve_exact(1 + envelope.wire_size_hint());
    out.push(b'\n');
    envelope.write_to(&mut out);
    out
}

/// Splits a record payload into metadata and envelope bytes.
pub fn decode(payload: Vec<u8>) -> Result<(EntryMeta, Bytes), String> {
    let payload = Bytes::from(payload);
    let newline = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("spool entry has no metadata line")?;
    let meta = serde_json::from_slice(&payload[..newline])
        .map_err(|e| format!("spool entry metadata: {e}"))?;
    Ok((meta, payload.slice(newline + 1..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let meta = EntryMeta {
            project_id: 42,
            public_key: "k".into(),
            received: Utc::now(),
            event_id: Some(EventId::new()),
            client_ip: Some("127.0.0.1".parse().unwrap()),
            sdk: SdkHeaders {
                client: Some("sentry.python/2.75.0".into()),
                headers: vec![("user-agent".into(), "sentry.python/2.75.0".into())],
            },
        };
        let (back, envelope) = decode(encode(&meta, b"{}\n{\"type\":\"event\"}\n{}")).unwrap();
        assert_eq!(back, meta);
        assert_eq!(&envelope[..], b"{}\n{\"type\":\"event\"}\n{}");
        assert!(decode(b"no newline".to_vec()).is_err());
    }

    #[test]
    fn records_without_sdk_headers_still_read() {
        let old = br#"{"project_id":1,"public_key":"k","received":"2026-01-01T00:00:00Z","event_id":null}"#;
        let mut record = old.to_vec();
        record.extend_from_slice(b"\n{}\n");
        let (meta, _) = decode(record).unwrap();
        assert!(meta.sdk.is_empty());
        let plain = EntryMeta {
            sdk: SdkHeaders::default(),
            ..meta
        };
        let line = encode(&plain, b"");
        assert!(
            !String::from_utf8(line).unwrap().contains("sdk"),
            "empty headers are not written"
        );
    }

    #[test]
    fn an_envelope_is_encoded_as_its_wire_form() {
        let meta = EntryMeta {
            project_id: 1,
            public_key: "k".into(),
            received: Utc::now(),
            event_id: None,
            client_ip: None,
            sdk: SdkHeaders::default(),
        };
        let envelope =
            Envelope::parse(Bytes::from_static(b"{}\n{\"type\":\"attachment\"}\nabc\n")).unwrap();
        let record = encode_envelope(&meta, &envelope);
        assert_eq!(record, encode(&meta, &envelope.to_vec()));
        let (_, back) = decode(record).unwrap();
        assert_eq!(Envelope::parse(back).unwrap().items[0].payload, "abc");
    }
}
