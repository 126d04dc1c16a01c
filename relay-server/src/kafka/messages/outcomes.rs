//! The outcomes topic: one message per (minute, project, key, category, outcome, reason)
//! counter, as summed by the OutcomeAggregator.

use chrono::{DateTime, SecondsFormat, Utc};
use relay_core::{DataCategory, Outcome};
use serde::Serialize;

use super::{to_json, KafkaMessage, Topic};

/// One counter of the outcomes topic.
#[derive(Serialize)]
struct OutcomeMessage<'a> {
    version: u32,
    timestamp: String,
    project_id: u64,
    key_id: Option<&'a str>,
    category: DataCategory,
    outcome: Outcome,
    reason: Option<&'a str>,
    quantity: u64,
    instance_id: &'a str,
}

/// What one outcome counter says; borrowed from the aggregator's bucket.
pub struct OutcomeCount<'a> {
    /// The minute counted (truncated to the minute).
    pub minute: DateTime<Utc>,
    /// The project.
    pub project_id: u64,
    /// The public key, when known.
    pub key: Option<&'a str>,
    /// What was counted.
    pub category: DataCategory,
    /// What happened.
    pub outcome: Outcome,
    /// Why (for all but `accepted`).
    pub reason: Option<&'a str>,
    /// Units: items, or bytes for `attachment`.
    pub quantity: u64,
    /// The relay that counted (`instance_id`): consumers sum the counts of a fleet's relays.
    pub instance_id: &'a str,
}

/// The message for one counter, keyed by its project (so one project's counts stay in order).
pub fn outcome_message(count: &OutcomeCount<'_>) -> KafkaMessage {
    let message = OutcomeMessage {
        // The outcome format has its own version, independent of the envelope formats'.
        version: 1,
        timestamp: count.minute.to_rfc3339_opts(SecondsFormat::Secs, true),
        project_id: count.project_id,
        key_id: count.key,
        category: count.category,
        outcome: count.outcome,
        reason: count.reason,
        quantity: count.quantity,
        instance_id: count.instance_id,
    };
    KafkaMessage {
        topic: Topic::Outcomes,
        key: count.project_id.to_string(),
        payload: to_json(&message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_message_keeps_its_fields_and_their_order() {
        let count = OutcomeCount {
            minute: "2026-11-25T12:34:00Z".parse().unwrap(),
            project_id: 42,
            key: Some("abc"),
            category: DataCategory::Error,
            outcome: Outcome::RateLimited,
            reason: Some("key_quota"),
            quantity: 15,
            instance_id: "relay-a:3000",
        };
        let message = outcome_message(&count);
        assert_eq!(message.topic, Topic::Outcomes);
        assert_eq!(message.key, "42");
        assert_eq!(
            std::str::from_utf8(&message.payload).unwrap(),
            r#"{"version":1,"timestamp":"2026-11-25T12:34:00Z","project_id":42,"key_id":"abc","category":"error","outcome":"rate_limited","reason":"key_quota","quantity":15,"instance_id":"relay-a:3000"}"#
        );
    }

    #[test]
    fn accepted_outcome_has_null_key_and_reason() {
        let count = OutcomeCount {
            minute: "2026-11-25T12:34:00Z".parse().unwrap(),
            project_id: 7,
            key: None,
            category: DataCategory::Attachment,
            outcome: Outcome::Accepted,
            reason: None,
            quantity: 1024,
            instance_id: "relay-a:3000",
        };
        let payload = outcome_message(&count).payload;
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            r#"{"version":1,"timestamp":"2026-11-25T12:34:00Z","project_id":7,"key_id":null,"category":"attachment","outcome":"accepted","reason":null,"quantity":1024,"instance_id":"relay-a:3000"}"#
        );
    }
}
