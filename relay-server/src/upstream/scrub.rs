//! `upstream.process: scrub`: the project's inbound filters and PII rules, applied at the edge
//! so that what they remove never leaves its network.
//!
//! Only the event item is scrubbed (attachments and minidumps go as received); the client's
//! address is not forwarded when the project's PII rules remove IP addresses.

use bytes::Bytes;
use relay_processing::filter::{should_filter, FilterContext};

use crate::managed::{ManagedEnvelope, Rejection};
use crate::processing::ProcessingSettings;

/// What scrubbing decided about the envelope's request.
#[derive(Debug, PartialEq, Eq)]
pub struct Scrubbed {
    /// Whether the client's address may go upstream (`X-Forwarded-For`).
    pub forward_client_ip: bool,
}

/// Filters the envelope's event (a filtered one is refused with the filter's name), scrubs it
/// and writes it back into the envelope's event item.
pub fn scrub(
    envelope: &mut ManagedEnvelope,
    settings: &ProcessingSettings,
) -> Result<Scrubbed, Rejection> {
    let project = settings.project(envelope.meta.project_id);
    let pii = project.pii.config();
    let scrubbed = Scrubbed {
        forward_client_ip: !(pii.enabled && pii.ip_addresses),
    };
    let Some(event) = envelope.event.as_mut() else {
        return Ok(scrubbed);
    };
    let context = FilterContext {
        client_ip: envelope.meta.client_ip,
    };
    should_filter(event, &context, &project.filters)
        .map_err(|reason| Rejection::Filtered(reason.name()))?;
    let replaced = project.pii.scrub(event);
    if replaced > 0 {
        crate::metrics::count_pii_scrubbed(replaced);
    }
    let payload = Bytes::from(serde_json::to_vec(event).expect("JSON values serialize"));
    if let Some(item) = envelope
        .envelope
        .items
        .iter_mut()
        .find(|item| item.ty().is_event())
    {
        item.payload = payload;
    }
    Ok(scrubbed)
}

#[cfg(test)]
mod tests {
    use relay_core::envelope::{Item, ItemHeaders};
    use relay_core::{Config, Envelope, ItemType};
    use serde_json::json;

    use super::*;
    use crate::managed::RequestMeta;

    fn settings() -> ProcessingSettings {
        let mut config = Config::default();
        config.projects.push(
            serde_json::from_value(json!({
                "id": 1, "keys": ["abc123def456abc123def456abc123de"],
                "filters": {"error_messages": ["*ignore me*"]},
                "pii": {"ip_addresses": true}
            }))
            .unwrap(),
        );
        ProcessingSettings::new(&config)
    }

    fn managed(project_id: u64, event: serde_json::Value) -> ManagedEnvelope {
        let payload = serde_json::to_vec(&event).unwrap();
        let envelope = Envelope {
            items: vec![Item::new(ItemHeaders::new(ItemType::Event), payload)],
            ..Envelope::default()
        };
        let meta = RequestMeta {
            client_ip: Some("203.0.113.7".parse().unwrap()),
            ..RequestMeta::for_test(project_id)
        };
        ManagedEnvelope::new(envelope, meta, Some(event), 0).0
    }

    #[test]
    fn secrets_and_addresses_are_gone_from_the_forwarded_bytes() {
        let event = json!({
            "message": "boom",
            "user": {"ip_address": "203.0.113.7"},
            "exception": {"values": [{"type": "E", "stacktrace": {"frames": [
                {"function": "login", "vars": {"password": "hunter2-secret", "user": "bob"}}
            ]}}]}
        });
        let mut envelope = managed(1, event);
        let outcome = scrub(&mut envelope, &settings()).unwrap();
        assert!(!outcome.forward_client_ip);
        let wire = String::from_utf8(envelope.envelope.to_vec()).unwrap();
        assert!(!wire.contains("hunter2-secret"), "{wire}");
        assert!(!wire.contains("203.0.113.7"), "{wire}");
        assert!(wire.contains("bob"), "{wire}");
        envelope.accept();
    }

    #[test]
    fn filtered_events_are_refused_with_the_filters_name() {
        let mut envelope = managed(1, json!({"message": "please ignore me now"}));
        let Err(Rejection::Filtered(name)) = scrub(&mut envelope, &settings()) else {
            panic!("the error_messages filter applies");
        };
        assert_eq!(name, "error-message");
        envelope.accept();
        // Another project keeps its (default) rules: addresses go upstream.
        let mut other = managed(2, json!({"message": "please ignore me now"}));
        assert!(scrub(&mut other, &settings()).unwrap().forward_client_ip);
        other.accept();
    }
}
