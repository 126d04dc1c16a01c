//! User IP addresses.
//!
//! - `user.ip_address` and `request.env.REMOTE_ADDR` set to `{{auto}}` (browser SDKs and
//!   `send_default_pii`) become the address the request came from; without one, the
//!   placeholder is removed.
//! - An SDK that says `sdk.settings.infer_ip: "auto"` (newer JavaScript SDKs) gets the same
//!   when it sent no `user.ip_address`.
//! - Any other `user.ip_address` must be an IP address: it is written canonically, or
//!   removed and noted (`invalid_data`).

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::add_error;

const AUTO: &str = "{{auto}}";

/// Resolves `{{auto}}` and validates `user.ip_address` on an event object.
pub(crate) fn normalize(object: &mut Map<String, Value>, client_ip: Option<IpAddr>) {
    let infer = object
        .get("sdk")
        .and_then(|sdk| sdk.get("settings"))
        .and_then(|settings| settings.get("infer_ip"))
        .and_then(Value::as_str)
        == Some("auto");
    if let Some(Value::Object(env)) = object
        .get_mut("request")
        .and_then(|request| request.get_mut("env"))
    {
        if env.get("REMOTE_ADDR").and_then(Value::as_str) == Some(AUTO) {
            match client_ip {
                Some(ip) => env.insert("REMOTE_ADDR".to_owned(), json!(ip.to_string())),
                None => env.remove("REMOTE_ADDR"),
            };
        }
    }

    if infer && client_ip.is_some() && object.get("user").is_none_or(Value::is_null) {
        object.insert("user".to_owned(), json!({}));
    }
    let Some(Value::Object(user)) = object.get_mut("user") else {
        return;
    };
    let resolved = match user.get("ip_address") {
        None | Some(Value::Null) if infer => client_ip.map(|ip| json!(ip.to_string())),
        None => return,
        Some(Value::String(ip)) if ip == AUTO => client_ip.map(|ip| json!(ip.to_string())),
        Some(Value::String(ip)) => match ip.trim().parse::<IpAddr>() {
            Ok(ip) => Some(json!(ip.to_string())),
            Err(_) => {
                let invalid = user.remove("ip_address").unwrap_or_default();
                add_error(object, "user.ip_address", invalid);
                return;
            }
        },
        Some(Value::Null) => None,
        Some(_) => {
            let invalid = user.remove("ip_address").unwrap_or_default();
            add_error(object, "user.ip_address", invalid);
            return;
        }
    };
    match resolved {
        Some(ip) => user.insert("ip_address".to_owned(), ip),
        None => user.remove("ip_address"),
    };
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn run(event: Value, client_ip: Option<&str>) -> Value {
        let client_ip = client_ip.map(|ip| ip.parse().unwrap());
        on_object(event, |o| normalize(o, client_ip))
    }

    #[test]
    fn auto_becomes_the_client_address() {
        let event = run(
            json!({"user": {"id": "u1", "ip_address": "{{auto}}"}, "request": {"env": {"REMOTE_ADDR": "{{auto}}"}}}),
            Some("2001:db8::1"),
        );
        assert_eq!(
            event["user"],
            json!({"id": "u1", "ip_address": "2001:db8::1"})
        );
        assert_eq!(event["request"]["env"]["REMOTE_ADDR"], "2001:db8::1");
    }

    #[test]
    fn auto_without_client_address_is_removed() {
        let event = run(json!({"user": {"ip_address": "{{auto}}"}}), None);
        assert_eq!(event["user"], json!({}));
        assert!(event.get("errors").is_none());
    }

    #[test]
    fn infer_ip_setting_fills_a_missing_address() {
        let event = run(
            json!({"sdk": {"name": "sentry.javascript.browser", "settings": {"infer_ip": "auto"}}}),
            Some("198.51.100.4"),
        );
        assert_eq!(event["user"]["ip_address"], "198.51.100.4");
        // Without the setting, nothing is invented.
        let event = run(json!({"user": {"id": "1"}}), Some("198.51.100.4"));
        assert_eq!(event["user"], json!({"id": "1"}));
    }

    #[test]
    fn explicit_addresses_are_validated() {
        let event = run(
            json!({"user": {"ip_address": " 10.0.0.1 "}}),
            Some("198.51.100.4"),
        );
        assert_eq!(event["user"]["ip_address"], "10.0.0.1");
        let event = run(json!({"user": {"ip_address": "my laptop"}}), None);
        assert!(event["user"].get("ip_address").is_none());
        assert_eq!(note_names(&event), ["user.ip_address"]);
    }
}
