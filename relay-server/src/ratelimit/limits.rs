//! What the rate limiter answers: the limits in force, how they are announced to SDKs
//! (`X-Sentry-Rate-Limits`), and the [`ActiveLimits`] remembered to refuse repeat offenders
//! early.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use relay_core::config::QuotaScope;
use relay_core::DataCategory;

use crate::managed::Scoping;

/// The answer to [`RateLimiter::check`](super::RateLimiter::check).
#[derive(Debug, Default)]
pub struct LimitDecision {
    /// One flag per item: true when the item is over a quota.
    pub limited: Vec<bool>,
    /// The limits that applied, for the response headers.
    pub limits: Vec<ActiveLimit>,
}

/// A limit in force until `until`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveLimit {
    /// The categories limited; empty means all.
    pub categories: Vec<DataCategory>,
    /// The quota's scope.
    pub scope: QuotaScope,
    /// The quota's reason code.
    pub reason: Option<String>,
    /// When the limit clears.
    pub until: Instant,
}

impl ActiveLimit {
    /// Whole seconds until the limit clears, at least 1 (SDKs parse integers).
    pub fn retry_after_secs(&self, now: Instant) -> u64 {
        let remaining_ms = self.until.saturating_duration_since(now).as_millis();
        (remaining_ms.div_ceil(1000) as u64).max(1)
    }

    fn covers(&self, category: DataCategory) -> bool {
        self.categories.is_empty() || self.categories.contains(&category)
    }
}

/// Formats `X-Sentry-Rate-Limits`: `<secs>:<cat;cat>:<scope>[:<reason>], ...`.
pub fn rate_limits_header(limits: &[ActiveLimit], now: Instant) -> String {
    limits
        .iter()
        .map(|limit| {
            let categories: Vec<&str> = limit.categories.iter().map(|c| c.as_str()).collect();
            let mut entry = format!(
                "{}:{}:{}",
                limit.retry_after_secs(now),
                categories.join(";"),
                limit.scope.as_str()
            );
            if let Some(reason) = &limit.reason {
                entry.push(':');
                entry.push_str(reason);
            }
            entry
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads an upstream's `X-Sentry-Rate-Limits` (`<secs>:<cat;cat>:<scope>[:<reason>], ...`)
/// into the limits it announces, in force from `now`.
///
/// Read like the SDKs read it: an empty category list means all categories, a missing scope
/// means the key. Unknown categories are ignored (an entry naming only unknown ones is
/// skipped, rather than widened to all); entries that do not parse are skipped.
pub fn parse_rate_limits(header: &str, now: Instant) -> Vec<ActiveLimit> {
    header
        .split(',')
        .filter_map(|entry| parse_rate_limit(entry.trim(), now))
        .collect()
}

fn parse_rate_limit(entry: &str, now: Instant) -> Option<ActiveLimit> {
    let mut parts = entry.splitn(4, ':');
    let secs: f64 = parts.next()?.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let names = parts.next().unwrap_or_default().trim();
    let categories: Vec<DataCategory> = names
        .split(';')
        .filter(|name| !name.is_empty())
        .filter_map(|name| name.parse().ok())
        .collect();
    if !names.is_empty() && categories.is_empty() {
        return None;
    }
    let scope = match parts.next().unwrap_or_default().trim() {
        "organization" => QuotaScope::Organization,
        "project" => QuotaScope::Project,
        _ => QuotaScope::Key,
    };
    let reason = parts
        .next()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    // At most a day: a hostile or broken upstream does not silence the edge for longer.
    let secs = secs.min(86_400.0);
    Some(ActiveLimit {
        categories,
        scope,
        reason,
        until: now + std::time::Duration::from_secs_f64(secs),
    })
}

/// Limits currently in force, per project: checked before the quotas, so that a limited sender
/// is refused without taking from them.
#[derive(Default)]
pub(super) struct ActiveLimits {
    by_project: RwLock<HashMap<u64, Vec<(Scoping, ActiveLimit)>>>,
}

impl ActiveLimits {
    /// The active limit covering every category for this sender, if any.
    pub(super) fn all_categories(&self, scoping: &Scoping, now: Instant) -> Option<ActiveLimit> {
        self.find(scoping, now, |limit| limit.categories.is_empty())
    }

    pub(super) fn covering(
        &self,
        scoping: &Scoping,
        category: DataCategory,
        now: Instant,
    ) -> Option<ActiveLimit> {
        self.find(scoping, now, |limit| limit.covers(category))
    }

    fn find(
        &self,
        scoping: &Scoping,
        now: Instant,
        pred: impl Fn(&ActiveLimit) -> bool,
    ) -> Option<ActiveLimit> {
        let by_project = self.by_project.read().expect("active limits lock");
        by_project
            .get(&scoping.project_id)?
            .iter()
            .filter(|(owner, limit)| {
                limit.until > now && applies_to(owner, limit.scope, scoping) && pred(limit)
            })
            .map(|(_, limit)| limit.clone())
            .max_by_key(|limit| limit.until)
    }

    /// Whether any limit is in force for the project.
    pub(super) fn any(&self, project_id: u64, now: Instant) -> bool {
        let by_project = self.by_project.read().expect("active limits lock");
        by_project
            .get(&project_id)
            .is_some_and(|limits| limits.iter().any(|(_, l)| l.until > now))
    }

    pub(super) fn insert(&self, scoping: &Scoping, limit: ActiveLimit, now: Instant) {
        let mut by_project = self.by_project.write().expect("active limits lock");
        let limits = by_project.entry(scoping.project_id).or_default();
        limits.retain(|(_, l)| l.until > now);
        limits.push((scoping.clone(), limit));
    }
}

/// Whether a limit recorded for `owner` applies to a request from `scoping`.
fn applies_to(owner: &Scoping, scope: QuotaScope, scoping: &Scoping) -> bool {
    match scope {
        QuotaScope::Key => owner.public_key == scoping.public_key,
        QuotaScope::Project | QuotaScope::Organization => true,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// sentry-python's `_parse_rate_limits`: `int(secs)`, categories split on `;`, an empty
    /// list meaning all (`None`); entries that fail to parse are skipped.
    fn parse_like_python(header: &str) -> Vec<(Option<String>, u64)> {
        let mut out = Vec::new();
        for limit in header.split(',') {
            let parameters: Vec<&str> = limit.trim().split(':').collect();
            let (Some(secs), Some(categories)) = (parameters.first(), parameters.get(1)) else {
                continue;
            };
            let Ok(secs) = secs.parse::<u64>() else {
                continue;
            };
            if categories.is_empty() {
                out.push((None, secs));
            } else {
                out.extend(categories.split(';').map(|c| (Some(c.to_owned()), secs)));
            }
        }
        out
    }

    /// @sentry/core's `updateRateLimits`: `parseInt(secs)` (60 when not a number), `all` for an
    /// empty category list.
    fn parse_like_javascript(header: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for limit in header.trim().split(',') {
            let mut parts = limit.splitn(5, ':');
            let secs = parts.next().unwrap_or_default().trim();
            let digits: String = secs.chars().take_while(char::is_ascii_digit).collect();
            let secs = digits.parse().unwrap_or(60);
            match parts.next().unwrap_or_default() {
                "" => out.push(("all".to_owned(), secs)),
                categories => out.extend(categories.split(';').map(|c| (c.to_owned(), secs))),
            }
        }
        out
    }

    #[test]
    fn sdks_read_our_headers_as_meant() {
        let now = Instant::now();
        let limits = [
            ActiveLimit {
                categories: vec![DataCategory::Error, DataCategory::Transaction],
                scope: QuotaScope::Key,
                reason: Some("key_quota".into()),
                until: now + Duration::from_millis(11_200),
            },
            ActiveLimit {
                categories: vec![],
                scope: QuotaScope::Organization,
                reason: None,
                until: now + Duration::from_secs(300),
            },
        ];
        let header = rate_limits_header(&limits, now);
        assert_eq!(
            parse_like_python(&header),
            vec![
                (Some("error".into()), 12),
                (Some("transaction".into()), 12),
                (None, 300)
            ]
        );
        assert_eq!(
            parse_like_javascript(&header),
            vec![
                ("error".into(), 12),
                ("transaction".into(), 12),
                ("all".into(), 300)
            ]
        );
    }

    #[test]
    fn upstream_headers_read_as_the_sdks_read_them() {
        let now = Instant::now();
        let limits = parse_rate_limits(
            "60:error;transaction:key:key_quota, 3::organization, 5:nonsense:project, x:error, 2.5:default",
            now,
        );
        assert_eq!(limits.len(), 3, "{limits:?}");
        assert_eq!(
            limits[0].categories,
            vec![DataCategory::Error, DataCategory::Transaction]
        );
        assert_eq!(limits[0].scope, QuotaScope::Key);
        assert_eq!(limits[0].reason.as_deref(), Some("key_quota"));
        assert_eq!(limits[0].retry_after_secs(now), 60);
        assert!(
            limits[1].categories.is_empty(),
            "empty list: all categories"
        );
        assert_eq!(limits[1].scope, QuotaScope::Organization);
        assert_eq!(limits[1].reason, None);
        assert_eq!(limits[2].categories, vec![DataCategory::Default]);
        assert_eq!(limits[2].scope, QuotaScope::Key, "no scope: the key");
        assert_eq!(limits[2].retry_after_secs(now), 3);
        // What we announce reads back the same.
        assert_eq!(
            rate_limits_header(
                &parse_rate_limits("60:error;transaction:key:key_quota", now),
                now
            ),
            "60:error;transaction:key:key_quota"
        );
        assert!(parse_rate_limits("", now).is_empty());
        let long = parse_rate_limits("99999999:error", now);
        assert_eq!(long[0].retry_after_secs(now), 86_400);
    }

    #[test]
    fn header_format_vectors() {
        let now = Instant::now();
        let limit =
            |categories: Vec<DataCategory>, scope, reason: Option<&str>, secs| ActiveLimit {
                categories,
                scope,
                reason: reason.map(str::to_owned),
                until: now + Duration::from_millis(secs),
            };
        assert_eq!(
            rate_limits_header(
                &[limit(
                    vec![DataCategory::Error, DataCategory::Transaction],
                    QuotaScope::Key,
                    Some("key_quota"),
                    60_000
                )],
                now
            ),
            "60:error;transaction:key:key_quota"
        );
        assert_eq!(
            rate_limits_header(&[limit(vec![], QuotaScope::Organization, None, 2_500)], now),
            "3::organization"
        );
        assert_eq!(
            rate_limits_header(
                &[
                    limit(vec![DataCategory::LogItem], QuotaScope::Project, None, 10),
                    limit(
                        vec![DataCategory::Monitor],
                        QuotaScope::Project,
                        Some("r"),
                        0
                    )
                ],
                now
            ),
            "1:log_item:project, 1:monitor:project:r"
        );
    }
}
