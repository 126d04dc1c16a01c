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

use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Mixed into every hash: changing the algorithm changes the version, not old groups'
/// meaning.
const HASH_VERSION: &str = "relay-grouping:v1";

/// Longest title, in characters.
const MAX_TITLE_LENGTH: usize = 200;

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

fn exception_values(event: &Value) -> &[Value] {
    let list = match event.get("exception") {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(container)) => container.get("values").and_then(Value::as_array),
        _ => None,
    };
    list.map(Vec::as_slice).unwrap_or_default()
}

fn is_synthetic(exception: &Value) -> bool {
    exception
        .get("mechanism")
        .and_then(|m| m.get("synthetic"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn frames_of(stacktrace: Option<&Value>) -> &[Value] {
    stacktrace
        .and_then(|st| st.get("frames"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn crashed_thread_frames(event: &Value) -> &[Value] {
    let threads = match event.get("threads") {
        Some(Value::Array(list)) => list.as_slice(),
        Some(Value::Object(container)) => container
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        _ => &[],
    };
    let crashed = threads
        .iter()
        .find(|t| t.get("crashed").and_then(Value::as_bool) == Some(true))
        .or(if threads.len() == 1 {
            threads.first()
        } else {
            None
        });
    frames_of(crashed.and_then(|t| t.get("stacktrace")))
}

/// The frames that count: in-app ones, or all when the SDK marked none in-app (native
/// crashes leave `in_app` unset).
fn grouping_frames(frames: &[Value]) -> Vec<&Value> {
    let in_app: Vec<&Value> = frames
        .iter()
        .filter(|f| f.get("in_app").and_then(Value::as_bool) == Some(true))
        .collect();
    if in_app.is_empty() {
        frames.iter().collect()
    } else {
        in_app
    }
}

fn frame_components(frames: &[Value]) -> Vec<String> {
    let mut components: Vec<String> = Vec::new();
    for frame in grouping_frames(frames) {
        let Some(component) = frame_component(frame) else {
            continue;
        };
        // Direct recursion of any depth counts once.
        if components.last() != Some(&component) {
            components.push(component);
        }
    }
    components
}

/// `frame:<module>:<function>`, `frame:<function>`, or `frame:<module>:?` for a frame
/// without a known function (module, else file name, else native package).
fn frame_component(frame: &Value) -> Option<String> {
    let text = |key: &str| {
        frame
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let function = ["function", "raw_function"]
        .iter()
        .find_map(|key| text(key).and_then(normalize_function));
    let module = text("module").map(normalize_module);
    match (module, function) {
        (Some(module), Some(function)) => Some(format!("frame:{module}:{function}")),
        (None, Some(function)) => Some(format!("frame:{function}")),
        (Some(module), None) => Some(format!("frame:{module}:?")),
        (None, None) => {
            let file = text("filename")
                .or_else(|| text("abs_path"))
                .or_else(|| text("package"))?;
            Some(format!("frame:{}:?", normalize_file(file)))
        }
    }
}

static RUST_HASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$").unwrap());
static OFFSET: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\+\s*0x[0-9a-fA-F]+$").unwrap());
static CLONE_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\.(cold|part|isra|constprop|lto_priv|clone|llvm)(\.\d+)*)+$").unwrap()
});
static ANON_NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(anonymous namespace\)::|`anonymous namespace'::").unwrap());
static CPP_LAMBDA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{lambda\([^{}]*\)#\d+\}").unwrap());
static JS_ALIAS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\[as [^\]]*\]$").unwrap());
static NUMBERED_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    // Java `lambda$main$0` / `Foo$1`, Go `main.func1.2`, C# `<Main>b__0_0`, JVM
    // `$$Lambda$123/0x0000000800c02460`.
    Regex::new(r"\$\$Lambda\$\d+(/0x[0-9a-fA-F]+)?|\$\d+|\.func\d+(\.\d+)*|b__\d+(_\d+)?").unwrap()
});
static HEX_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-fA-F]{8,}\b").unwrap());
static SO_VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\.so)(\.\d+)+$").unwrap());

/// A function name without what changes between builds: Rust hashes (`::h0123…`),
/// symbol offsets (`+0x1a`), compiler clone suffixes (`.cold`, `.isra.0`), anonymous
/// namespaces, lambda numbering, parameter lists and JavaScript `[as alias]` notes.
/// `None` for names that say nothing (`?`, `<anonymous>`, `<unknown>`).
pub fn normalize_function(name: &str) -> Option<String> {
    let name = name.trim();
    if says_nothing(name) {
        return None;
    }
    if is_plain_function(name) {
        return Some(name.to_owned());
    }
    normalize_function_text(name)
}

/// A trimmed function name that names no function.
fn says_nothing(name: &str) -> bool {
    matches!(
        name,
        "" | "?" | "<unknown>" | "<anonymous>" | "unknown" | "<redacted>"
    )
}

/// Whether none of [`normalize_function`]'s rules can change `name`, told without running
/// them: most names (`handle_request`, `<module>`, `Foo.bar`, `Object.?`) are plain, and the
/// rules cost several regex searches each. Every rule needs a character outside
/// `[A-Za-z0-9_<>.?]`, except `b__1` and `.func1` numbering and the clone suffixes, which are
/// checked here.
fn is_plain_function(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'<' | b'>' | b'.' | b'?'))
        && !name.contains("b__")
        && !name.contains(".func")
        && (!name.contains('.') || !CLONE_SUFFIX.is_match(name))
}

/// [`normalize_function`]'s rules, on a trimmed, meaningful name.
fn normalize_function_text(name: &str) -> Option<String> {
    let name = RUST_HASH.replace(name, "");
    let name = OFFSET.replace(&name, "");
    let name = CLONE_SUFFIX.replace(&name, "");
    let name = ANON_NAMESPACE.replace_all(&name, "");
    let name = CPP_LAMBDA.replace_all(&name, "{lambda}");
    let name = JS_ALIAS.replace(&name, "");
    let name = strip_parameters(&name);
    let name = NUMBERED_SUFFIX.replace_all(name, |caps: &regex::Captures| {
        let matched = &caps[0];
        if matched.starts_with("$$Lambda") {
            "$$Lambda".to_owned()
        } else if matched.starts_with('$') {
            "$?".to_owned()
        } else if matched.starts_with(".func") {
            ".func?".to_owned()
        } else {
            "b__?".to_owned()
        }
    });
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

/// `ns::f(int, char const*) const` → `ns::f`: cuts the last balanced parameter list.
fn strip_parameters(name: &str) -> &str {
    let trimmed = name
        .trim_end()
        .trim_end_matches(" const")
        .trim_end_matches(" &&")
        .trim_end_matches(" &")
        .trim_end();
    if !trimmed.ends_with(')') || trimmed.starts_with('(') {
        return name;
    }
    let mut depth = 0usize;
    for (index, c) in trimmed.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let head = trimmed[..index].trim_end();
                    return if head.is_empty() { name } else { head };
                }
            }
            _ => {}
        }
    }
    name
}

/// A module name without generated parts: long hex runs (bundle hashes) and numbered
/// anonymous classes.
pub fn normalize_module(module: &str) -> String {
    let module = module.trim();
    if is_plain_module(module) {
        return module.to_owned();
    }
    normalize_module_text(module)
}

/// Whether [`normalize_module`]'s rules cannot change `module`: it has no run of eight hex
/// digits and none of the numbering patterns (`$1`, `.func1`, `b__1`).
fn is_plain_module(module: &str) -> bool {
    let mut hex_run = 0;
    for b in module.bytes() {
        hex_run = if b.is_ascii_hexdigit() {
            hex_run + 1
        } else {
            0
        };
        if hex_run == 8 {
            return false;
        }
    }
    !module.contains('$') && !module.contains(".func") && !module.contains("b__")
}

/// [`normalize_module`]'s rules, on a trimmed name.
fn normalize_module_text(module: &str) -> String {
    let module = HEX_RUN.replace_all(module, "<hex>");
    NUMBERED_SUFFIX
        .replace_all(&module, |caps: &regex::Captures| {
            if caps[0].starts_with("$$Lambda") {
                "$$Lambda"
            } else {
                "$?"
            }
            .to_owned()
        })
        .into_owned()
}

/// A file or native module path reduced to what is stable: its base name without a
/// bundle hash or shared-library version.
fn normalize_file(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let base = SO_VERSION.replace(base, "$1");
    HEX_RUN.replace_all(&base, "<hex>").into_owned()
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b").unwrap()
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?\b")
        .unwrap()
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap());
static HEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b").unwrap()
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d+(\.\d+)?").unwrap());

/// A message with its variable parts replaced: UUIDs (`<uuid>`), dates (`<date>`), IPv4
/// addresses (`<ip>`), hex numbers and ids of 8+ hex digits (`<hex>`), numbers (`<int>`,
/// `<float>`). Surrounding whitespace is removed.
pub fn message_template(message: &str) -> String {
    let text = UUID.replace_all(message.trim(), "<uuid>");
    let text = DATE.replace_all(&text, "<date>");
    let text = IPV4.replace_all(&text, "<ip>");
    let text = HEX.replace_all(&text, |caps: &regex::Captures| {
        let matched = &caps[0];
        if matched.starts_with("0x") || matched.starts_with("0X") || matched.len() >= 8 {
            "<hex>".to_owned()
        } else {
            matched.to_owned()
        }
    });
    NUMBER
        .replace_all(&text, |caps: &regex::Captures| {
            if caps.get(1).is_some() {
                "<float>"
            } else {
                "<int>"
            }
            .to_owned()
        })
        .into_owned()
}

/// The event's message: the `logentry`/`message` template (`message` key) before its
/// `formatted` text, so that parameters stay out.
fn message_of(event: &Value) -> Option<String> {
    for key in ["logentry", "message"] {
        match event.get(key) {
            Some(Value::String(message)) if !message.trim().is_empty() => {
                return Some(message.clone())
            }
            Some(Value::Object(entry)) => {
                for field in ["message", "formatted"] {
                    if let Some(Value::String(message)) = entry.get(field) {
                        if !message.trim().is_empty() {
                            return Some(message.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The formatted message for display (`formatted` before the template).
fn display_message(event: &Value) -> Option<String> {
    for key in ["logentry", "message"] {
        match event.get(key) {
            Some(Value::String(message)) if !message.trim().is_empty() => {
                return Some(message.clone())
            }
            Some(Value::Object(entry)) => {
                for field in ["formatted", "message"] {
                    if let Some(Value::String(message)) = entry.get(field) {
                        if !message.trim().is_empty() {
                            return Some(message.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The issue title: `Type: value` of the top-level (last) exception, else the first line
/// of the message, else the transaction name, else `<unlabeled event>`. At most 200
/// characters.
pub fn title(event: &Value) -> String {
    let exception = exception_values(event)
        .iter()
        .rev()
        .find(|e| !is_synthetic(e) && (e.get("type").is_some() || e.get("value").is_some()));
    let title = exception
        .and_then(|exception| {
            let ty = exception.get("type").and_then(Value::as_str);
            let value = exception
                .get("value")
                .and_then(Value::as_str)
                .and_then(|v| v.lines().next())
                .filter(|v| !v.is_empty());
            match (ty, value) {
                (Some(ty), Some(value)) => Some(format!("{ty}: {value}")),
                (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
                (None, None) => None,
            }
        })
        .or_else(|| display_message(event).and_then(|m| m.lines().next().map(str::to_owned)))
        .or_else(|| {
            event
                .get("transaction")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "<unlabeled event>".to_owned());
    if title.chars().count() > MAX_TITLE_LENGTH {
        let mut cut: String = title.chars().take(MAX_TITLE_LENGTH - 3).collect();
        cut.push_str("...");
        cut
    } else {
        title
    }
}

/// Where the problem is: `<module or file> in <function>` of the crashing in-app frame
/// (the last one; any last frame when none is in-app), else the `transaction` name.
pub fn culprit(event: &Value) -> Option<String> {
    let frames = exception_values(event)
        .iter()
        .rev()
        .map(|e| frames_of(e.get("stacktrace")))
        .find(|frames| !frames.is_empty())
        .unwrap_or_else(|| crashed_thread_frames(event));
    let from_frame = grouping_frames(frames).last().and_then(|frame| {
        let text = |key: &str| {
            frame
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let place = text("module")
            .or_else(|| text("filename"))
            .or_else(|| text("package"));
        let function = text("function").filter(|f| *f != "?");
        match (place, function) {
            (Some(place), Some(function)) => Some(format!("{place} in {function}")),
            (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
            (None, None) => None,
        }
    });
    from_frame.or_else(|| {
        event
            .get("transaction")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;
    use serde_json::json;

    /// Names built from pieces that each rule reacts to, and pieces that are plain, joined in
    /// every order a small generator produces.
    fn generated_names() -> Vec<String> {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "9",
            "_",
            "<",
            ">",
            ".",
            "main",
            "<module>",
            "Foo.bar",
            "b__",
            "b__1",
            "b__0_0",
            ".func",
            ".func1",
            ".func2.3",
            "$",
            "$1",
            "$$Lambda$12/0x0000000800c02460",
            ".cold",
            ".isra.0",
            ".part.1",
            ".clone",
            ".llvm.123",
            ".constprop.2",
            "::",
            "::h0123456789abcdef",
            " + 0x1a",
            "+0x2",
            "(anonymous namespace)::",
            "`anonymous namespace'::",
            "{lambda(int)#1}",
            " [as foo]",
            "(int, char)",
            "()",
            " const",
            " &",
            "deadbeef12",
            "0123456",
            "abcdef01",
            " ",
            "\t",
            "é",
            "?",
            "Object.?",
        ];
        let mut names: Vec<String> = PIECES.iter().map(|p| p.to_string()).collect();
        let mut rng = TestRng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut name = String::new();
            for _ in 0..=rng.below(8) {
                name.push_str(PIECES[rng.below(PIECES.len())]);
            }
            names.push(name);
        }
        names
    }

    #[test]
    fn plain_name_shortcuts_agree_with_the_rules() {
        let mut plain = (0, 0);
        for name in generated_names() {
            let trimmed = name.trim();
            if !says_nothing(trimmed) {
                let full = normalize_function_text(trimmed);
                assert_eq!(normalize_function(&name), full, "function {name:?}");
                plain.0 += usize::from(is_plain_function(trimmed));
            }
            assert_eq!(
                normalize_module(&name),
                normalize_module_text(trimmed),
                "module {name:?}"
            );
            plain.1 += usize::from(is_plain_module(trimmed));
        }
        // Both shortcuts are taken often enough for the comparison to mean something.
        assert!(plain.0 > 1_000 && plain.1 > 1_000, "{plain:?}");
    }

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
    fn function_names_lose_generated_parts() {
        let cases = [
            ("app::main::h0123456789abcdef", "app::main"),
            ("crash_fn+0x1a", "crash_fn"),
            ("compute.cold", "compute"),
            ("compute.isra.0.part.1", "compute"),
            (
                "(anonymous namespace)::Worker::run(int, char const*) const",
                "Worker::run",
            ),
            ("`anonymous namespace'::helper(void)", "helper"),
            (
                "std::thread::_State_impl<{lambda(int)#1}>::_M_run()",
                "std::thread::_State_impl<{lambda}>::_M_run",
            ),
            ("Foo::operator()(int)", "Foo::operator()"),
            ("lambda$main$0", "lambda$main$?"),
            ("com.example.Foo$1.run", "com.example.Foo$?.run"),
            ("main.main.func1.2", "main.main.func?"),
            ("<Main>b__0_0", "<Main>b__?"),
            (
                "Function.executeUserEntryPoint [as runMain]",
                "Function.executeUserEntryPoint",
            ),
            (
                "-[AppDelegate application:didFinishLaunchingWithOptions:]",
                "-[AppDelegate application:didFinishLaunchingWithOptions:]",
            ),
            ("<module>", "<module>"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_function(raw).as_deref(), Some(expected), "{raw}");
        }
        for unknown in ["?", "<anonymous>", "", "  "] {
            assert_eq!(normalize_function(unknown), None);
        }
        assert_eq!(
            normalize_module("static/js/main.3f9a8b7c"),
            "static/js/main.<hex>"
        );
        assert_eq!(
            normalize_module("com.example.Foo$$Lambda$123/0x0000000800c02460"),
            "com.example.Foo$$Lambda"
        );
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
