//! What the HTTP handlers share: configuration, projects, quotas, outcomes, the spool and the
//! pipeline's gates. Built by the composition root (`service.rs`); kept apart from it so that
//! the handlers depend on this data, not on the code that starts the actors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use relay_core::Config;

use crate::actors::outcomes::Outcomes;
use crate::actors::spool_reader::{Gates, ReaderUse, SpoolReader};
use crate::actors::symbolicator::SymbolicatorGate;
use crate::endpoints::abuse::AbuseGuard;
use crate::endpoints::budget::InflightBudget;
use crate::metrics;
use crate::projects::Projects;
use crate::ratelimit::{RateLimiter, RedisQuotas};
use crate::spool::Spool;
use crate::upstream::refusals::KeyRefusals;
use crate::upstream::UpstreamMemory;

/// What the HTTP handlers share: configuration, projects, quotas, outcomes and the spool.
pub struct ServiceState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Keys and projects allowed to send.
    pub projects: Projects,
    /// Enforces quotas (and, in forward mode, the upstream's limits) before anything is
    /// spooled; called by the handlers directly.
    pub rate_limiter: Arc<RateLimiter>,
    /// Quotas counted in Redis for the whole fleet, when `redis` is configured; the
    /// `rate_limiter` then holds the limits learned and takes over while Redis fails.
    pub redis_quotas: Option<Arc<RedisQuotas>>,
    /// Keys the upstream refused recently (forward mode; empty otherwise).
    pub key_refusals: Arc<KeyRefusals>,
    /// Where outcomes are counted.
    pub outcomes: Outcomes,
    /// Per-client-IP request limiter and the bound on concurrent requests.
    pub abuse: AbuseGuard,
    /// The bytes of request bodies held at once, across requests.
    pub budget: InflightBudget,
    /// Where accepted envelopes go before the 200.
    pub spool: Arc<Spool>,
    /// The symbolicator gate, for its depth metric (none in forward mode).
    pub symbolicator: Option<SymbolicatorGate>,
    reader_gates: Gates,
    accepting: AtomicBool,
}

impl ServiceState {
    /// The state of a relay whose pipeline is started: `outcomes` and `symbolicator` lead into
    /// it, `reader_gates` bound its spool readers, `memory` is shared with the upstream
    /// forwarder (if any). Not accepting until [`Self::set_accepting`].
    pub fn new(
        config: Config,
        outcomes: Outcomes,
        spool: Arc<Spool>,
        symbolicator: Option<SymbolicatorGate>,
        reader_gates: Gates,
        memory: UpstreamMemory,
    ) -> Self {
        ServiceState {
            projects: Projects::new(&config.projects),
            rate_limiter: memory.rate_limiter,
            redis_quotas: config
                .redis
                .as_ref()
                .map(|redis| RedisQuotas::start(redis, &config.projects)),
            key_refusals: memory.key_refusals,
            outcomes,
            abuse: AbuseGuard::new(&config.limits),
            budget: InflightBudget::new(config.limits.max_inflight_bytes),
            config: Arc::new(config),
            spool,
            symbolicator,
            reader_gates,
            accepting: AtomicBool::new(false),
        }
    }

    /// Updates the gauges that are read off semaphores rather than counted.
    pub fn publish_gate_depths(&self) {
        if let Some(symbolicator) = &self.symbolicator {
            symbolicator.publish_depth();
        }
        let reader = self.reader_use();
        metrics::mailbox_depth(SpoolReader::SLOTS).set(reader.slots as i64);
        metrics::set_delivery_window(reader.window_bytes, self.reader_gates.window_size());
        metrics::set_spool_pending(self.spool.pending_entries());
    }

    /// What the spool reader holds: slots of entries being processed, and window bytes of
    /// entries read and not yet released.
    pub fn reader_use(&self) -> ReaderUse {
        self.reader_gates.in_use()
    }

    /// Entries read so far by each pipeline lane of this relay (tests compare lanes without
    /// the process-wide metric, which every relay of the test process counts into).
    #[cfg(test)]
    pub fn lane_reads(&self) -> Vec<u64> {
        self.reader_gates.lane_reads()
    }

    /// Whether the relay takes events: it is accepting and the spool has room.
    pub fn is_ready(&self) -> bool {
        self.accepting.load(Ordering::Relaxed) && !self.spool.is_full()
    }

    /// Marks the relay as accepting (or not).
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::Relaxed);
    }
}
