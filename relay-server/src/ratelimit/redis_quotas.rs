//! Quotas counted in Redis, shared by every relay of a fleet.
//!
//! One check is one script call ([`SCRIPT`]) taking all of an envelope's items from their
//! quotas at once. Limits it reports are remembered by the local [`RateLimiter`] until they
//! clear, so repeat senders are refused without asking Redis (and before their body is read).
//!
//! Redis down, slow (longer than `redis.timeout_ms`) or refusing: the check is made by the
//! local limiter instead, with the same quotas, and the relay says so once (log, and
//! `relay_quota_fallback` in `/metrics`). A probe, every [`PROBE_INTERVAL`], (re)connects and
//! runs the script with nothing to count; its first success ends the fallback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{RedisError, Script};
use arc_swap::ArcSwap;
use relay_core::config::{ProjectConfig, QuotaConfig, QuotaScope, RedisConfig, RedisUrl};
use relay_core::DataCategory;

use super::{LimitDecision, RateLimiter};
use crate::managed::Scoping;
use crate::metrics;

/// The check script; see its header for its arguments and answer.
const SCRIPT: &str = include_str!("quota_check.lua");

/// How often the probe (re)connects or tries the script while Redis is not used.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// How long the probe waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to one server (reconnecting by itself) or to a cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Why a check was not answered by Redis.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error("not connected")]
    NotConnected,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("the script answered {0} numbers for {1} items")]
    Malformed(usize, usize),
}

impl CheckError {
    /// The `reason` label of `relay_quota_redis_errors_total`.
    fn label(&self) -> &'static str {
        match self {
            CheckError::NotConnected => "not_connected",
            CheckError::Timeout(_) => "timeout",
            CheckError::Redis(error) if error.is_timeout() => "timeout",
            CheckError::Redis(_) => "error",
            CheckError::Malformed(..) => "malformed",
        }
    }
}

/// One window counter an item takes from.
#[derive(Debug, PartialEq)]
struct Counter<'a> {
    key: String,
    quota: &'a QuotaConfig,
    quantity: u64,
}

/// An item still to be checked in Redis, and its counters in script order.
#[derive(Debug)]
struct ItemCheck<'a> {
    item: usize,
    counters: Vec<Counter<'a>>,
}

/// The quotas counted in Redis, per project.
type ProjectQuotas = HashMap<u64, Vec<QuotaConfig>>;

/// Quotas that take units (limit above 0), per project.
fn counted_quotas(projects: &[ProjectConfig]) -> ProjectQuotas {
    projects
        .iter()
        .map(|project| {
            let counted = project.quotas.iter().filter(|q| q.limit > 0).cloned();
            (project.id, counted.collect())
        })
        .collect()
}

/// Counts quotas in Redis; see the module docs.
pub struct RedisQuotas {
    /// Quotas that take units (limit above 0), per project; quotas of 0 are the local
    /// limiter's (they refuse without counting). Replaced on config reload.
    quotas: ArcSwap<ProjectQuotas>,
    script: Script,
    timeout: Duration,
    connection: RwLock<Option<Connection>>,
    fallback: AtomicBool,
}

impl RedisQuotas {
    /// The quotas of `projects`, counted in the Redis of `config`. Starts the probe that
    /// connects (on the current actix/tokio runtime): until it has, checks are local.
    pub fn start(config: &RedisConfig, projects: &[ProjectConfig]) -> Arc<Self> {
        let quotas = Arc::new(RedisQuotas {
            quotas: ArcSwap::from_pointee(counted_quotas(projects)),
            script: Script::new(SCRIPT),
            timeout: Duration::from_millis(config.timeout_ms),
            connection: RwLock::new(None),
            fallback: AtomicBool::new(false),
        });
        metrics::set_quota_fallback(false);
        actix_web::rt::spawn(probe(quotas.clone(), config.url.clone()));
        quotas
    }

    /// Counts the quotas of `projects` from now on (a config reload); the counters of quotas
    /// that stay are kept in Redis.
    pub fn set_projects(&self, projects: &[ProjectConfig]) {
        self.quotas.store(Arc::new(counted_quotas(projects)));
    }

    /// Whether checks are made by the local limiter because Redis failed.
    pub fn in_fallback(&self) -> bool {
        self.fallback.load(Ordering::Relaxed)
    }

    /// Which of an envelope's items are over quota (as [`RateLimiter::check`]), counted in
    /// Redis unless a known limit refuses them already or Redis fails.
    pub async fn check(
        &self,
        local: &RateLimiter,
        scoping: &Scoping,
        items: &[Vec<(DataCategory, u64)>],
    ) -> LimitDecision {
        if self.in_fallback() {
            return local.check(scoping, items);
        }
        let now = local.now();
        let mut decision = LimitDecision {
            limited: vec![false; items.len()],
            limits: Vec::new(),
        };
        let quotas = self.quotas.load_full();
        let mut pending = Vec::new();
        for (item, categories) in items.iter().enumerate() {
            let known = categories
                .iter()
                .find_map(|&(category, _)| local.known_limit(scoping, category, now));
            match known {
                Some(limit) => decision.refuse(item, limit),
                None => pending.push(ItemCheck {
                    item,
                    counters: counters(&quotas, scoping, categories),
                }),
            }
        }
        pending.retain(|check| !check.counters.is_empty());
        if pending.is_empty() {
            return decision;
        }
        match self.run(&pending).await {
            Ok(answers) => {
                for (check, answer) in pending.iter().zip(answers) {
                    if let Some((counter, ttl)) = answer {
                        let quota = check.counters[counter].quota;
                        let limit = local.remember(scoping, quota, now + ttl);
                        decision.refuse(check.item, limit);
                    }
                }
                decision
            }
            Err(error) => {
                self.enter_fallback(&error);
                local.check(scoping, items)
            }
        }
    }
}

/// The window counters an item with these categories and quantities takes from; one per
/// quota (a quota covering several of the item's categories takes their sum).
fn counters<'a>(
    quotas: &'a ProjectQuotas,
    scoping: &Scoping,
    categories: &[(DataCategory, u64)],
) -> Vec<Counter<'a>> {
    let mut counters: Vec<Counter<'a>> = Vec::new();
    for quota in quotas.get(&scoping.project_id).into_iter().flatten() {
        let quantity: u64 = categories
            .iter()
            .filter(|(category, _)| {
                quota.categories.is_empty() || quota.categories.contains(category)
            })
            .map(|(_, quantity)| quantity)
            .sum();
        if quantity > 0 {
            counters.push(Counter {
                key: counter_key(quota, scoping),
                quota,
                quantity,
            });
        }
    }
    counters
}

impl RedisQuotas {
    /// Runs the script for `pending`; per item, the refusing counter and how long it refuses.
    async fn run(
        &self,
        pending: &[ItemCheck<'_>],
    ) -> Result<Vec<Option<(usize, Duration)>>, CheckError> {
        let connection = self
            .connection
            .read()
            .expect("redis connection lock")
            .clone();
        let mut connection = connection.ok_or(CheckError::NotConnected)?;
        let mut invocation = self.script.prepare_invoke();
        for check in pending {
            invocation.arg(check.counters.len());
            for counter in &check.counters {
                invocation.key(&counter.key);
                invocation
                    .arg(counter.quota.limit)
                    .arg(counter.quantity)
                    .arg(counter.quota.window);
            }
        }
        let call = async {
            match &mut connection {
                Connection::Single(c) => invocation.invoke_async::<Vec<i64>>(c).await,
                Connection::Cluster(c) => invocation.invoke_async::<Vec<i64>>(c).await,
            }
        };
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| CheckError::Timeout(self.timeout))??;
        parse_answer(&answer, pending.len())
    }

    /// Switches to the local limiter; logged once per outage.
    fn enter_fallback(&self, error: &CheckError) {
        metrics::count_quota_redis_error(error.label());
        if !self.fallback.swap(true, Ordering::Relaxed) {
            metrics::set_quota_fallback(true);
            tracing::warn!(
                %error,
                "Redis quota check failed: each relay counts quotas on its own until Redis answers again"
            );
        }
    }

    /// Switches back to Redis after the probe's success.
    fn leave_fallback(&self) {
        if self.fallback.swap(false, Ordering::Relaxed) {
            metrics::set_quota_fallback(false);
            tracing::info!("Redis answers again: quotas are counted in Redis");
        }
    }
}

impl LimitDecision {
    fn refuse(&mut self, item: usize, limit: super::ActiveLimit) {
        self.limited[item] = true;
        if !self.limits.contains(&limit) {
            self.limits.push(limit);
        }
    }
}

/// The script's answer, two numbers per item, as the refusing counter's index in the item's
/// counters and the time until its window ends.
fn parse_answer(
    answer: &[i64],
    items: usize,
) -> Result<Vec<Option<(usize, Duration)>>, CheckError> {
    if answer.len() != items * 2 {
        return Err(CheckError::Malformed(answer.len(), items));
    }
    Ok(answer
        .chunks_exact(2)
        .map(|pair| {
            let position = usize::try_from(pair[0]).unwrap_or(0);
            (position > 0).then(|| {
                let ttl = Duration::from_millis(u64::try_from(pair[1]).unwrap_or(0));
                (position - 1, ttl)
            })
        })
        .collect())
}

/// The Redis key of a quota's window counter for this sender. The `{...}` hash tag is the
/// organization (or, without one, the project): every counter of one check is in the same
/// cluster slot, as a script's keys must be.
fn counter_key(quota: &QuotaConfig, scoping: &Scoping) -> String {
    let tag = match scoping.organization {
        Some(org) => format!("o{org}"),
        None => format!("p{}", scoping.project_id),
    };
    let scope = match quota.scope {
        QuotaScope::Key => format!("key:{}:{}", scoping.project_id, scoping.public_key),
        QuotaScope::Project => format!("project:{}", scoping.project_id),
        QuotaScope::Organization => format!("org:{}", scoping.organization.unwrap_or_default()),
    };
    format!("relay:quota:{{{tag}}}:{scope}:{}", quota.id)
}

/// Connects, and while in fallback tries the script until Redis runs it; runs for the
/// process's life.
async fn probe(quotas: Arc<RedisQuotas>, url: RedisUrl) {
    let mut unreachable_logged = false;
    loop {
        let connected = quotas
            .connection
            .read()
            .expect("redis connection lock")
            .clone();
        let connection = match connected {
            Some(connection) => Some(connection),
            None => match connect(&url, quotas.timeout).await {
                Ok(connection) => {
                    tracing::info!(url = ?url.urls(), "connected to Redis for quotas");
                    *quotas.connection.write().expect("redis connection lock") =
                        Some(connection.clone());
                    Some(connection)
                }
                Err(error) => {
                    if !unreachable_logged {
                        tracing::warn!(%error, "cannot connect to Redis yet; quotas are counted locally");
                        unreachable_logged = true;
                    }
                    quotas.enter_fallback(&CheckError::NotConnected);
                    None
                }
            },
        };
        if let Some(connection) = connection {
            if quotas.in_fallback() && answers_checks(connection, &quotas).await {
                quotas.leave_fallback();
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Connects to `url`; commands on the connection give up after `timeout` (the client's own
/// default, 500 ms, would otherwise cut a longer `redis.timeout_ms` short).
async fn connect(url: &RedisUrl, timeout: Duration) -> Result<Connection, RedisError> {
    let timed_out = || RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let connecting = async {
        match url {
            RedisUrl::Single(url) => {
                let client = ::redis::Client::open(url.as_str())?;
                // Reconnects are retried quickly and without end: the probe and the checks
                // keep asking, and the fallback covers the meantime.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(timeout))
                    .set_max_delay(PROBE_INTERVAL);
                Ok(Connection::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisUrl::Cluster(urls) => {
                let client = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(timeout)
                    .build()?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT * 2, connecting)
        .await
        .map_err(|_| timed_out())?
}

/// Whether Redis runs the check script again: the script with no items (nothing counted),
/// rather than a `PING`, which a Redis that refuses scripts would still answer.
async fn answers_checks(mut connection: Connection, quotas: &RedisQuotas) -> bool {
    let invocation = quotas.script.prepare_invoke();
    let call = async {
        match &mut connection {
            Connection::Single(c) => invocation.invoke_async::<Vec<i64>>(c).await,
            Connection::Cluster(c) => invocation.invoke_async::<Vec<i64>>(c).await,
        }
    };
    matches!(tokio::time::timeout(quotas.timeout, call).await, Ok(Ok(answer)) if answer.is_empty())
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
            reason: None,
        }
    }

    fn scoping(organization: Option<u64>) -> Scoping {
        Scoping {
            project_id: 42,
            public_key: "abc".into(),
            organization,
            client_ip: None,
        }
    }

    /// Quotas as `start` keeps them, without a connection or probe.
    fn unconnected(quotas: Vec<QuotaConfig>) -> RedisQuotas {
        let mut project = ProjectConfig::new(42, Vec::new());
        project.organization = Some(7);
        project.quotas = quotas;
        RedisQuotas {
            quotas: ArcSwap::from_pointee(counted_quotas(&[project])),
            script: Script::new(SCRIPT),
            timeout: Duration::from_millis(100),
            connection: RwLock::new(None),
            fallback: AtomicBool::new(false),
        }
    }

    #[test]
    fn keys_share_one_hash_tag_per_check() {
        let key = quota("k", &[], QuotaScope::Key, 1);
        let project = quota("p", &[], QuotaScope::Project, 1);
        let org = quota("o", &[], QuotaScope::Organization, 1);
        let with_org = scoping(Some(7));
        assert_eq!(
            counter_key(&key, &with_org),
            "relay:quota:{o7}:key:42:abc:k"
        );
        assert_eq!(
            counter_key(&project, &with_org),
            "relay:quota:{o7}:project:42:p"
        );
        assert_eq!(counter_key(&org, &with_org), "relay:quota:{o7}:org:7:o");
        assert_eq!(
            counter_key(&project, &scoping(None)),
            "relay:quota:{p42}:project:42:p"
        );
    }

    #[test]
    fn counters_sum_categories_per_quota_and_skip_zero_limits() {
        let quotas = unconnected(vec![
            quota("all", &[], QuotaScope::Project, 10_000),
            quota("bytes", &[DataCategory::Attachment], QuotaScope::Key, 5_000),
            quota("errors", &[DataCategory::Error], QuotaScope::Key, 5),
            quota("blocked", &[], QuotaScope::Project, 0),
        ]);
        let attachment = [
            (DataCategory::Attachment, 600),
            (DataCategory::AttachmentItem, 1),
        ];
        let quotas = quotas.quotas.load();
        let counters = counters(&quotas, &scoping(Some(7)), &attachment);
        let summary: Vec<(&str, u64)> = counters
            .iter()
            .map(|c| (c.quota.id.as_str(), c.quantity))
            .collect();
        assert_eq!(summary, [("all", 601), ("bytes", 600)]);
    }

    #[test]
    fn answers_map_to_counters_and_windows() {
        assert_eq!(
            parse_answer(&[0, 0, 2, 1500], 2).unwrap(),
            [None, Some((1, Duration::from_millis(1500)))]
        );
        assert!(matches!(
            parse_answer(&[0, 0, 1], 2),
            Err(CheckError::Malformed(3, 2))
        ));
    }

    #[actix_web::rt::test]
    async fn unconnected_checks_fall_back_to_the_same_quotas_locally() {
        let limit = quota("errors", &[DataCategory::Error], QuotaScope::Project, 2);
        let mut project = ProjectConfig::new(42, Vec::new());
        project.organization = Some(7);
        project.quotas = vec![limit.clone()];
        let local = RateLimiter::new(&[project]);
        let quotas = unconnected(vec![limit]);
        let error = vec![vec![(DataCategory::Error, 1)]];
        let mut accepted = 0;
        for _ in 0..5 {
            if !quotas
                .check(&local, &scoping(Some(7)), &error)
                .await
                .limited[0]
            {
                accepted += 1;
            }
        }
        assert!(quotas.in_fallback());
        assert_eq!(accepted, 2, "the local limiter enforces the same quota");
        quotas.leave_fallback();
        assert!(!quotas.in_fallback());
    }

    #[actix_web::rt::test]
    async fn known_limits_refuse_without_asking_redis() {
        let limit = quota("errors", &[DataCategory::Error], QuotaScope::Project, 2);
        let mut project = ProjectConfig::new(42, Vec::new());
        project.organization = Some(7);
        project.quotas = vec![limit.clone()];
        let local = RateLimiter::new(&[project]);
        let quotas = unconnected(vec![limit.clone()]);
        let sender = scoping(Some(7));
        local.remember(&sender, &limit, local.now() + Duration::from_secs(30));
        let decision = quotas
            .check(&local, &sender, &[vec![(DataCategory::Error, 1)]])
            .await;
        assert!(decision.limited[0]);
        assert!(
            !quotas.in_fallback(),
            "refused from the cache: Redis (unconnected) was not asked"
        );
    }
}
