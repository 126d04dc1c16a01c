//! Browser extension filter (`browser-extensions`): drops errors that browser extensions,
//! injected scripts and browser internals raise inside the page.
//!
//! An error matches when an exception's `type: value` contains one of the known messages
//! below, or when the crashing (last) frame of an exception's stack trace comes from an
//! extension or browser-internal URL (`chrome-extension://`, `moz-extension://`,
//! `safari-extension://`, `safari-web-extension://`, `ms-browser-extension://`,
//! `chrome://`, `resource://`, `webkit-masked-url://`) or from a known injected script
//! host.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{exceptions, FilterReason};

/// Errors raised by well-known extensions and injected scripts (case-insensitive).
static MESSAGES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)top\.GLOBALS|originalCreateNotification|canvas\.contentDocument|MyApp_RemoveAllHighlights|Can't find variable: ZiteReader|jigsaw is not defined|ComboSearch is not defined|atomicFindClose|fb_xd_fragment|bmi_SafeAddOnload|EBCallBackMessageReceived|conduitPage|__gCrWeb|_gCrWeb|Non-Error promise rejection captured with value: Object Not Found Matching Id",
    )
    .expect("valid regex")
});

/// Frame URLs of extensions, browser internals and injected scripts.
static SOURCES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(chrome-extension|moz-extension|safari-extension|safari-web-extension|ms-browser-extension|chrome|resource|webkit-masked-url)://|^https?://(graph\.facebook\.com|connect\.facebook\.net|loading\.retry\.widdit\.com|tt\.epicplay\.com)/",
    )
    .expect("valid regex")
});

/// `Err(BrowserExtensions)` when `enabled` and the error comes from an extension.
pub fn should_filter(event: &Value, enabled: bool) -> Result<(), FilterReason> {
    if !enabled {
        return Ok(());
    }
    for exception in exceptions(event) {
        let ty = exception
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = exception
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if MESSAGES.is_match(&format!("{ty}: {value}")) {
            return Err(FilterReason::BrowserExtensions);
        }
        let last_frame = exception
            .get("stacktrace")
            .and_then(|st| st.get("frames"))
            .and_then(Value::as_array)
            .and_then(|frames| frames.last());
        let source = last_frame.and_then(|frame| {
            ["abs_path", "filename"]
                .iter()
                .find_map(|key| frame.get(*key).and_then(Value::as_str))
        });
        if source.is_some_and(|source| SOURCES.is_match(source)) {
            return Err(FilterReason::BrowserExtensions);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(ty: &str, value: &str, last_frame: &str) -> Value {
        json!({"exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"abs_path": "https://shop.example.com/app.js", "function": "main"},
            {"abs_path": last_frame, "function": "handler"},
        ]}}]}})
    }

    #[test]
    fn extension_frames_are_filtered() {
        for url in [
            "chrome-extension://abcdefgh/content.js",
            "moz-extension://1234/inject.js",
            "safari-web-extension://x/y.js",
            "https://connect.facebook.net/en_US/sdk.js",
        ] {
            let event = error("TypeError", "x is undefined", url);
            assert_eq!(
                should_filter(&event, true),
                Err(FilterReason::BrowserExtensions),
                "{url}"
            );
        }
        let event = error(
            "TypeError",
            "x is undefined",
            "https://shop.example.com/vendor.js",
        );
        assert_eq!(should_filter(&event, true), Ok(()));
    }

    #[test]
    fn only_the_crashing_frame_counts() {
        let event = json!({"exception": {"values": [{"type": "Error", "value": "v", "stacktrace": {"frames": [
            {"abs_path": "chrome-extension://abc/c.js"},
            {"abs_path": "https://shop.example.com/app.js"},
        ]}}]}});
        assert_eq!(should_filter(&event, true), Ok(()));
    }

    #[test]
    fn known_extension_errors_are_filtered() {
        let event = error(
            "ReferenceError",
            "Can't find variable: __gCrWeb",
            "https://a.example/x.js",
        );
        assert_eq!(
            should_filter(&event, true),
            Err(FilterReason::BrowserExtensions)
        );
        let event = error(
            "TypeError",
            "top.GLOBALS is undefined",
            "https://a.example/x.js",
        );
        assert_eq!(
            should_filter(&event, true),
            Err(FilterReason::BrowserExtensions)
        );
        assert_eq!(should_filter(&event, false), Ok(()));
    }
}
