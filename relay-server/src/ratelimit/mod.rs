//! The rate limiter: enforces project quotas at intake, before anything is spooled.
//!
//! A plain shared service ([`RateLimiter`], `Send + Sync`): the HTTP handlers call
//! [`RateLimiter::check`] directly, on their own thread, and get back which items are limited
//! and the limits to announce in `X-Sentry-Rate-Limits`. Each quota is a governor (GCRA)
//! limiter allowing `limit` units per `window` seconds, keyed by its scope (organization,
//! project or public key). Limits that refused something are remembered until they clear
//! ([`RateLimiter::limit_on_everything`] lets the intake refuse such a sender before reading
//! its body).
//!
//! Time comes from an injected governor clock (`MonotonicClock` when serving,
//! `FakeRelativeClock` in tests, which move it instead of sleeping). The keyed limiters keep one
//! entry per key seen; every [`SWEEP_EVERY`] checks, entries of keys idle long enough to be
//! back at full quota are dropped, so their number follows the keys active in a window, not
//! every key ever seen.
//!
//! With a `redis` section, [`RedisQuotas`] counts the same quotas in Redis for a whole fleet;
//! this limiter then holds the limits learned from Redis and takes over while Redis fails.

mod limits;
mod redis_quotas;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::Quota;
use relay_core::config::{ProjectConfig, QuotaConfig, QuotaScope};
use relay_core::DataCategory;

use crate::managed::Scoping;
use limits::ActiveLimits;
pub use limits::{parse_rate_limits, rate_limits_header, ActiveLimit, LimitDecision};
pub use redis_quotas::RedisQuotas;

/// Checks taken between sweeps of idle keys.
pub const SWEEP_EVERY: u64 = 1_000;

/// A keyed governor limiter on `C`'s time.
type KeyedLimiter<C> = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// One configured quota and its limiter.
struct QuotaLimiter<C: Clock> {
    config: QuotaConfig,
    limiter: Arc<KeyedLimiter<C>>,
}

impl<C: Clock> QuotaLimiter<C> {
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

    /// Takes `quantity` units at `now` (`clock_now` on the limiter's clock); on refusal returns
    /// when the limit clears.
    fn take(
        &self,
        scoping: &Scoping,
        quantity: u64,
        now: Instant,
        clock_now: C::Instant,
    ) -> Result<(), Instant> {
        let Some(n) = NonZeroU32::new(quantity.min(u64::from(u32::MAX)) as u32) else {
            return Ok(());
        };
        match self.limiter.check_key_n(&self.scope_key(scoping), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(now + not_until.wait_time_from(clock_now)),
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
pub struct RateLimiter<C: Clock = MonotonicClock> {
    quotas: HashMap<u64, Vec<QuotaLimiter<C>>>,
    /// Quotas that refuse everything (limit 0), per project.
    blocked: HashMap<u64, Vec<QuotaConfig>>,
    /// Shared with the limiters built from this one by [`Self::with_quotas_of`].
    active: Arc<ActiveLimits>,
    clock: C,
    /// An `Instant` and the clock's reading at that moment, to turn one into the other.
    origin: (Instant, C::Instant),
    checks: AtomicU64,
}

impl RateLimiter {
    /// A limiter for every project's quotas, on the system's monotonic clock.
    pub fn new(projects: &[ProjectConfig]) -> Self {
        Self::with_clock(projects, MonotonicClock)
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// A limiter for every project's quotas, on `clock`. Organization quotas with the same id
    /// share one limiter across the organization's projects.
    pub fn with_clock(projects: &[ProjectConfig], clock: C) -> Self {
        let mut shared: HashMap<String, Arc<KeyedLimiter<C>>> = HashMap::new();
        let mut quotas: HashMap<u64, Vec<QuotaLimiter<C>>> = HashMap::new();
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
                    .or_insert_with(|| {
                        Arc::new(KeyedLimiter::dashmap_with_clock(
                            governor_quota,
                            clock.clone(),
                        ))
                    })
                    .clone();
                quotas.entry(project.id).or_default().push(QuotaLimiter {
                    config: quota.clone(),
                    limiter,
                });
            }
        }
        RateLimiter {
            quotas,
            blocked,
            active: Arc::default(),
            origin: (Instant::now(), clock.now()),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// A limiter for `projects`' quotas that keeps this one's limits in force (the upstream's,
    /// in forward mode, and the quotas' refusals) until they expire, and shares those learned
    /// from now on with it: a reload in forward mode replaces the intake's limiter while the
    /// upstream forwarder still holds this one. The new quotas start full.
    pub fn with_quotas_of(&self, projects: &[ProjectConfig]) -> Self {
        RateLimiter {
            active: self.active.clone(),
            // The limits kept were set against this limiter's time.
            origin: self.origin,
            ..Self::with_clock(projects, self.clock.clone())
        }
    }

    /// The limiter's clock as an `Instant`, against which its limits' `until` are set.
    pub fn now(&self) -> Instant {
        let (instant, reading) = self.origin;
        instant + Duration::from(self.clock.now().duration_since(reading))
    }

    /// The limit in force covering every category for this sender, if any: such a sender is
    /// refused before its request is read.
    pub fn limit_on_everything(&self, scoping: &Scoping) -> Option<ActiveLimit> {
        self.active.all_categories(scoping, self.now())
    }

    /// Remembers a limit announced by the upstream (forward mode) for `scoping`'s sender, so
    /// that later requests it covers are answered at the edge. A project or organization
    /// limit is kept per project: the edge may not know the upstream's organizations.
    pub fn remember_upstream_limit(&self, scoping: &Scoping, limit: ActiveLimit) {
        self.active.insert(scoping, limit, self.now());
    }

    /// Whether requests to the project must be checked: it has quotas, or a limit (its own or
    /// the upstream's) is in force.
    pub fn applies_to_project(&self, project_id: u64) -> bool {
        self.quotas.contains_key(&project_id)
            || self.blocked.contains_key(&project_id)
            || self.active.any(project_id, self.now())
    }

    /// Which of an envelope's items are over quota. `items` holds, per item, the categories
    /// it counts towards and how much; units are taken from the quotas for what is not
    /// limited.
    pub fn check(&self, scoping: &Scoping, items: &[Vec<(DataCategory, u64)>]) -> LimitDecision {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.sweep();
        }
        let now = self.now();
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

    /// Drops the keys that are back at full quota: they are indistinguishable from keys never
    /// seen.
    fn sweep(&self) {
        for quota in self.quotas.values().flatten() {
            quota.limiter.retain_recent();
            quota.limiter.shrink_to_fit();
        }
    }

    /// A limit already known to refuse `category` for this sender: one learned earlier and
    /// still in force, or a quota of 0. Takes nothing from the quotas.
    pub fn known_limit(
        &self,
        scoping: &Scoping,
        category: DataCategory,
        now: Instant,
    ) -> Option<ActiveLimit> {
        if let Some(limit) = self.active.covering(scoping, category, now) {
            return Some(limit);
        }
        let blocked = self.blocked.get(&scoping.project_id).into_iter().flatten();
        blocked
            .into_iter()
            .find(|q| q.categories.is_empty() || q.categories.contains(&category))
            .map(|quota| {
                self.activate(scoping, quota, now + Duration::from_secs(quota.window), now)
            })
    }

    /// Remembers that `quota` refuses this sender until `until` (learned from elsewhere, e.g.
    /// Redis), so that it is refused locally until then.
    pub fn remember(&self, scoping: &Scoping, quota: &QuotaConfig, until: Instant) -> ActiveLimit {
        self.activate(scoping, quota, until, self.now())
    }

    /// The limit refusing `quantity` of `category`, if any; takes the units otherwise.
    fn limit_for(
        &self,
        scoping: &Scoping,
        category: DataCategory,
        quantity: u64,
        now: Instant,
    ) -> Option<ActiveLimit> {
        if let Some(limit) = self.known_limit(scoping, category, now) {
            return Some(limit);
        }
        let clock_now = self.clock.now();
        for quota in self.quotas.get(&scoping.project_id).into_iter().flatten() {
            if !quota.applies_to(category) {
                continue;
            }
            if let Err(until) = quota.take(scoping, quantity, now, clock_now) {
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

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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

    /// A limiter on a clock that moves only when the test moves it.
    fn limiter(projects: &[ProjectConfig]) -> RateLimiter<FakeRelativeClock> {
        RateLimiter::with_clock(projects, FakeRelativeClock::default())
    }

    /// The keys the limiter keeps state for, over all its quotas.
    fn key_count<C: Clock>(limiter: &RateLimiter<C>) -> usize {
        limiter
            .quotas
            .values()
            .flatten()
            .map(|quota| quota.limiter.len())
            .sum()
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
        let limiter = limiter(&[project(
            42,
            vec![quota(
                "errors-per-key",
                &[DataCategory::Error],
                QuotaScope::Key,
                5,
            )],
        )]);
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
        let header = rate_limits_header(&decision.limits, limiter.now());
        let (secs, rest) = header.split_once(':').unwrap();
        assert!((1..=13).contains(&secs.parse::<u64>().unwrap()), "{header}");
        assert_eq!(rest, "error:key:errors-per-key_reason");
    }

    #[test]
    fn organization_quota_is_shared_by_its_projects() {
        let org = quota("org-all", &[], QuotaScope::Organization, 3);
        let limiter = limiter(&[project(1, vec![org.clone()]), project(2, vec![org])]);
        let item = vec![vec![(DataCategory::Session, 1)]];
        let limited: Vec<bool> = [1, 2, 1, 2, 1]
            .iter()
            .map(|&p| limiter.check(&scoping(p, "k"), &item).limited[0])
            .collect();
        assert_eq!(limited, [false, false, false, true, true]);
    }

    #[test]
    fn a_limiter_with_new_quotas_keeps_and_shares_the_limits_in_force() {
        let old = limiter(&[project(1, vec![])]);
        let (s, item) = (scoping(1, "k"), vec![vec![(DataCategory::Error, 1)]]);
        let upstream = ActiveLimit {
            categories: vec![DataCategory::Transaction],
            scope: QuotaScope::Project,
            reason: Some("upstream".into()),
            until: old.now() + Duration::from_secs(30),
        };
        old.remember_upstream_limit(&s, upstream.clone());
        let new =
            old.with_quotas_of(&[project(1, vec![quota("one", &[], QuotaScope::Project, 1)])]);
        // The upstream's limit is kept, the new quota in force.
        let transaction = vec![vec![(DataCategory::Transaction, 1)]];
        assert_eq!(
            new.check(&s, &transaction).limits,
            std::slice::from_ref(&upstream)
        );
        assert!(!new.check(&s, &item).limited[0]);
        assert!(new.check(&s, &item).limited[0]);
        // A limit learned through the old limiter (the forwarder's) reaches the new one.
        let everything = ActiveLimit {
            categories: vec![],
            ..upstream
        };
        assert!(new.limit_on_everything(&scoping(2, "k")).is_none());
        old.remember_upstream_limit(&scoping(2, "k"), everything);
        assert!(new.limit_on_everything(&scoping(2, "k")).is_some());
    }

    #[test]
    fn active_limits_short_circuit_and_cover_all_categories() {
        let limiter = limiter(&[project(1, vec![quota("all", &[], QuotaScope::Project, 1)])]);
        let s = scoping(1, "k");
        assert!(limiter.limit_on_everything(&s).is_none());
        let item = vec![vec![(DataCategory::Error, 1)]];
        assert!(!limiter.check(&s, &item).limited[0]);
        assert!(limiter.check(&s, &item).limited[0]);
        let cached = limiter
            .limit_on_everything(&s)
            .expect("cached after refusal");
        assert_eq!(cached.scope, QuotaScope::Project);
        assert!(limiter.limit_on_everything(&scoping(2, "k")).is_none());
    }

    #[test]
    fn zero_limit_blocks_and_attachment_bytes_count() {
        let limiter = limiter(&[project(
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
        )]);
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

    #[test]
    fn a_limit_clears_when_its_window_has_passed() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(
            &[project(
                1,
                vec![quota("one", &[DataCategory::Error], QuotaScope::Key, 1)],
            )],
            clock.clone(),
        );
        let (s, error) = (scoping(1, "k"), vec![vec![(DataCategory::Error, 1)]]);
        assert!(!limiter.check(&s, &error).limited[0]);
        let refused = limiter.check(&s, &error);
        assert!(refused.limited[0]);
        assert_eq!(refused.limits[0].retry_after_secs(limiter.now()), 60);

        clock.advance(Duration::from_secs(45));
        let refused = limiter.check(&s, &error);
        assert!(refused.limited[0], "still within the window");
        assert_eq!(refused.limits[0].retry_after_secs(limiter.now()), 15);

        clock.advance(Duration::from_secs(16));
        assert!(
            !limiter.check(&s, &error).limited[0],
            "the window has passed"
        );
    }

    #[test]
    fn idle_keys_are_swept() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(
            &[project(
                1,
                vec![quota("per-key", &[DataCategory::Error], QuotaScope::Key, 5)],
            )],
            clock.clone(),
        );
        let error = vec![vec![(DataCategory::Error, 1)]];
        for key in ["a", "b", "c"] {
            assert!(!limiter.check(&scoping(1, key), &error).limited[0]);
        }
        assert_eq!(key_count(&limiter), 3);

        // A minute later "a" to "c" are back at full quota; "d" keeps sending until a sweep.
        clock.advance(Duration::from_secs(61));
        for _ in 0..SWEEP_EVERY {
            limiter.check(&scoping(1, "d"), &error);
        }
        assert_eq!(key_count(&limiter), 1, "only the active key is kept");
    }
}
