//! `release`, `dist` and `environment` validation.
//!
//! Numbers are accepted and become strings; surrounding whitespace is removed. A value that
//! breaks a rule below is removed and noted (`invalid_data`), since a wrong release would
//! attach the event to a release that does not exist.
//!
//! - `release`: at most 200 characters; no line breaks, tabs or slashes (`/`, `\`); not `.`,
//!   `..` or `latest` (case-insensitive).
//! - `dist`: at most 64 characters; no line breaks or tabs.
//! - `environment`: at most 64 characters; no line breaks, tabs or `/`; not `none`
//!   (case-insensitive).

use serde_json::{Map, Value};

use super::add_error;

const MAX_RELEASE_LENGTH: usize = 200;
const MAX_ENVIRONMENT_LENGTH: usize = 64;
const MAX_DIST_LENGTH: usize = 64;

/// Validates the three fields of an event object.
pub(crate) fn normalize(object: &mut Map<String, Value>) {
    validate(object, "release", valid_release);
    validate(object, "dist", valid_dist);
    validate(object, "environment", valid_environment);
}

/// Whether `release` is acceptable as a release name.
pub fn valid_release(release: &str) -> bool {
    let lower = release.to_ascii_lowercase();
    !release.is_empty()
        && release.chars().count() <= MAX_RELEASE_LENGTH
        && !release.contains(['\n', '\r', '\t', '\x0c', '/', '\\'])
        && !matches!(lower.as_str(), "." | ".." | "latest")
}

/// Whether `environment` is acceptable as an environment name.
pub fn valid_environment(environment: &str) -> bool {
    !environment.is_empty()
        && environment.chars().count() <= MAX_ENVIRONMENT_LENGTH
        && !environment.contains(['\n', '\r', '\t', '\x0c', '/'])
        && !environment.eq_ignore_ascii_case("none")
}

fn valid_dist(dist: &str) -> bool {
    !dist.is_empty()
        && dist.chars().count() <= MAX_DIST_LENGTH
        && !dist.contains(['\n', '\r', '\t', '\x0c'])
}

fn validate(object: &mut Map<String, Value>, key: &str, valid: fn(&str) -> bool) {
    let candidate = match object.get(key) {
        None => return,
        Some(Value::Null) => {
            object.remove(key);
            return;
        }
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => None,
    };
    match candidate {
        Some(value) if valid(&value) => {
            object.insert(key.to_owned(), Value::String(value));
        }
        _ => {
            let invalid = object.remove(key).unwrap_or_default();
            add_error(object, key, invalid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    fn run(event: Value) -> Value {
        on_object(event, normalize)
    }

    #[test]
    fn valid_values_are_kept_and_cleaned() {
        let event =
            run(json!({"release": " capture-test@1.0.0 ", "environment": "capture", "dist": 7}));
        assert_eq!(event["release"], "capture-test@1.0.0");
        assert_eq!(event["environment"], "capture");
        assert_eq!(event["dist"], "7");
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn numeric_release_becomes_a_string() {
        let event = run(json!({"release": 2}));
        assert_eq!(event["release"], "2");
    }

    #[test]
    fn invalid_release_and_environment_are_removed_and_noted() {
        for release in [
            json!("a/b"),
            json!("latest"),
            json!(".."),
            json!("x\ny"),
            json!(""),
            json!({"v": 1}),
            json!("r".repeat(201)),
        ] {
            let event = run(json!({"release": release.clone()}));
            assert!(event.get("release").is_none(), "{release}");
            assert_eq!(note_names(&event), ["release"]);
            assert_eq!(event["errors"][0]["value"], release);
        }
        for env in ["None", "prod/eu", "e\tnv", &"e".repeat(65)] {
            let event = run(json!({"environment": env}));
            assert!(event.get("environment").is_none(), "{env}");
            assert_eq!(note_names(&event), ["environment"]);
        }
    }

    #[test]
    fn null_is_simply_absent() {
        let event = run(json!({"release": null, "environment": null}));
        assert!(event.get("release").is_none());
        assert!(event.get("errors").is_none());
    }
}
