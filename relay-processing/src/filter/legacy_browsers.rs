//! Legacy browser filter (`legacy-browsers`): drops events from browsers too old to
//! support, read from the event's `User-Agent` request header.
//!
//! Legacy means: Internet Explorer (any version, `MSIE` or `Trident`), EdgeHTML Edge
//! (`Edge/`, before the Chromium-based `Edg/` 79), Presto Opera before 15, Opera Mini
//! before 8, Safari before 6, and the stock Android browser before Android 4.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{user_agent, FilterReason};

/// `Err(LegacyBrowsers)` when `enabled` and the event's browser is a legacy one.
pub fn should_filter(event: &Value, enabled: bool) -> Result<(), FilterReason> {
    if enabled && user_agent(event).is_some_and(|ua| legacy_browser(ua).is_some()) {
        return Err(FilterReason::LegacyBrowsers);
    }
    Ok(())
}

static IE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"MSIE \d|Trident/\d").unwrap());
static EDGE_HTML: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bEdge/\d").unwrap());
static OPERA_MINI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"Opera Mini/(\d+)").unwrap());
static OPERA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Opera/(\d+)|\bOpera[/ ](\d+)").unwrap());
static VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bVersion/(\d+)").unwrap());
static ANDROID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bAndroid (\d+)").unwrap());
static CHROMIUM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Chrome/|Chromium/|CriOS/|Edg/|OPR/").unwrap());

/// Which legacy browser `ua` is, if any.
pub fn legacy_browser(ua: &str) -> Option<&'static str> {
    let number = |re: &Regex| -> Option<u32> {
        let captures = re.captures(ua)?;
        captures
            .iter()
            .skip(1)
            .flatten()
            .next()
            .and_then(|m| m.as_str().parse().ok())
    };
    if IE.is_match(ua) {
        return Some("ie");
    }
    if EDGE_HTML.is_match(ua) {
        return Some("edge_pre_79");
    }
    if ua.contains("Opera Mini") {
        return number(&OPERA_MINI)
            .filter(|v| *v < 8)
            .map(|_| "opera_mini_pre_8");
    }
    if ua.contains("Opera") && !ua.contains("OPR/") {
        // Presto Opera reports `Opera/9.80 … Version/12.16`; older ones only `Opera/N`.
        let version = number(&VERSION).or_else(|| number(&OPERA));
        return version.filter(|v| *v < 15).map(|_| "opera_pre_15");
    }
    if CHROMIUM.is_match(ua) {
        return None;
    }
    if let Some(android) = number(&ANDROID) {
        return (android < 4 && VERSION.is_match(ua)).then_some("android_pre_4");
    }
    if ua.contains("Safari/") {
        return number(&VERSION).filter(|v| *v < 6).map(|_| "safari_pre_6");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LEGACY: [(&str, &str); 7] = [
        ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", "ie"),
        ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "ie"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582", "edge_pre_79"),
        ("Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18", "opera_pre_15"),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/7.1.32052/29.3417; U; en) Presto/2.8.119 Version/11.10", "opera_mini_pre_8"),
        ("Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_8; en-us) AppleWebKit/533.21.1 (KHTML, like Gecko) Version/5.0.5 Safari/533.21.1", "safari_pre_6"),
        ("Mozilla/5.0 (Linux; U; Android 2.3.6; en-us; Nexus S Build/GRK39F) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", "android_pre_4"),
    ];

    const MODERN: [&str; 6] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
    ];

    fn event(ua: &str) -> Value {
        json!({"request": {"url": "https://shop.example.com/", "headers": [["User-Agent", ua]]}})
    }

    #[test]
    fn legacy_browsers_are_filtered() {
        for (ua, name) in LEGACY {
            assert_eq!(legacy_browser(ua), Some(name), "{ua}");
            assert_eq!(
                should_filter(&event(ua), true),
                Err(FilterReason::LegacyBrowsers)
            );
            assert_eq!(should_filter(&event(ua), false), Ok(()));
        }
    }

    #[test]
    fn modern_browsers_and_sdks_pass() {
        for ua in MODERN {
            assert_eq!(legacy_browser(ua), None, "{ua}");
            assert_eq!(should_filter(&event(ua), true), Ok(()));
        }
        assert_eq!(
            should_filter(&json!({"message": "no request"}), true),
            Ok(())
        );
    }
}
