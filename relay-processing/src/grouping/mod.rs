//! Grouping: a stable fingerprint per event, so that the same problem lands in the same
//! issue across releases, hosts and SDK versions. The algorithm is documented in
//! `docs/grouping.md`; in short:
//!
//! 1. An SDK-sent `fingerprint` wins; `{{ default }}` in it stands for the default
//!    components below.
//! 2. Default, for an exception: each exception's type plus the normalized function and
//!    module of its in-app frames (all frames when none is in-app), ignoring line numbers,
//!    addresses and generated name parts. Native crashes take symbolicated frames like any
//!    other.
//! 3. Else the crashed thread's frames, the same way.
//! 4. Else the message template with its parameters replaced by placeholders.
//!
//! The hash is the MD5 of the versioned component list, as 32 hex digits. It runs on
//! normalized (and, for native crashes, symbolicated) events.
//!
//! Modules: `frames` picks the frames that count, `names` normalizes their function and
//! module names, `message` turns messages into templates, `title` names the issue.

mod frames;
mod message;
mod names;
mod title;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use frames::{crashed_thread_frames, exception_values, frame_components, frames_of, is_synthetic};
use message::message_of;
pub use message::message_template;
pub use names::{normalize_function, normalize_module};
pub use title::{culprit, title};

/// Mixed into every hash: changing the algorithm changes the version, not old groups'
/// meaning.
const HASH_VERSION: &str = "relay-grouping:v1";

/// An event's group: the hash that identifies it and the components it was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// MD5 of the components, 32 lowercase hex digits: the group id.
    pub hash: String,
    /// What went into the hash, in order, e.g. `exception:ZeroDivisionError`,
    /// `frame:__main__:inner_fail`, `message:hello <int>`, `custom:checkout`.
    pub components: Vec<String>,
}

impl Fingerprint {
    /// The fingerprint of a component list.
    pub fn from_components(components: Vec<String>) -> Self {
        let mut hasher = Md5::new();
        hasher.update(HASH_VERSION.as_bytes());
        for component in &components {
            hasher.update([0u8]);
            hasher.update(component.as_bytes());
        }
        let hash = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Fingerprint { hash, components }
    }
}

/// The event's fingerprint (see the module documentation).
pub fn fingerprint(event: &Value) -> Fingerprint {
    let components = match custom_fingerprint(event) {
        Some(custom) => {
            let mut components = Vec::new();
            for part in custom {
                if is_default_marker(&part) {
                    components.extend(default_components(event));
                } else {
                    components.push(format!("custom:{part}"));
                }
            }
            components
        }
        None => default_components(event),
    };
    Fingerprint::from_components(components)
}

/// The SDK's `fingerprint` as strings, when it has at least one entry.
fn custom_fingerprint(event: &Value) -> Option<Vec<String>> {
    let parts: Vec<String> = event
        .get("fingerprint")?
        .as_array()?
        .iter()
        .filter_map(|part| match part {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then_some(parts)
}

fn is_default_marker(part: &str) -> bool {
    let compact: String = part.chars().filter(|c| !c.is_whitespace()).collect();
    compact == "{{default}}"
}

/// The components of the default algorithm (steps 2 to 4 of the module documentation).
pub fn default_components(event: &Value) -> Vec<String> {
    let exceptions = exception_values(event);
    if !exceptions.is_empty() {
        let mut components = Vec::new();
        let mut synthetic = false;
        for exception in exceptions {
            let frames = frames_of(exception.get("stacktrace"));
            if is_synthetic(exception) {
                synthetic = true;
            } else if let Some(ty) = exception.get("type").and_then(Value::as_str) {
                components.push(format!("exception:{ty}"));
            }
            let frame_components = frame_components(frames);
            if frame_components.is_empty() && !is_synthetic(exception) {
                if let Some(value) = exception.get("value").and_then(Value::as_str) {
                    components.push(format!("value:{}", message_template(value)));
                }
            }
            components.extend(frame_components);
        }
        if synthetic {
            // A message with an attached stack trace: the stack and the message template.
            if let Some(message) = message_of(event) {
                components.push(format!("message:{}", message_template(&message)));
            }
        }
        if !components.is_empty() {
            return components;
        }
    }
    let thread_components = frame_components(crashed_thread_frames(event));
    if !thread_components.is_empty() {
        return thread_components;
    }
    if let Some(message) = message_of(event) {
        return vec![format!("message:{}", message_template(&message))];
    }
    vec!["fallback".to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn python_crash(release: &str, lines: [u64; 3]) -> Value {
        json!({
            "release": release,
            "platform": "python",
            "exception": {"values": [{
                "type": "ZeroDivisionError",
                "value": "division by zero",
                "stacktrace": {"frames": [
                    {"function": "<module>", "module": "__main__", "lineno": lines[0], "in_app": true},
                    {"function": "handle", "module": "django.core.handlers", "lineno": 88, "in_app": false},
                    {"function": "outer_fail", "module": "__main__", "lineno": lines[1], "in_app": true},
                    {"function": "inner_fail", "module": "__main__", "lineno": lines[2], "in_app": true},
                ]},
            }]},
        })
    }

    #[test]
    fn same_crash_from_two_releases_groups_together() {
        let a = fingerprint(&python_crash("app@1.0.0", [40, 32, 27]));
        let b = fingerprint(&python_crash("app@1.1.0", [52, 41, 30]));
        assert_eq!(a, b);
        assert_eq!(a.hash.len(), 32);
        assert!(a
            .hash
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            a.components,
            [
                "exception:ZeroDivisionError",
                "frame:__main__:<module>",
                "frame:__main__:outer_fail",
                "frame:__main__:inner_fail",
            ]
        );
    }

    #[test]
    fn different_crashes_do_not_group() {
        let a = fingerprint(&python_crash("app@1", [1, 2, 3]));
        let mut other_type = python_crash("app@1", [1, 2, 3]);
        other_type["exception"]["values"][0]["type"] = json!("KeyError");
        let mut other_function = python_crash("app@1", [1, 2, 3]);
        other_function["exception"]["values"][0]["stacktrace"]["frames"][3]["function"] =
            json!("parse");
        assert_ne!(a.hash, fingerprint(&other_type).hash);
        assert_ne!(a.hash, fingerprint(&other_function).hash);
        assert_ne!(
            fingerprint(&other_type).hash,
            fingerprint(&other_function).hash
        );
    }

    fn native_crash(addrs: [&str; 4], crash_fn: &str) -> Value {
        // As symbolicate::apply_to_event writes it: no in_app, packages, addresses.
        json!({
            "platform": "native",
            "exception": {"values": [{
                "type": "SIGSEGV / SEGV_MAPERR",
                "value": "Fatal Error: SIGSEGV / SEGV_MAPERR",
                "mechanism": {"type": "minidump", "handled": false, "synthetic": false},
                "stacktrace": {"frames": [
                    {"instruction_addr": addrs[0], "package": "/lib/x86_64-linux-gnu/libc.so.6", "function": "__libc_start_main", "trust": "cfi"},
                    {"instruction_addr": addrs[1], "package": "/opt/app/bin/crashy", "function": "main", "trust": "cfi"},
                    {"instruction_addr": addrs[2], "package": "/opt/app/bin/crashy", "function": "(anonymous namespace)::Worker::run(int) const", "trust": "cfi"},
                    {"instruction_addr": addrs[3], "package": "/opt/app/bin/crashy", "function": crash_fn, "trust": "context"},
                ]},
            }]},
        })
    }

    #[test]
    fn native_crash_groups_by_symbolicated_functions() {
        let build_a = native_crash(
            ["0x7f001", "0x401000", "0x401200", "0x401300"],
            "crash::h0123456789abcdef",
        );
        let build_b = native_crash(
            ["0x7f9a1", "0x501000", "0x501250", "0x501390"],
            "crash::hfedcba9876543210",
        );
        let a = fingerprint(&build_a);
        assert_eq!(a, fingerprint(&build_b));
        assert_eq!(
            a.components,
            [
                "exception:SIGSEGV / SEGV_MAPERR",
                "frame:__libc_start_main",
                "frame:main",
                "frame:Worker::run",
                "frame:crash",
            ]
        );
        let elsewhere = native_crash(
            ["0x7f001", "0x401000", "0x401200", "0x401300"],
            "parse_header",
        );
        assert_ne!(a.hash, fingerprint(&elsewhere).hash);
    }

    #[test]
    fn unsymbolicated_native_frames_use_the_module_name() {
        let event = json!({"exception": {"values": [{"type": "EXCEPTION_ACCESS_VIOLATION_READ", "stacktrace": {"frames": [
            {"instruction_addr": "0x1000", "package": "C:\\app\\crashy.exe"},
            {"instruction_addr": "0x2000", "package": "/usr/lib/libfoo.so.1.2.3"},
        ]}}]}});
        assert_eq!(
            fingerprint(&event).components,
            [
                "exception:EXCEPTION_ACCESS_VIOLATION_READ",
                "frame:crashy.exe:?",
                "frame:libfoo.so:?"
            ]
        );
    }

    #[test]
    fn sdk_fingerprint_overrides_and_expands_default() {
        let mut event = python_crash("app@1", [1, 2, 3]);
        event["fingerprint"] = json!(["checkout-failure"]);
        let custom = fingerprint(&event);
        assert_eq!(custom.components, ["custom:checkout-failure"]);
        let mut other = python_crash("app@1", [1, 2, 3]);
        other["exception"]["values"][0]["type"] = json!("KeyError");
        other["fingerprint"] = json!(["checkout-failure"]);
        assert_eq!(custom, fingerprint(&other));

        let default = fingerprint(&python_crash("app@1", [1, 2, 3]));
        for marker in ["{{ default }}", "{{default}}"] {
            event["fingerprint"] = json!([marker]);
            assert_eq!(fingerprint(&event), default);
            event["fingerprint"] = json!([marker, "tenant-7"]);
            let split = fingerprint(&event);
            assert_ne!(split.hash, default.hash);
            assert_eq!(split.components.last().unwrap(), "custom:tenant-7");
        }
        event["fingerprint"] = json!([]);
        assert_eq!(fingerprint(&event), default);
    }

    #[test]
    fn messages_group_by_template() {
        let a = json!({"logentry": {"message": "user %s failed", "formatted": "user 1 failed", "params": [1]}});
        let b = json!({"logentry": {"message": "user %s failed", "formatted": "user 2 failed", "params": [2]}});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).components, ["message:user %s failed"]);

        let c = json!({"message": "timeout after 30.5s talking to 10.0.0.7 for order 8be12c14-9f1d-40de-8c80-ed204da87a62 at 0x7ffe1234 (2026-11-25T18:55:04Z) id deadbeef42"});
        let d = json!({"message": "timeout after 12.0s talking to 10.0.0.9 for order 9ec79c33ec9942ab8353589fcb2e04dc at 0x1 (2026-11-26T01:00:00Z) id 0123abcd99"});
        assert_eq!(fingerprint(&c), fingerprint(&d));
        assert_eq!(
            fingerprint(&c).components,
            ["message:timeout after <float>s talking to <ip> for order <uuid> at <hex> (<date>) id <hex>"]
        );
        assert_ne!(
            fingerprint(&c).hash,
            fingerprint(&json!({"message": "disk full"})).hash
        );
        assert_eq!(fingerprint(&json!({})).components, ["fallback"]);
    }

    #[test]
    fn message_with_synthetic_stack_groups_by_stack_and_template() {
        let event = |message: &str, line: u64| {
            json!({"message": message, "exception": {"values": [{
                "value": message,
                "mechanism": {"type": "generic", "synthetic": true},
                "stacktrace": {"frames": [{"function": "?", "module": "node_client", "lineno": line, "in_app": true}]},
            }]}})
        };
        let a = fingerprint(&event("hello 1", 31));
        assert_eq!(a, fingerprint(&event("hello 2", 35)));
        assert_eq!(a.components, ["frame:node_client:?", "message:hello <int>"]);
        assert_ne!(a.hash, fingerprint(&event("bye", 31)).hash);
    }

    #[test]
    fn exception_without_frames_uses_its_value_template() {
        let a = json!({"exception": {"values": [{"type": "Error", "value": "status 503"}]}});
        let b = json!({"exception": {"values": [{"type": "Error", "value": "status 502"}]}});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(
            fingerprint(&a).components,
            ["exception:Error", "value:status <int>"]
        );
    }

    #[test]
    fn crashed_thread_is_used_without_exception() {
        let event = json!({"threads": {"values": [
            {"id": 1, "stacktrace": {"frames": [{"function": "idle"}]}},
            {"id": 2, "crashed": true, "stacktrace": {"frames": [{"function": "main"}, {"function": "boom"}]}},
        ]}});
        assert_eq!(fingerprint(&event).components, ["frame:main", "frame:boom"]);
        assert_eq!(culprit(&event).as_deref(), Some("boom"));
    }

    #[test]
    fn recursion_depth_does_not_split_groups() {
        let stack = |depth: usize| {
            let mut frames = vec![json!({"function": "main", "in_app": true})];
            frames.extend((0..depth).map(|_| json!({"function": "walk", "in_app": true})));
            json!({"exception": {"values": [{"type": "RecursionError", "stacktrace": {"frames": frames}}]}})
        };
        assert_eq!(fingerprint(&stack(3)), fingerprint(&stack(900)));
    }

    #[test]
    fn titles_and_culprits() {
        let event = python_crash("app@1", [1, 2, 3]);
        assert_eq!(title(&event), "ZeroDivisionError: division by zero");
        assert_eq!(culprit(&event).as_deref(), Some("__main__ in inner_fail"));

        let chained = json!({"exception": {"values": [
            {"type": "KeyError", "value": "'k'"},
            {"type": "RuntimeError", "value": "wrapped\nsecond line", "stacktrace": {"frames": [{"function": "f", "filename": "a.py"}]}},
        ]}});
        assert_eq!(title(&chained), "RuntimeError: wrapped");
        assert_eq!(culprit(&chained).as_deref(), Some("a.py in f"));

        let message = json!({"logentry": {"message": "user %s", "formatted": "user 7"}, "transaction": "/checkout"});
        assert_eq!(title(&message), "user 7");
        assert_eq!(culprit(&message).as_deref(), Some("/checkout"));
        assert_eq!(
            title(&json!({"message": "x".repeat(300)})).chars().count(),
            200
        );
        assert_eq!(title(&json!({})), "<unlabeled event>");
        assert_eq!(culprit(&json!({})), None);
    }
}
