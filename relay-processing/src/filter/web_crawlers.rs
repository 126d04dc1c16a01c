//! Web crawler filter (`web-crawlers`): drops events produced by search engines, link
//! previewers, uptime monitors and other bots, read from the event's `User-Agent` request
//! header (the page visitor's agent, not the SDK's).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{user_agent, FilterReason};

/// Known crawler user agents (case-insensitive).
static CRAWLERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)Mediapartners-Google|AdsBot-Google|Googlebot|FeedFetcher-Google|Google-InspectionTool|",
        r"Storebot-Google|Google-Site-Verification|bingbot|BingPreview|Baiduspider|Slurp|Sogou|",
        r"YandexBot|DuckDuckBot|Applebot|facebookexternalhit|facebookcatalog|Twitterbot|",
        r"LinkedInBot|Slackbot|Discordbot|TelegramBot|WhatsApp/|ia_archiver|AhrefsBot|SemrushBot|",
        r"MJ12bot|DotBot|PetalBot|Bytespider|GPTBot|ClaudeBot|CCBot|Amazonbot|",
        r"Calypso AppEngine|pingdom|lyticsbot|UptimeRobot|HeadlessChrome|PhantomJS|",
        r"bots?[/\s);]|spider[/\s);]|crawler\b"
    ))
    .expect("valid regex")
});

/// `Err(WebCrawlers)` when `enabled` and the event's user agent is a crawler.
pub fn should_filter(event: &Value, enabled: bool) -> Result<(), FilterReason> {
    if enabled && user_agent(event).is_some_and(is_crawler) {
        return Err(FilterReason::WebCrawlers);
    }
    Ok(())
}

/// Whether `ua` is a known crawler's user agent.
pub fn is_crawler(ua: &str) -> bool {
    CRAWLERS.is_match(ua)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crawlers_are_filtered() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; SomeNewBot/1.0; +https://example.com/bot)",
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ] {
            let event = json!({"request": {"headers": {"User-Agent": ua}}});
            assert_eq!(should_filter(&event, true), Err(FilterReason::WebCrawlers), "{ua}");
            assert_eq!(should_filter(&event, false), Ok(()));
        }
    }

    #[test]
    fn people_and_sdks_pass() {
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.105 Chrome/130.0 Electron/33.2.0 Safari/537.36",
            "sentry.python/2.75.0",
            "Robotics Dashboard/1.0",
        ] {
            let event = json!({"request": {"headers": {"User-Agent": ua}}});
            assert_eq!(should_filter(&event, true), Ok(()), "{ua}");
        }
    }
}
