//! PII scrubbing: secrets and personal data replaced by `[Filtered]` before an event leaves
//! the relay. On by default; [`PiiConfig`] switches rules per project.
//!
//! Two kinds of rules ([`rules`]):
//!
//! - **By key**: in key/value places (objects, header and query pairs), a value whose key
//!   names a secret (`password`, `token`, `authorization`, `cookie`, …, plus
//!   `extra_fields`, minus `safe_fields`) is replaced as a whole, nested values included.
//! - **By pattern**, inside every string in scope: credit card numbers, bearer tokens and
//!   URL passwords are replaced where they occur, the rest of the string is kept.
//!
//! Scope:
//!
//! | where | by key | by pattern |
//! |---|---|---|
//! | `message`, `logentry` (`message`, `formatted`, `params`) | params | yes |
//! | `exception.values[].value` | | yes |
//! | frame `vars` (exceptions, threads, `stacktrace`) | yes | yes |
//! | `request.url`, `request.query_string` | query parameters | yes |
//! | `request.data`, `headers`, `cookies`, `env` | yes | yes |
//! | `extra`, `contexts`, `user.data`, `tags` | yes | yes |
//! | `breadcrumbs` (`message`, `data`), `spans` (`description`, `data`) | data | yes |
//! | `errors[].value` (invalid originals kept by normalization) | yes, and the note's path | yes |
//!
//! With `ip_addresses`, `user.ip_address` is removed and client-address keys
//! (`REMOTE_ADDR`, `X-Forwarded-For`, …) are replaced.
//!
//! `null` and empty values are left alone; every replacement counts once, and
//! [`scrub_event`] returns the count.

pub mod config;
pub mod rules;

use serde_json::Value;

pub use config::PiiConfig;
use rules::{scrub_text, KeyRules};

/// What a scrubbed value is replaced by.
pub const FILTERED: &str = "[Filtered]";

/// Scrubs `event` in place and returns the number of values replaced or removed.
///
/// Builds the rules of `config` for this one call; a caller scrubbing many events keeps a
/// [`PiiScrubber`] instead.
pub fn scrub_event(event: &mut Value, config: &PiiConfig) -> usize {
    scrub_with(event, config, &KeyRules::new(config))
}

/// A [`PiiConfig`] ready to scrub with: its key rules are built once, not for every event.
#[derive(Clone, Debug)]
pub struct PiiScrubber {
    config: PiiConfig,
    keys: KeyRules,
}

impl Default for PiiScrubber {
    fn default() -> Self {
        PiiScrubber::new(PiiConfig::default())
    }
}

impl PiiScrubber {
    /// The scrubber of `config`.
    pub fn new(config: PiiConfig) -> Self {
        PiiScrubber {
            keys: KeyRules::new(&config),
            config,
        }
    }

    /// The configuration it scrubs by.
    pub fn config(&self) -> &PiiConfig {
        &self.config
    }

    /// Scrubs `event` in place and returns the number of values replaced or removed.
    pub fn scrub(&self, event: &mut Value) -> usize {
        scrub_with(event, &self.config, &self.keys)
    }
}

fn scrub_with(event: &mut Value, config: &PiiConfig, keys: &KeyRules) -> usize {
    if !config.enabled {
        return 0;
    }
    let Some(object) = event.as_object_mut() else {
        return 0;
    };
    let mut scrubber = Scrubber {
        config,
        keys,
        count: 0,
    };
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "message" | "logentry" => scrubber.message(value),
            "exception" => {
                for exception in values_mut(value) {
                    if let Some(Value::String(text)) = exception.get_mut("value") {
                        scrubber.text(text);
                    }
                    scrubber.stacktraces(exception);
                }
            }
            "threads" => {
                for thread in values_mut(value) {
                    scrubber.stacktraces(thread);
                }
            }
            "stacktrace" => scrubber.frames(value),
            "request" => scrubber.request(value),
            "extra" | "contexts" => scrubber.bag(value),
            "user" => scrubber.user(value),
            "tags" => scrubber.pairs_or_bag(value),
            "breadcrumbs" => {
                for crumb in values_mut(value) {
                    scrubber.text_field(crumb, "message");
                    if let Some(data) = crumb.get_mut("data") {
                        scrubber.bag(data);
                    }
                }
            }
            // Normalization notes keep invalid originals (e.g. a dropped frame with vars).
            "errors" => {
                if let Value::Array(notes) = value {
                    for note in notes {
                        scrubber.note(note);
                    }
                }
            }
            "spans" => {
                if let Value::Array(spans) = value {
                    for span in spans {
                        scrubber.text_field(span, "description");
                        if let Some(data) = span.get_mut("data") {
                            scrubber.bag(data);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    scrubber.count
}

/// The items of a `{"values": [...]}` container or a bare list.
fn values_mut(value: &mut Value) -> impl Iterator<Item = &mut Value> {
    let list = match value {
        Value::Object(container) => container.get_mut("values").and_then(Value::as_array_mut),
        Value::Array(list) => Some(list),
        _ => None,
    };
    list.into_iter().flatten()
}

struct Scrubber<'a> {
    config: &'a PiiConfig,
    keys: &'a KeyRules,
    count: usize,
}

impl Scrubber<'_> {
    fn text(&mut self, text: &mut String) {
        self.count += scrub_text(text, self.config);
    }

    fn text_field(&mut self, object: &mut Value, key: &str) {
        if let Some(Value::String(text)) = object.get_mut(key) {
            self.text(text);
        }
    }

    /// Replaces a whole value (unless there is nothing to hide).
    fn filter(&mut self, value: &mut Value) {
        let empty = match value {
            Value::Null => true,
            Value::String(s) => s.is_empty() || s == FILTERED,
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if !empty {
            *value = Value::String(FILTERED.to_owned());
            self.count += 1;
        }
    }

    /// Any value: keys decide for objects, patterns for strings.
    fn bag(&mut self, value: &mut Value) {
        match value {
            Value::String(text) => self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.bag(item)),
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    self.keyed(key, item);
                }
            }
            _ => {}
        }
    }

    fn keyed(&mut self, key: &str, value: &mut Value) {
        if self.keys.is_sensitive(key) {
            self.filter(value);
        } else {
            self.bag(value);
        }
    }

    /// Headers, tags and query strings also come as `[[key, value], …]`.
    fn pairs_or_bag(&mut self, value: &mut Value) {
        let Value::Array(items) = value else {
            return self.bag(value);
        };
        for item in items {
            match item {
                Value::Array(pair) if pair.len() == 2 && pair[0].is_string() => {
                    let key = pair[0].as_str().unwrap_or_default().to_owned();
                    self.keyed(&key, &mut pair[1]);
                }
                other => self.bag(other),
            }
        }
    }

    fn message(&mut self, value: &mut Value) {
        match value {
            Value::String(text) => self.text(text),
            Value::Object(entry) => {
                for (key, item) in entry.iter_mut() {
                    match (key.as_str(), item) {
                        ("message" | "formatted", Value::String(text)) => self.text(text),
                        ("params", params) => self.bag(params),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn stacktraces(&mut self, holder: &mut Value) {
        for key in ["stacktrace", "raw_stacktrace"] {
            if let Some(stacktrace) = holder.get_mut(key) {
                self.frames(stacktrace);
            }
        }
    }

    fn frames(&mut self, stacktrace: &mut Value) {
        let Some(Value::Array(frames)) = stacktrace.get_mut("frames") else {
            return;
        };
        for frame in frames {
            if let Some(vars) = frame.get_mut("vars") {
                self.bag(vars);
            }
        }
    }

    fn request(&mut self, request: &mut Value) {
        let Value::Object(request) = request else {
            return;
        };
        for (key, value) in request.iter_mut() {
            match (key.as_str(), value) {
                ("url", Value::String(url)) => {
                    self.text(url);
                    if let Some((base, query)) = url.split_once('?') {
                        let mut query = query.to_owned();
                        self.query(&mut query);
                        *url = format!("{base}?{query}");
                    }
                }
                ("query_string", Value::String(query)) => {
                    self.text(query);
                    self.query(query);
                }
                ("cookies", Value::String(cookies)) => {
                    let mut value = Value::String(std::mem::take(cookies));
                    self.keyed("cookies", &mut value);
                    *cookies = value.as_str().unwrap_or_default().to_owned();
                }
                ("data" | "headers" | "cookies" | "env" | "query_string", value) => {
                    // `cookies` as a key is itself sensitive: the whole bag goes by default.
                    if key == "cookies" {
                        self.keyed(key, value);
                    } else {
                        self.pairs_or_bag(value);
                    }
                }
                _ => {}
            }
        }
    }

    /// `a=1&password=x` → `a=1&password=[Filtered]`.
    fn query(&mut self, query: &mut String) {
        let mut changed = false;
        let parts: Vec<String> = query
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((key, value))
                    if !value.is_empty() && value != FILTERED && self.keys.is_sensitive(key) =>
                {
                    changed = true;
                    self.count += 1;
                    format!("{key}={FILTERED}")
                }
                _ => part.to_owned(),
            })
            .collect();
        if changed {
            *query = parts.join("&");
        }
    }

    /// A processing note: its `value` is scrubbed as a whole when its path names a secret,
    /// else like a databag (a `[key, value]` pair by its key).
    fn note(&mut self, note: &mut Value) {
        let sensitive_path = note
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|path| {
                path.split('.')
                    .any(|segment| self.keys.is_sensitive(segment))
            });
        let Some(value) = note.get_mut("value") else {
            return;
        };
        match value {
            _ if sensitive_path => self.filter(value),
            Value::Array(pair) if pair.len() == 2 && pair[0].is_string() => {
                let key = pair[0].as_str().unwrap_or_default().to_owned();
                self.keyed(&key, &mut pair[1]);
            }
            other => self.bag(other),
        }
    }

    fn user(&mut self, user: &mut Value) {
        let Value::Object(user) = user else {
            return;
        };
        if self.config.ip_addresses && user.get("ip_address").is_some_and(|ip| !ip.is_null()) {
            user.remove("ip_address");
            self.count += 1;
        }
        if let Some(data) = user.get_mut("data") {
            self.bag(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scrub(mut event: Value) -> (Value, usize) {
        let count = scrub_event(&mut event, &PiiConfig::default());
        (event, count)
    }

    #[test]
    fn passwords_in_frame_vars_are_filtered() {
        let (event, count) = scrub(
            json!({"exception": {"values": [{"type": "E", "value": "v", "stacktrace": {"frames": [
                {"function": "login", "vars": {"user": "'bob'", "password": "'hunter2'", "cfg": {"api_key": "'k'", "n": 3}}},
            ]}}]}}),
        );
        let vars = &event["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"];
        assert_eq!(
            *vars,
            json!({"user": "'bob'", "password": "[Filtered]", "cfg": {"api_key": "[Filtered]", "n": 3}})
        );
        assert_eq!(count, 2);
    }

    #[test]
    fn messages_and_exception_values_are_scrubbed_by_pattern() {
        let (event, count) = scrub(json!({
            "message": "paid with 4242 4242 4242 4242",
            "logentry": {"message": "auth %s", "formatted": "auth Bearer abc.def", "params": ["Bearer abc.def"]},
            "exception": [{"type": "OperationalError", "value": "could not connect to postgres://app:s3cr3t@db/x"}],
        }));
        assert_eq!(event["message"], "paid with [Filtered]");
        assert_eq!(event["logentry"]["formatted"], "auth Bearer [Filtered]");
        assert_eq!(event["logentry"]["params"], json!(["Bearer [Filtered]"]));
        assert_eq!(
            event["exception"][0]["value"],
            "could not connect to postgres://app:[Filtered]@db/x"
        );
        assert_eq!(count, 4);
    }

    #[test]
    fn request_parts_are_scrubbed() {
        let (event, count) = scrub(json!({"request": {
            "url": "https://shop.example.com/login?next=/home&token=abc123",
            "query_string": "next=/home&password=pw",
            "headers": [["Authorization", "Basic dXNlcjpwdw=="], ["Accept", "text/html"], ["Cookie", "sid=1"]],
            "cookies": {"sessionid": "xyz"},
            "data": {"username": "bob", "password": "pw", "card": "4111-1111-1111-1111"},
            "env": {"REMOTE_ADDR": "198.51.100.1"},
        }}));
        let request = &event["request"];
        assert_eq!(
            request["url"],
            "https://shop.example.com/login?next=/home&token=[Filtered]"
        );
        assert_eq!(request["query_string"], "next=/home&password=[Filtered]");
        assert_eq!(
            request["headers"],
            json!([
                ["Authorization", "[Filtered]"],
                ["Accept", "text/html"],
                ["Cookie", "[Filtered]"]
            ])
        );
        assert_eq!(request["cookies"], "[Filtered]");
        assert_eq!(
            request["data"],
            json!({"username": "bob", "password": "[Filtered]", "card": "[Filtered]"})
        );
        assert_eq!(request["env"]["REMOTE_ADDR"], "198.51.100.1");
        assert_eq!(count, 7);
    }

    #[test]
    fn extra_contexts_tags_breadcrumbs_and_spans() {
        let (event, count) = scrub(json!({
            "extra": {"db": {"DATABASE_PASSWORD": "x", "host": "db"}},
            "contexts": {"payment": {"client_secret": "s"}, "os": {"name": "Linux"}},
            "tags": {"session_id": "abc", "region": "eu"},
            "breadcrumbs": {"values": [{"message": "GET https://u:p@api.example/", "data": {"token": "t"}}]},
            "spans": [{"description": "Bearer xyz", "data": {"secret": "s"}}],
        }));
        assert_eq!(
            event["extra"]["db"],
            json!({"DATABASE_PASSWORD": "[Filtered]", "host": "db"})
        );
        assert_eq!(event["contexts"]["payment"]["client_secret"], "[Filtered]");
        assert_eq!(event["contexts"]["os"]["name"], "Linux");
        assert_eq!(
            event["tags"],
            json!({"session_id": "[Filtered]", "region": "eu"})
        );
        assert_eq!(
            event["breadcrumbs"]["values"][0]["message"],
            "GET https://u:[Filtered]@api.example/"
        );
        assert_eq!(
            event["breadcrumbs"]["values"][0]["data"]["token"],
            "[Filtered]"
        );
        assert_eq!(
            event["spans"][0],
            json!({"description": "Bearer [Filtered]", "data": {"secret": "[Filtered]"}})
        );
        assert_eq!(count, 7);
    }

    #[test]
    fn ip_removal_is_optional() {
        let event = json!({
            "user": {"id": "1", "ip_address": "198.51.100.1"},
            "request": {"env": {"REMOTE_ADDR": "198.51.100.1"}, "headers": {"X-Forwarded-For": "198.51.100.1"}},
        });
        let (kept, count) = scrub(event.clone());
        assert_eq!((kept, count), (event.clone(), 0));

        let mut scrubbed = event;
        let config = PiiConfig {
            ip_addresses: true,
            ..Default::default()
        };
        assert_eq!(scrub_event(&mut scrubbed, &config), 3);
        assert_eq!(scrubbed["user"], json!({"id": "1"}));
        assert_eq!(scrubbed["request"]["env"]["REMOTE_ADDR"], "[Filtered]");
        assert_eq!(
            scrubbed["request"]["headers"]["X-Forwarded-For"],
            "[Filtered]"
        );
    }

    #[test]
    fn extra_fields_safe_fields_and_disabled() {
        let event = json!({"extra": {"iban": "DE89", "author": "ann", "password": "x"}});
        let config = PiiConfig {
            extra_fields: vec!["iban".into()],
            safe_fields: vec!["password".into()],
            ..Default::default()
        };
        let mut scrubbed = event.clone();
        assert_eq!(scrub_event(&mut scrubbed, &config), 2);
        assert_eq!(
            scrubbed["extra"],
            json!({"iban": "[Filtered]", "author": "[Filtered]", "password": "x"})
        );

        let mut untouched = event.clone();
        let off = PiiConfig {
            enabled: false,
            ..Default::default()
        };
        assert_eq!(scrub_event(&mut untouched, &off), 0);
        assert_eq!(untouched, event);
    }

    #[test]
    fn invalid_originals_in_notes_are_scrubbed() {
        let (event, count) = scrub(json!({"errors": [
            {"type": "invalid_data", "name": "exception.values.0.stacktrace.frames.2",
             "value": {"lineno": 3, "vars": {"password": "'pw'"}}},
            {"type": "invalid_data", "name": "tags.0", "value": ["api_key", {"k": "v"}]},
            {"type": "invalid_data", "name": "request.env.SECRET_KEY", "value": 5},
            {"type": "invalid_data", "name": "level", "value": "loud"},
        ]}));
        assert_eq!(
            event["errors"][0]["value"],
            json!({"lineno": 3, "vars": {"password": "[Filtered]"}})
        );
        assert_eq!(
            event["errors"][1]["value"],
            json!(["api_key", "[Filtered]"])
        );
        assert_eq!(event["errors"][2]["value"], "[Filtered]");
        assert_eq!(event["errors"][3]["value"], "loud");
        assert_eq!(count, 3);
    }

    #[test]
    fn scrubbing_twice_counts_nothing_new() {
        let (mut event, count) =
            scrub(json!({"extra": {"password": "x"}, "message": "Bearer abc"}));
        assert_eq!(count, 2);
        assert_eq!(scrub_event(&mut event, &PiiConfig::default()), 0);
    }
}
