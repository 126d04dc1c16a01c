//! `event` and `event_structured`: event JSON through filters, normalization, PII scrubbing,
//! grouping and serialization, as the pipeline runs them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use arbitrary::Unstructured;
use relay_core::config::{FilterConfig, PiiConfig};
use serde_json::{Map, Number, Value};

use crate::filter::{should_filter, FilterContext};
use crate::grouping::fingerprint;
use crate::normalize::{normalize_event_full, NormalizeContext, NormalizeOptions};
use crate::pii::PiiScrubber;

/// Every filter on, with patterns, so that each one reads the event.
fn filters() -> &'static FilterConfig {
    static FILTERS: OnceLock<FilterConfig> = OnceLock::new();
    FILTERS.get_or_init(|| {
        serde_json::from_value(serde_json::json!({
            "localhost": true,
            "browser_extensions": true,
            "legacy_browsers": true,
            "web_crawlers": true,
            "error_messages": ["*ResizeObserver loop*", "Script error?"],
            "releases": ["*-beta*"],
            "client_ips": ["10.0.0.0/8", "192.0.2.1"],
        }))
        .expect("a valid filter configuration")
    })
}

/// Every scrubbing rule on, with extra and safe fields.
fn scrubber() -> &'static PiiScrubber {
    static SCRUBBER: OnceLock<PiiScrubber> = OnceLock::new();
    SCRUBBER.get_or_init(|| {
        PiiScrubber::new(PiiConfig {
            ip_addresses: true,
            extra_fields: vec!["iban".to_owned()],
            safe_fields: vec!["author".to_owned()],
            ..PiiConfig::default()
        })
    })
}

/// Event JSON as an SDK sends it (the pipeline parses items with serde_json, as here).
pub fn event(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        process(value);
    }
}

/// Events built from the fuzzer's choices: objects with the keys events use, so that deep,
/// valid events reach the code past the first checks.
pub fn event_structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(Value::Object(object)) = value(&mut u, 0) {
        process(Value::Object(object));
    }
}

/// The pipeline's steps, in order; the result must serialize and parse back.
fn process(mut event: Value) {
    let client_ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
    if should_filter(&event, &FilterContext { client_ip }, filters()).is_err() {
        return;
    }
    let is_transaction = event.get("type").and_then(Value::as_str) == Some("transaction");
    let ctx = NormalizeContext {
        received: chrono::Utc::now(),
        envelope_event_id: None,
        is_transaction,
    };
    let options = NormalizeOptions {
        client_ip,
        ..NormalizeOptions::default()
    };
    if normalize_event_full(&mut event, &ctx, &options).is_err() {
        return;
    }
    scrubber().scrub(&mut event);
    let group = fingerprint(&event);
    assert_eq!(group.hash.len(), 32);
    let bytes = serde_json::to_vec(&event).expect("an event serializes");
    // What is published must be readable by consumers with the same parser and its default
    // nesting limit: normalization trims deeper structures.
    serde_json::from_slice::<Value>(&bytes).expect("a published event parses");
}

/// Deep enough to pass normalization's depth bound, shallow enough for the stack.
const MAX_DEPTH: usize = 40;

/// Keys events use, so that the structured variant builds events the code looks into.
const KEYS: &[&str] = &[
    "event_id",
    "timestamp",
    "start_timestamp",
    "received",
    "platform",
    "level",
    "logger",
    "release",
    "dist",
    "environment",
    "server_name",
    "transaction",
    "type",
    "message",
    "logentry",
    "formatted",
    "params",
    "exception",
    "values",
    "value",
    "mechanism",
    "stacktrace",
    "frames",
    "function",
    "module",
    "filename",
    "abs_path",
    "lineno",
    "colno",
    "in_app",
    "vars",
    "pre_context",
    "context_line",
    "post_context",
    "instruction_addr",
    "threads",
    "crashed",
    "current",
    "request",
    "url",
    "method",
    "headers",
    "cookies",
    "env",
    "REMOTE_ADDR",
    "query_string",
    "data",
    "user",
    "id",
    "ip_address",
    "email",
    "username",
    "tags",
    "extra",
    "contexts",
    "browser",
    "os",
    "runtime",
    "trace",
    "span_id",
    "trace_id",
    "op",
    "status",
    "spans",
    "measurements",
    "breadcrumbs",
    "category",
    "fingerprint",
    "sdk",
    "name",
    "version",
    "integrations",
    "packages",
    "errors",
    "password",
    "token",
    "User-Agent",
    "X-Forwarded-For",
    "debug_meta",
    "images",
    "culprit",
    "modules",
    "_meta",
];

fn value(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Value> {
    let kinds = if depth >= MAX_DEPTH { 5 } else { 7 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(number(u)?),
        3 | 4 => Value::String(string(u)?),
        5 => {
            let len = u.int_in_range(0..=8)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let len = u.int_in_range(0..=8)?;
            let mut object = Map::new();
            for _ in 0..len {
                let key = if u.ratio(3, 4)? {
                    (*u.choose(KEYS)?).to_owned()
                } else {
                    u.arbitrary::<String>()?
                };
                object.insert(key, value(u, depth + 1)?);
            }
            Value::Object(object)
        }
    })
}

fn number(u: &mut Unstructured<'_>) -> arbitrary::Result<Number> {
    Ok(match u.choose_index(3)? {
        0 => Number::from(u.arbitrary::<i64>()?),
        1 => Number::from(u.arbitrary::<u64>()?),
        _ => Number::from_f64(u.arbitrary()?).unwrap_or_else(|| Number::from(0)),
    })
}

/// Strings that look like what the code parses (times, IPs, versions, URLs) or anything.
fn string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const SAMPLES: &[&str] = &[
        "2024-01-01T00:00:00Z",
        "1700000000.5",
        "127.0.0.1",
        "::1",
        "{{auto}}",
        "10.1.2.3",
        "app@1.0.0-beta",
        "http://localhost:3000/a?b=c",
        "https://user:pw@example.com/x",
        "Bearer abcdef",
        "4111 1111 1111 1111",
        "chrome-extension://x/y.js",
        "error",
        "fatal",
        "javascript",
        "python",
        "native",
        "transaction",
        "Mozilla/5.0 (compatible; MSIE 9.0)",
        "Googlebot/2.1",
        "ResizeObserver loop limit exceeded",
        "0x1000",
        "<int>",
        "%s",
    ];
    if u.ratio(1, 2)? {
        Ok((*u.choose(SAMPLES)?).to_owned())
    } else {
        u.arbitrary()
    }
}
