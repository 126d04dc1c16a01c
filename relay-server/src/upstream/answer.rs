//! What an upstream's answer means for the forwarded envelope ([`Answer`]).

use std::time::Instant;

use crate::ratelimit::{parse_rate_limits, ActiveLimit};
use relay_core::config::QuotaScope;

/// How long a `429` without `X-Sentry-Rate-Limits` or `Retry-After` limits everything, in
/// seconds (what the SDKs assume too).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// The upstream's answer, classified.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// 2xx: the upstream has the envelope. Limits announced on the side (a `200` with
    /// `X-Sentry-Rate-Limits` when part of the envelope was limited) are to be remembered.
    Accepted {
        /// Limits announced with the answer.
        limits: Vec<ActiveLimit>,
    },
    /// 429: the envelope is dropped as rate limited; the limits are to be remembered.
    RateLimited {
        /// The limits announced (one on everything when the upstream named none).
        limits: Vec<ActiveLimit>,
        /// The first limit's reason, for the outcome.
        reason: String,
    },
    /// 401/403: the key is refused; remembered, and the envelope dropped.
    KeyRefused {
        /// The status answered.
        status: u16,
        /// The upstream's reason.
        reason: String,
    },
    /// Another 4xx: the envelope is dropped as invalid.
    Refused {
        /// The status answered.
        status: u16,
        /// The upstream's reason.
        reason: String,
    },
    /// 5xx (or an answer outside 2xx-5xx): retried later.
    Failed {
        /// The status answered.
        status: u16,
        /// The upstream's reason.
        reason: String,
    },
}

/// The parts of an HTTP answer that decide its meaning.
pub struct RawAnswer<'a> {
    /// The status code.
    pub status: u16,
    /// `X-Sentry-Rate-Limits`, if any.
    pub rate_limits: Option<&'a str>,
    /// `Retry-After` in seconds, if any.
    pub retry_after: Option<&'a str>,
    /// The start of the body.
    pub body: &'a [u8],
}

impl Answer {
    /// Classifies `raw`, received at `now`.
    pub fn classify(raw: &RawAnswer<'_>, now: Instant) -> Self {
        let announced = raw
            .rate_limits
            .map(|header| parse_rate_limits(header, now))
            .unwrap_or_default();
        match raw.status {
            200..=299 => Answer::Accepted { limits: announced },
            429 => {
                let limits = if announced.is_empty() {
                    vec![limit_on_everything(raw.retry_after, now)]
                } else {
                    announced
                };
                let reason = limits
                    .iter()
                    .find_map(|limit| limit.reason.clone())
                    .unwrap_or_else(|| "upstream_rate_limited".to_owned());
                Answer::RateLimited { limits, reason }
            }
            401 | 403 => Answer::KeyRefused {
                status: raw.status,
                reason: reason(raw.body),
            },
            400..=499 => Answer::Refused {
                status: raw.status,
                reason: reason(raw.body),
            },
            status => Answer::Failed {
                status,
                reason: reason(raw.body),
            },
        }
    }

    /// The `result` label of `relay_upstream_requests_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Answer::Accepted { .. } => "2xx",
            Answer::RateLimited { .. } => "429",
            Answer::KeyRefused { .. } | Answer::Refused { .. } => "4xx",
            Answer::Failed { .. } => "5xx",
        }
    }
}

/// A 429 that names no categories limits them all, for `Retry-After` seconds, for the key.
fn limit_on_everything(retry_after: Option<&str>, now: Instant) -> ActiveLimit {
    let secs = retry_after
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
        .clamp(1, 86_400);
    ActiveLimit {
        categories: Vec::new(),
        scope: QuotaScope::Key,
        reason: None,
        until: now + std::time::Duration::from_secs(secs),
    }
}

/// Bytes of the upstream's reason kept for the log line and the outcome's detail.
const REASON_CHARS: usize = 300;

/// The upstream's reason: `detail` of a JSON body (relays and Sentry answer so), else the
/// body's text, cut short.
fn reason(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => match json.get("detail").and_then(|d| d.as_str()) {
            Some(detail) => detail.to_owned(),
            None => json.to_string(),
        },
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let text: String = text.chars().take(REASON_CHARS).collect();
    if text.is_empty() {
        "(no reason given)".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use relay_core::DataCategory;

    use super::*;

    fn classify(status: u16, rate_limits: Option<&str>, body: &[u8]) -> Answer {
        let raw = RawAnswer {
            status,
            rate_limits,
            retry_after: None,
            body,
        };
        Answer::classify(&raw, Instant::now())
    }

    #[test]
    fn each_status_class_means_what_the_edge_does_with_the_entry() {
        assert_eq!(
            classify(200, None, b"{}"),
            Answer::Accepted { limits: vec![] }
        );
        let Answer::Accepted { limits } = classify(200, Some("60:attachment:key"), b"") else {
            panic!("2xx")
        };
        assert_eq!(limits[0].categories, vec![DataCategory::Attachment]);

        let Answer::RateLimited { limits, reason } =
            classify(429, Some("60:error:project:org_quota"), b"{}")
        else {
            panic!("429")
        };
        assert_eq!(reason, "org_quota");
        assert_eq!(limits[0].scope, QuotaScope::Project);

        assert_eq!(
            classify(403, None, br#"{"detail": "public key k is disabled"}"#),
            Answer::KeyRefused {
                status: 403,
                reason: "public key k is disabled".into()
            }
        );
        assert_eq!(
            classify(400, None, b"bad envelope"),
            Answer::Refused {
                status: 400,
                reason: "bad envelope".into()
            }
        );
        assert_eq!(classify(413, None, b"").metric_label(), "4xx");
        assert_eq!(
            classify(503, None, b""),
            Answer::Failed {
                status: 503,
                reason: "(no reason given)".into()
            }
        );
        let long = vec![b'x'; 5000];
        let Answer::Refused { reason, .. } = classify(400, None, &long) else {
            panic!("400")
        };
        assert_eq!(reason.len(), REASON_CHARS);
    }

    #[test]
    fn a_bare_429_limits_everything_for_retry_after() {
        let now = Instant::now();
        let raw = RawAnswer {
            status: 429,
            rate_limits: None,
            retry_after: Some("7"),
            body: b"",
        };
        let Answer::RateLimited { limits, reason } = Answer::classify(&raw, now) else {
            panic!("429")
        };
        assert_eq!(reason, "upstream_rate_limited");
        assert!(limits[0].categories.is_empty());
        assert_eq!(limits[0].retry_after_secs(now), 7);
        let raw = RawAnswer {
            retry_after: None,
            ..raw
        };
        let Answer::RateLimited { limits, .. } = Answer::classify(&raw, now) else {
            panic!("429")
        };
        assert_eq!(limits[0].retry_after_secs(now), DEFAULT_RETRY_AFTER_SECS);
    }
}
