//! Inbound filters: per-project rules that drop an event before it is processed further.
//!
//! A filtered event is answered normally (the SDK must not retry it), produces a `filtered`
//! outcome whose reason is [`FilterReason::name`], and is not published.
//!
//! Each filter is a module with a `should_filter` function; [`should_filter`] runs the
//! enabled ones in this order (cheapest first) and returns the first match:
//!
//! | module | reason | looks at |
//! |---|---|---|
//! | [`client_ips`] | `ip-address` | the request's client address against an IP/CIDR deny list |
//! | [`releases`] | `release-version` | `release` against globs |
//! | [`error_messages`] | `error-message` | exception `type: value` and the message against globs |
//! | [`localhost`] | `localhost` | `user.ip_address` and the `request.url` host |
//! | [`browser_extensions`] | `browser-extensions` | known extension errors and extension frame URLs |
//! | [`legacy_browsers`] | `legacy-browsers` | the event's `User-Agent` request header |
//! | [`web_crawlers`] | `web-crawlers` | the event's `User-Agent` request header |
//!
//! Filters run on the event as the SDK sent it (before normalization), so they accept both
//! shapes the protocol allows (e.g. `exception` as a list or as `{"values": …}`, headers as
//! an object or as pairs).

pub mod browser_extensions;
pub mod client_ips;
pub mod error_messages;
pub mod legacy_browsers;
pub mod localhost;
pub mod releases;
pub mod web_crawlers;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use client_ips::IpFilterList;
/// The filter settings are part of the configuration schema, in relay-core.
pub use relay_core::config::{FilterConfig, GlobPatterns};

/// Facts about the request, besides the event, that filters look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterContext {
    /// The address the request came from.
    pub client_ip: Option<IpAddr>,
}

/// Which filter dropped an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum FilterReason {
    /// [`client_ips`].
    #[serde(rename = "ip-address")]
    #[error("ip-address")]
    ClientIp,
    /// [`releases`].
    #[serde(rename = "release-version")]
    #[error("release-version")]
    ReleaseVersion,
    /// [`error_messages`].
    #[serde(rename = "error-message")]
    #[error("error-message")]
    ErrorMessage,
    /// [`localhost`].
    #[serde(rename = "localhost")]
    #[error("localhost")]
    Localhost,
    /// [`browser_extensions`].
    #[serde(rename = "browser-extensions")]
    #[error("browser-extensions")]
    BrowserExtensions,
    /// [`legacy_browsers`].
    #[serde(rename = "legacy-browsers")]
    #[error("legacy-browsers")]
    LegacyBrowsers,
    /// [`web_crawlers`].
    #[serde(rename = "web-crawlers")]
    #[error("web-crawlers")]
    WebCrawlers,
}

impl FilterReason {
    /// The filter's name as it appears in `filtered` outcomes.
    pub fn name(self) -> &'static str {
        match self {
            FilterReason::ClientIp => "ip-address",
            FilterReason::ReleaseVersion => "release-version",
            FilterReason::ErrorMessage => "error-message",
            FilterReason::Localhost => "localhost",
            FilterReason::BrowserExtensions => "browser-extensions",
            FilterReason::LegacyBrowsers => "legacy-browsers",
            FilterReason::WebCrawlers => "web-crawlers",
        }
    }
}

/// Runs every enabled filter on `event`; `Err` names the first that matches.
pub fn should_filter(
    event: &Value,
    ctx: &FilterContext,
    config: &FilterConfig,
) -> Result<(), FilterReason> {
    client_ips::should_filter(ctx.client_ip, &config.client_ips)?;
    releases::should_filter(event, &config.releases)?;
    error_messages::should_filter(event, &config.error_messages)?;
    localhost::should_filter(event, ctx, config.localhost)?;
    browser_extensions::should_filter(event, config.browser_extensions)?;
    legacy_browsers::should_filter(event, config.legacy_browsers)?;
    web_crawlers::should_filter(event, config.web_crawlers)?;
    Ok(())
}

/// The event's `User-Agent` request header (`request.headers` as an object or as pairs).
pub(crate) fn user_agent(event: &Value) -> Option<&str> {
    header(event, "user-agent")
}

fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    match event.get("request")?.get("headers")? {
        Value::Object(headers) => headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str()),
        Value::Array(pairs) => pairs.iter().find_map(|pair| {
            let key = pair.get(0)?.as_str()?;
            key.eq_ignore_ascii_case(name)
                .then(|| pair.get(1)?.as_str())
                .flatten()
        }),
        _ => None,
    }
}

/// The exception values of an event, as a list or under `values`.
pub(crate) fn exceptions(event: &Value) -> &[Value] {
    let list = match event.get("exception") {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(container)) => container.get("values").and_then(Value::as_array),
        _ => None,
    };
    list.map(Vec::as_slice).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_defaults_to_nothing_filtered() {
        let config: FilterConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, FilterConfig::default());
        let event = json!({"request": {"url": "http://localhost/"}, "release": "x"});
        assert_eq!(
            should_filter(&event, &FilterContext::default(), &config),
            Ok(())
        );
    }

    #[test]
    fn config_reads_lists_and_refuses_bad_values() {
        let config: FilterConfig = serde_json::from_value(json!({
            "localhost": true,
            "error_messages": ["*timeout*"],
            "releases": ["1.0.*"],
            "client_ips": ["10.0.0.0/8", "2001:db8::1"],
        }))
        .unwrap();
        assert!(config.localhost);
        assert!(config.error_messages.is_match("Read TIMEOUT"));
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back["error_messages"], json!(["*timeout*"]));
        assert_eq!(back["client_ips"], json!(["10.0.0.0/8", "2001:db8::1"]));
        assert_eq!(back["releases"], json!(["1.0.*"]));

        assert!(serde_json::from_value::<FilterConfig>(json!({"releases": ["[a"]})).is_err());
        assert!(
            serde_json::from_value::<FilterConfig>(json!({"client_ips": ["10.0.0.0/33"]})).is_err()
        );
        assert!(serde_json::from_value::<FilterConfig>(json!({"localhosts": true})).is_err());
    }

    #[test]
    fn first_matching_filter_is_reported() {
        let config = FilterConfig {
            localhost: true,
            releases: GlobPatterns::new(vec!["*-dev".into()]).unwrap(),
            ..Default::default()
        };
        let event = json!({"release": "app-dev", "user": {"ip_address": "127.0.0.1"}});
        let ctx = FilterContext::default();
        assert_eq!(
            should_filter(&event, &ctx, &config),
            Err(FilterReason::ReleaseVersion)
        );
        let event = json!({"release": "app", "user": {"ip_address": "127.0.0.1"}});
        let reason = should_filter(&event, &ctx, &config).unwrap_err();
        assert_eq!(reason, FilterReason::Localhost);
        assert_eq!(reason.name(), "localhost");
        assert_eq!(serde_json::to_value(reason).unwrap(), "localhost");
        assert_eq!(reason.to_string(), "localhost");
    }

    #[test]
    fn globs_cross_slashes_and_lines_ignoring_case() {
        let globs = GlobPatterns::new(vec!["*connection reset*".into()]).unwrap();
        assert!(globs.is_match("IOError: Connection Reset by peer"));
        assert!(globs.is_match("fetch /a/b failed:\nconnection reset"));
        assert!(!globs.is_match("connection refused"));
        assert!(!GlobPatterns::default().is_match(""));
    }

    #[test]
    fn headers_are_read_in_both_shapes() {
        let a = json!({"request": {"headers": {"user-agent": "A"}}});
        let b = json!({"request": {"headers": [["Accept", "x"], ["User-Agent", "B"]]}});
        assert_eq!(user_agent(&a), Some("A"));
        assert_eq!(user_agent(&b), Some("B"));
        assert_eq!(user_agent(&json!({})), None);
    }
}
