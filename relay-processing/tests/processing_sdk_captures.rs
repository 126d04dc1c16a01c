//! Issue 7 on real traffic: the events of the sentry-python and @sentry/node captures
//! (tests/fixtures/sdk) through filters, normalization, PII scrubbing, grouping and
//! aggregation, with before/after assertions.

mod common;

use std::path::PathBuf;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use relay_core::{Envelope, EventId, ItemType};
use relay_processing::aggregate::{Aggregator, AggregatorConfig, IssueEvent};
use relay_processing::filter::{self, FilterConfig, FilterContext, FilterReason, GlobPatterns};
use relay_processing::grouping;
use relay_processing::normalize::timestamps::parse_sent_at;
use relay_processing::normalize::{
    normalize_event_full, unix_seconds, NormalizeConfig, NormalizeContext, NormalizeOptions,
};
use relay_processing::pii::{scrub_event, PiiConfig};
use serde_json::{json, Value};

fn captures_dir() -> PathBuf {
    common::fixture_dir("sdk")
}

/// One capture's event item, as the SDK sent it.
struct Capture {
    name: String,
    envelope: Envelope,
    event: Value,
    is_transaction: bool,
}

impl Capture {
    fn load(name: &str) -> Capture {
        let dir = captures_dir().join(name);
        let body = std::fs::read(dir.join("body.decompressed.bin"))
            .or_else(|_| std::fs::read(dir.join("body.bin")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let envelope = Envelope::parse(Bytes::from(body)).unwrap();
        let item = envelope.event_item().expect("capture has an event");
        Capture {
            name: name.to_owned(),
            event: serde_json::from_slice(&item.payload).unwrap(),
            is_transaction: item.ty() == &ItemType::Transaction,
            envelope,
        }
    }

    /// Every capture with an event or transaction item.
    fn all() -> Vec<Capture> {
        let mut names = Vec::new();
        for sdk in ["python", "node"] {
            for entry in std::fs::read_dir(captures_dir().join(sdk)).expect("fixtures/sdk present")
            {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    names.push(format!(
                        "{sdk}/{}",
                        path.file_name().unwrap().to_string_lossy()
                    ));
                }
            }
        }
        names.sort();
        names
            .into_iter()
            .filter(|name| {
                let dir = captures_dir().join(name);
                let body = std::fs::read(dir.join("body.decompressed.bin"))
                    .or_else(|_| std::fs::read(dir.join("body.bin")))
                    .unwrap();
                Envelope::parse(Bytes::from(body))
                    .unwrap()
                    .event_item()
                    .is_some()
            })
            .map(|name| Capture::load(&name))
            .collect()
    }

    fn sent_at(&self) -> DateTime<Utc> {
        parse_sent_at(
            self.envelope
                .headers
                .sent_at
                .as_deref()
                .expect("SDKs send sent_at"),
        )
        .unwrap()
    }

    /// Normalizes a copy as if received `delay` after the SDK sent it.
    fn normalized_after(&self, delay: Duration, sent_at: bool) -> (Value, EventId) {
        let mut event = self.event.clone();
        let ctx = NormalizeContext {
            received: self.sent_at() + delay,
            envelope_event_id: self.envelope.headers.event_id,
            is_transaction: self.is_transaction,
        };
        let options = NormalizeOptions {
            sent_at: sent_at.then(|| self.sent_at()),
            client_ip: Some("192.0.2.10".parse().unwrap()),
            config: NormalizeConfig::default(),
        };
        let id = normalize_event_full(&mut event, &ctx, &options)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        (event, id)
    }

    fn normalized(&self) -> Value {
        self.normalized_after(Duration::milliseconds(300), true).0
    }
}

#[test]
fn real_sdk_events_normalize_without_notes() {
    let captures = Capture::all();
    assert!(captures.len() >= 13, "found {}", captures.len());
    for capture in &captures {
        let name = &capture.name;
        let (event, id) = capture.normalized_after(Duration::milliseconds(300), true);
        // Before: ids and timestamps as each SDK writes them; after: the canonical forms.
        assert_eq!(Some(id), capture.envelope.headers.event_id, "{name}");
        assert_eq!(event["event_id"], id.to_string(), "{name}");
        let sent = unix_seconds(capture.sent_at());
        let timestamp = event["timestamp"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: timestamp"));
        assert!(
            (sent - 1.0..=sent).contains(&timestamp),
            "{name}: {timestamp} vs sent {sent}"
        );
        let received = event["received"].as_f64().unwrap();
        assert!(
            (received - (sent + 0.3)).abs() < 0.002,
            "{name}: received {received}"
        );
        assert_eq!(event["platform"], capture.event["platform"], "{name}");
        assert_eq!(event["release"], "capture-test@1.0.0", "{name}");
        assert_eq!(event["environment"], "capture", "{name}");
        let expected_type = if capture.is_transaction {
            "transaction"
        } else if capture.event.get("exception").is_some() {
            "error"
        } else {
            "default"
        };
        assert_eq!(event["type"], expected_type, "{name}");
        // A real SDK's event needs no repair.
        assert!(event.get("errors").is_none(), "{name}: {}", event["errors"]);
        if capture.is_transaction {
            assert!(
                event["start_timestamp"].as_f64().unwrap() <= timestamp,
                "{name}"
            );
        } else {
            assert!(event["level"].is_string(), "{name}");
        }
        // Frames survive untouched in number and order.
        let frames = |e: &Value| e["exception"]["values"][0]["stacktrace"]["frames"].clone();
        assert_eq!(frames(&event), frames(&capture.event), "{name}");
    }
}

#[test]
fn oversized_extra_is_trimmed_with_its_size_in_meta() {
    for (name, original) in [("python/0010_event", 100_000), ("node/0006_event", 40_000)] {
        let capture = Capture::load(name);
        assert_eq!(
            capture.event["extra"]["blob"].as_str().unwrap().len(),
            original,
            "{name}: before"
        );
        let event = capture.normalized();
        let blob = event["extra"]["blob"].as_str().unwrap();
        assert_eq!(blob.len(), 8192, "{name}: after");
        assert!(blob.ends_with("xxx..."));
        assert_eq!(
            event["_meta"]["extra"]["blob"][""],
            json!({"len": original, "rem": [["!limit", "s", 8189, 8192]]}),
            "{name}"
        );
        // Nothing else was touched.
        assert_eq!(event["message"], capture.event["message"]);
        assert_eq!(
            event["_meta"].as_object().unwrap().len(),
            1,
            "{name}: {}",
            event["_meta"]
        );
    }
}

#[test]
fn clock_drift_and_timestamp_bounds_on_a_real_event() {
    let capture = Capture::load("python/0002_event");
    let sdk_timestamp = 1_795_632_904.554; // "2026-11-25T18:55:04.554249Z"

    // Received 40 days after the SDK thought it sent: with `sent_at`, the SDK clock is
    // corrected and the event keeps its distance to the send time.
    let (event, _) = capture.normalized_after(Duration::days(40), true);
    let expected = sdk_timestamp + 40.0 * 86400.0;
    assert!(
        (event["timestamp"].as_f64().unwrap() - expected).abs() < 0.002,
        "{}",
        event["timestamp"]
    );
    assert_eq!(event["errors"][0]["type"], "clock_drift");

    // Without `sent_at` there is nothing to correct with: too old, clamped and noted.
    let (event, _) = capture.normalized_after(Duration::days(40), false);
    assert_eq!(event["timestamp"], event["received"]);
    assert_eq!(event["errors"][0]["type"], "past_timestamp");
    assert_eq!(event["errors"][0]["value"], sdk_timestamp);
}

#[test]
fn default_filters_let_real_events_through_and_configured_ones_catch_them() {
    let ctx = FilterContext {
        client_ip: Some("127.0.0.1".parse().unwrap()),
    };
    for capture in Capture::all() {
        assert_eq!(
            filter::should_filter(&capture.event, &ctx, &FilterConfig::default()),
            Ok(()),
            "{}",
            capture.name
        );
    }
    let crash = Capture::load("python/0002_event").event;
    let message = Capture::load("python/0001_event").event;
    let globs = |p: &str| GlobPatterns::new(vec![p.to_owned()]).unwrap();

    let config = FilterConfig {
        error_messages: globs("*division by zero"),
        ..Default::default()
    };
    assert_eq!(
        filter::should_filter(&crash, &ctx, &config),
        Err(FilterReason::ErrorMessage)
    );
    assert_eq!(filter::should_filter(&message, &ctx, &config), Ok(()));

    let config = FilterConfig {
        releases: globs("capture-test@1.*"),
        ..Default::default()
    };
    assert_eq!(
        filter::should_filter(&message, &ctx, &config),
        Err(FilterReason::ReleaseVersion)
    );

    let config = FilterConfig {
        client_ips: serde_json::from_value(json!(["127.0.0.0/8"])).unwrap(),
        ..Default::default()
    };
    assert_eq!(
        filter::should_filter(&crash, &ctx, &config),
        Err(FilterReason::ClientIp)
    );

    // The localhost filter reads the event: a real event from a local dev server.
    let mut local = message.clone();
    local["request"] = json!({"url": "http://localhost:8000/checkout", "method": "GET"});
    let config = FilterConfig {
        localhost: true,
        ..Default::default()
    };
    assert_eq!(filter::should_filter(&message, &ctx, &config), Ok(()));
    assert_eq!(
        filter::should_filter(&local, &ctx, &config).map_err(FilterReason::name),
        Err("localhost")
    );
}

#[test]
fn real_events_have_nothing_to_scrub_but_a_password_in_frame_vars_is_filtered() {
    for capture in Capture::all() {
        let mut event = capture.normalized();
        let before = event.clone();
        assert_eq!(
            scrub_event(&mut event, &PiiConfig::default()),
            0,
            "{}",
            capture.name
        );
        assert_eq!(event, before, "{}", capture.name);
    }

    let capture = Capture::load("python/0002_event");
    let mut event = capture.normalized();
    let vars = &mut event["exception"]["values"][0]["stacktrace"]["frames"][1]["vars"];
    assert_eq!(vars["local_var"], json!({"k": "'v'"}));
    vars["password"] = json!("'hunter2'");
    vars["local_var"]["api_key"] = json!("'sk_live_123'");
    event["message"] = json!("card 4242 4242 4242 4242 declined");
    let scrubbed = scrub_event(&mut event, &PiiConfig::default());
    assert_eq!(scrubbed, 3);
    let vars = &event["exception"]["values"][0]["stacktrace"]["frames"][1]["vars"];
    assert_eq!(vars["password"], "[Filtered]");
    assert_eq!(
        vars["local_var"],
        json!({"k": "'v'", "api_key": "[Filtered]"})
    );
    assert_eq!(event["message"], "card [Filtered] declined");
    assert!(!serde_json::to_string(&event).unwrap().contains("hunter2"));
}

#[test]
fn real_captures_group_into_issues() {
    let hash = |name: &str| grouping::fingerprint(&Capture::load(name).normalized()).hash;

    // The same crash captured twice (different line numbers of `<module>`): one issue.
    let crash_a = Capture::load("python/0002_event").normalized();
    let crash_b = Capture::load("python/0005_event").normalized();
    assert_ne!(
        crash_a["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"],
        crash_b["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"]
    );
    let fingerprint = grouping::fingerprint(&crash_a);
    assert_eq!(fingerprint, grouping::fingerprint(&crash_b));
    assert_eq!(
        fingerprint.components,
        [
            "exception:ZeroDivisionError",
            "frame:__main__:<module>",
            "frame:__main__:outer_fail",
            "frame:__main__:inner_fail",
        ]
    );
    assert_eq!(
        grouping::title(&crash_a),
        "ZeroDivisionError: division by zero"
    );
    assert_eq!(
        grouping::culprit(&crash_a).as_deref(),
        Some("__main__ in inner_fail")
    );

    // One message sent through gzip, brotli and no compression: one issue.
    assert_eq!(hash("python/0001_event"), hash("python/0011_event"));
    assert_eq!(hash("python/0001_event"), hash("python/0012_event"));

    // Different problems: different issues.
    let distinct = [
        hash("python/0001_event"),
        hash("python/0002_event"),
        hash("python/0004_event+attachment+attachment"),
        hash("node/0002_event"),
        hash("node/0003_event"),
        hash("node/0005_event+attachment+attachment"),
    ];
    let unique: std::collections::HashSet<_> = distinct.iter().collect();
    assert_eq!(unique.len(), distinct.len());

    // Node's captureException: in-app frames by module and function, `?` for the anonymous one.
    let node = grouping::fingerprint(&Capture::load("node/0003_event").normalized());
    assert_eq!(
        node.components,
        [
            "exception:Error",
            "frame:node_client:?",
            "frame:node_client:outerFail",
            "frame:node_client:innerFail"
        ]
    );

    // An SDK fingerprint overrides.
    let mut custom = crash_a.clone();
    custom["fingerprint"] = json!(["{{ default }}", "tenant-1"]);
    let custom = grouping::fingerprint(&custom);
    assert_ne!(custom.hash, fingerprint.hash);
    assert_eq!(custom.components[..4], fingerprint.components[..]);
}

#[test]
fn thirty_events_of_three_kinds_make_three_issues_of_ten() {
    let kinds = [
        "python/0001_event",
        "python/0002_event",
        "python/0004_event+attachment+attachment",
    ];
    let events: Vec<Value> = kinds
        .iter()
        .map(|k| Capture::load(k).normalized())
        .collect();
    let mut aggregator = Aggregator::new(AggregatorConfig::default());
    let start = 1_795_632_900.0;
    let mut published = Vec::new();
    for i in 0..30 {
        let event = &events[i % 3];
        let fingerprint = grouping::fingerprint(event);
        let issue = IssueEvent::from_event(42, EventId::new(), event, &fingerprint);
        let now = start + i as f64; // 30 s: three windows
        published.extend(aggregator.add(issue, now));
    }
    published.extend(aggregator.flush_all());
    let mut counts = std::collections::BTreeMap::new();
    for aggregate in &published {
        *counts.entry(aggregate.title.clone()).or_insert(0) += aggregate.count;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ("ZeroDivisionError: division by zero".to_owned(), 10),
            ("hello from sentry-python".to_owned(), 10),
            ("message with attachments".to_owned(), 10),
        ]
    );
    assert_eq!(published.len(), 9, "three groups in each of three windows");
}
