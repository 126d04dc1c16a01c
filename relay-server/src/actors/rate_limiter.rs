//! The RateLimiter: enforces project quotas at intake, before anything is spooled.
//!
//! Each quota is a governor (GCRA) limiter allowing `limit` units per `window` seconds, keyed
//! by its scope (organization, project or public key). The intake asks with [`CheckLimits`]
//! (via `try_send`; a full mailbox is answered 503) and gets back which items are limited and
//! the limits to announce in `X-Sentry-Rate-Limits`. Active limits are also kept in
//! [`ActiveLimits`], which the intake reads directly to refuse repeat offenders before reading
//! their body.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use relay_core::config::{ProjectConfig, QuotaConfig, QuotaScope};
use relay_core::DataCategory;
use tokio::sync::oneshot;

use super::MailboxDepth;
use crate::managed::Scoping;

/// Asks which of an envelope's items are over quota.
pub struct CheckLimits {
    /// Who sent it.
    pub scoping: Scoping,
    /// For each item, the categories it counts towards and how much.
    pub items: Vec<Vec<(DataCategory, u64)>>,
    /// Where the decision goes.
    pub reply: oneshot::Sender<LimitDecision>,
}

impl Message for CheckLimits {
    type Result = ();
}

/// The answer to [`CheckLimits`].
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

/// Limits currently in force, per project, readable by the intake without a message.
#[derive(Default)]
pub struct ActiveLimits {
    by_project: RwLock<HashMap<u64, Vec<(Scoping, ActiveLimit)>>>,
}

impl ActiveLimits {
    /// The active limit covering every category for this sender, if any.
    pub fn all_categories(&self, scoping: &Scoping, now: Instant) -> Option<ActiveLimit> {
        self.find(scoping, now, |limit| limit.categories.is_empty())
    }

    fn covering(
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

    fn insert(&self, scoping: &Scoping, limit: ActiveLimit, now: Instant) {
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

/// One configured quota and its limiter.
struct QuotaLimiter {
    config: QuotaConfig,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl QuotaLimiter {
    fn applies_to(&self, category: DataCategory) -> bool {
        self.config.categories.is_empty() || self.config.categories.contains(&category)
    }

    fn scope_key(&self, scoping: &Scoping) -> String {
        match self.config.scope {
            QuotaScope::Key => scoping.public_key.clone(),
            QuotaScope::Project => scoping.project_id.to_string(),
            QuotaScope::Organization => scoping.organization.unwrap_or_default().to_string(),
        }
    }

    /// Takes `quantity` units; on refusal returns when the limit clears.
    fn take(&self, scoping: &Scoping, quantity: u64, clock: &DefaultClock) -> Result<(), Instant> {
        let Some(n) = NonZeroU32::new(quantity.min(u64::from(u32::MAX)) as u32) else {
            return Ok(());
        };
        let now = Instant::now();
        match self.limiter.check_key_n(&self.scope_key(scoping), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(now + not_until.wait_time_from(clock.now())),
            // More than the whole quota at once: limited for a full window.
            Err(_) => Err(now + Duration::from_secs(self.config.window)),
        }
    }
}

fn governor_quota(quota: &QuotaConfig) -> Option<Quota> {
    let limit = NonZeroU32::new(quota.limit.min(u64::from(u32::MAX)) as u32)?;
    let period = Duration::from_secs(quota.window)
        .checked_div(limit.get())?
        .max(Duration::from_nanos(1));
    Quota::with_period(period).map(|q| q.allow_burst(limit))
}

/// Enforces quotas; see the module docs.
pub struct RateLimiter {
    depth: MailboxDepth,
    quotas: HashMap<u64, Vec<QuotaLimiter>>,
    /// Quotas that refuse everything (limit 0), per project.
    blocked: HashMap<u64, Vec<QuotaConfig>>,
    active: Arc<ActiveLimits>,
    clock: DefaultClock,
}

impl RateLimiter {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "rate_limiter";

    /// Builds limiters for every project's quotas. Organization quotas with the same id share
    /// one limiter across the organization's projects.
    pub fn new(projects: &[ProjectConfig], active: Arc<ActiveLimits>) -> Self {
        let mut shared: HashMap<String, Arc<DefaultKeyedRateLimiter<String>>> = HashMap::new();
        let mut quotas: HashMap<u64, Vec<QuotaLimiter>> = HashMap::new();
        let mut blocked: HashMap<u64, Vec<QuotaConfig>> = HashMap::new();
        for project in projects {
            for quota in &project.quotas {
                let Some(governor_quota) = governor_quota(quota) else {
                    blocked.entry(project.id).or_default().push(quota.clone());
                    continue;
                };
                let id = match quota.scope {
                    QuotaScope::Organization => format!(
                        "org:{}:{}",
                        project.organization.unwrap_or_default(),
                        quota.id
                    ),
                    _ => format!("project:{}:{}", project.id, quota.id),
                };
                let limiter = shared
                    .entry(id)
                    .or_insert_with(|| Arc::new(DefaultKeyedRateLimiter::keyed(governor_quota)))
                    .clone();
                quotas.entry(project.id).or_default().push(QuotaLimiter {
                    config: quota.clone(),
                    limiter,
                });
            }
        }
        RateLimiter {
            depth: MailboxDepth::new(Self::MAILBOX),
            quotas,
            blocked,
            active,
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, scoping: &Scoping, items: &[Vec<(DataCategory, u64)>]) -> LimitDecision {
        let now = Instant::now();
        let mut decision = LimitDecision {
            limited: vec![false; items.len()],
            limits: Vec::new(),
        };
        for (index, categories) in items.iter().enumerate() {
            for &(category, quantity) in categories {
                if let Some(limit) = self.limit_for(scoping, category, quantity, now) {
                    decision.limited[index] = true;
                    if !decision.limits.contains(&limit) {
                        decision.limits.push(limit);
                    }
                }
            }
        }
        decision
    }

    /// The limit refusing `quantity` of `category`, if any; takes the units otherwise.
    fn limit_for(
        &self,
        scoping: &Scoping,
        category: DataCategory,
        quantity: u64,
        now: Instant,
    ) -> Option<ActiveLimit> {
        if let Some(limit) = self.active.covering(scoping, category, now) {
            return Some(limit);
        }
        let blocked = self.blocked.get(&scoping.project_id).into_iter().flatten();
        if let Some(quota) = blocked
            .into_iter()
            .find(|q| q.categories.is_empty() || q.categories.contains(&category))
        {
            return Some(self.activate(
                scoping,
                quota,
                now + Duration::from_secs(quota.window),
                now,
            ));
        }
        for quota in self.quotas.get(&scoping.project_id).into_iter().flatten() {
            if !quota.applies_to(category) {
                continue;
            }
            if let Err(until) = quota.take(scoping, quantity, &self.clock) {
                return Some(self.activate(scoping, &quota.config, until, now));
            }
        }
        None
    }

    fn activate(
        &self,
        scoping: &Scoping,
        quota: &QuotaConfig,
        until: Instant,
        now: Instant,
    ) -> ActiveLimit {
        let limit = ActiveLimit {
            categories: quota.categories.clone(),
            scope: quota.scope,
            reason: quota.reason.clone(),
            until,
        };
        self.active.insert(scoping, limit.clone(), now);
        limit
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Keyed limiters keep an entry per key; drop the ones that are back to full capacity.
        ctx.run_interval(Duration::from_secs(60), |this, _| {
            for quota in this.quotas.values().flatten() {
                quota.limiter.retain_recent();
                quota.limiter.shrink_to_fit();
            }
        });
    }
}

impl Handler<CheckLimits> for RateLimiter {
    type Result = ();

    fn handle(&mut self, message: CheckLimits, _ctx: &mut Self::Context) {
        self.depth.received();
        let decision = self.check(&message.scoping, &message.items);
        // The request may be gone (client hung up); then nothing is owed.
        let _ = message.reply.send(decision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(id: &str, categories: &[DataCategory], scope: QuotaScope, limit: u64) -> QuotaConfig {
        QuotaConfig {
            id: id.into(),
            categories: categories.to_vec(),
            scope,
            limit,
            window: 60,
            reason: Some(format!("{id}_reason")),
        }
    }

    fn project(id: u64, quotas: Vec<QuotaConfig>) -> ProjectConfig {
        ProjectConfig {
            organization: Some(7),
            quotas,
            ..ProjectConfig::new(id, Vec::new())
        }
    }

    fn scoping(project_id: u64, key: &str) -> Scoping {
        Scoping {
            project_id,
            public_key: key.into(),
            organization: Some(7),
            client_ip: None,
        }
    }

    #[test]
    fn key_quota_limits_only_its_category_and_key() {
        let limiter = RateLimiter::new(
            &[project(
                42,
                vec![quota(
                    "errors-per-key",
                    &[DataCategory::Error],
                    QuotaScope::Key,
                    5,
                )],
            )],
            Arc::default(),
        );
        let error = vec![vec![(DataCategory::Error, 1)]];
        let a = scoping(42, "a");
        let accepted = (0..20)
            .filter(|_| !limiter.check(&a, &error).limited[0])
            .count();
        assert_eq!(accepted, 5);

        let transaction = vec![vec![(DataCategory::Transaction, 1)]];
        assert!(
            !limiter.check(&a, &transaction).limited[0],
            "other categories flow"
        );
        assert!(
            !limiter.check(&scoping(42, "b"), &error).limited[0],
            "other keys have their own quota"
        );

        let decision = limiter.check(&a, &error);
        assert_eq!(decision.limits.len(), 1);
        let header = rate_limits_header(&decision.limits, Instant::now());
        let (secs, rest) = header.split_once(':').unwrap();
        assert!((1..=13).contains(&secs.parse::<u64>().unwrap()), "{header}");
        assert_eq!(rest, "error:key:errors-per-key_reason");
    }

    #[test]
    fn organization_quota_is_shared_by_its_projects() {
        let org = quota("org-all", &[], QuotaScope::Organization, 3);
        let limiter = RateLimiter::new(
            &[project(1, vec![org.clone()]), project(2, vec![org])],
            Arc::default(),
        );
        let item = vec![vec![(DataCategory::Session, 1)]];
        let limited: Vec<bool> = [1, 2, 1, 2, 1]
            .iter()
            .map(|&p| limiter.check(&scoping(p, "k"), &item).limited[0])
            .collect();
        assert_eq!(limited, [false, false, false, true, true]);
    }

    #[test]
    fn active_limits_short_circuit_and_cover_all_categories() {
        let active = Arc::new(ActiveLimits::default());
        let limiter = RateLimiter::new(
            &[project(1, vec![quota("all", &[], QuotaScope::Project, 1)])],
            active.clone(),
        );
        let s = scoping(1, "k");
        let now = Instant::now();
        assert!(active.all_categories(&s, now).is_none());
        let item = vec![vec![(DataCategory::Error, 1)]];
        assert!(!limiter.check(&s, &item).limited[0]);
        assert!(limiter.check(&s, &item).limited[0]);
        let cached = active
            .all_categories(&s, Instant::now())
            .expect("cached after refusal");
        assert_eq!(cached.scope, QuotaScope::Project);
        assert!(active
            .all_categories(&scoping(2, "k"), Instant::now())
            .is_none());
    }

    #[test]
    fn zero_limit_blocks_and_attachment_bytes_count() {
        let limiter = RateLimiter::new(
            &[project(
                1,
                vec![
                    quota(
                        "no-replays",
                        &[DataCategory::Replay],
                        QuotaScope::Project,
                        0,
                    ),
                    quota(
                        "bytes",
                        &[DataCategory::Attachment],
                        QuotaScope::Project,
                        1000,
                    ),
                ],
            )],
            Arc::default(),
        );
        let s = scoping(1, "k");
        assert!(
            limiter
                .check(&s, &[vec![(DataCategory::Replay, 1)]])
                .limited[0]
        );
        let attachment = |bytes| {
            vec![vec![
                (DataCategory::Attachment, bytes),
                (DataCategory::AttachmentItem, 1),
            ]]
        };
        assert!(!limiter.check(&s, &attachment(600)).limited[0]);
        assert!(
            limiter.check(&s, &attachment(600)).limited[0],
            "1200 bytes exceed 1000"
        );
        assert!(
            limiter.check(&s, &attachment(5000)).limited[0],
            "larger than the whole quota"
        );
    }

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
