//! The issues topic: the counts of one group (project, fingerprint) in one window.
//!
//! relay-processing's windows produce [`IssueAggregate`]s, which know nothing of Kafka; this
//! is their message format.

use relay_core::EventId;
use relay_processing::aggregate::IssueAggregate;
use serde::Serialize;

use super::{to_json, KafkaMessage, Topic};

/// One message of the issues topic; fields as in `docs/schemas/issue.schema.json`.
#[derive(Serialize)]
struct IssueMessage<'a> {
    project_id: u64,
    group_id: &'a str,
    window_start: f64,
    window_end: f64,
    count: u64,
    first_seen: f64,
    last_seen: f64,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    culprit: Option<&'a str>,
    level: &'a str,
    platform: &'a str,
    sample_event_id: &'a EventId,
    instance_id: &'a str,
}

/// The message for one aggregate, keyed by its group (so one group's windows stay in order);
/// `instance_id` names the relay that counted it.
pub fn issue_message(issue: &IssueAggregate, instance_id: &str) -> KafkaMessage {
    let message = IssueMessage {
        project_id: issue.project_id,
        group_id: &issue.group_id,
        window_start: issue.window_start,
        window_end: issue.window_end,
        count: issue.count,
        first_seen: issue.first_seen,
        last_seen: issue.last_seen,
        title: &issue.title,
        culprit: issue.culprit.as_deref(),
        level: &issue.level,
        platform: &issue.platform,
        sample_event_id: &issue.sample_event_id,
        instance_id,
    };
    KafkaMessage {
        topic: Topic::Issues,
        key: issue.group_id.clone(),
        payload: to_json(&message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregate(culprit: Option<&str>) -> IssueAggregate {
        IssueAggregate {
            project_id: 42,
            group_id: "0123456789abcdef0123456789abcdef".into(),
            window_start: 1_764_072_000.0,
            window_end: 1_764_072_010.0,
            count: 3,
            first_seen: 1_764_072_001.5,
            last_seen: 1_764_072_009.25,
            title: "ZeroDivisionError: division by zero".into(),
            culprit: culprit.map(str::to_owned),
            level: "error".into(),
            platform: "python".into(),
            sample_event_id: "8be12c149f1d40de8c80ed204da87a62".parse().unwrap(),
        }
    }

    #[test]
    fn issue_message_keeps_its_fields_and_their_order() {
        let message = issue_message(&aggregate(Some("__main__ in inner_fail")), "relay-a:3000");
        assert_eq!(message.topic, Topic::Issues);
        assert_eq!(message.key, "0123456789abcdef0123456789abcdef");
        assert_eq!(
            std::str::from_utf8(&message.payload).unwrap(),
            r#"{"project_id":42,"group_id":"0123456789abcdef0123456789abcdef","window_start":1764072000.0,"window_end":1764072010.0,"count":3,"first_seen":1764072001.5,"last_seen":1764072009.25,"title":"ZeroDivisionError: division by zero","culprit":"__main__ in inner_fail","level":"error","platform":"python","sample_event_id":"8be12c149f1d40de8c80ed204da87a62","instance_id":"relay-a:3000"}"#
        );
    }

    #[test]
    fn issue_message_leaves_out_a_missing_culprit() {
        let message = issue_message(&aggregate(None), "relay-a:3000");
        let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert!(json.get("culprit").is_none(), "{json}");
        assert_eq!(json["title"], "ZeroDivisionError: division by zero");
    }
}
