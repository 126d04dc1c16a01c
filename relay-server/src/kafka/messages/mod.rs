//! The messages the relay publishes, one module per topic; `docs/kafka.md` documents them
//! with JSON Schemas (`docs/schemas/`), and these structs are their only definition.
//!
//! All messages of one envelope share one key (the event id), so they land on one partition
//! in order: attachment chunks first, then the items that reference them.

pub mod attachments;
pub mod events;
pub mod issues;
pub mod outcomes;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Version of the envelope message formats (events, attachments); bumped on incompatible
/// changes.
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

pub(super) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn to_json(message: &impl Serialize) -> Vec<u8> {
    // These structs hold only strings, numbers and JSON values: serialization cannot fail.
    serde_json::to_vec(message).expect("kafka message serializes")
}
