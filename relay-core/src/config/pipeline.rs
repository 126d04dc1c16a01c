//! The `pipeline` section: capacities and threads of the actor pipeline.

use serde::{Deserialize, Serialize};

use super::limits::MIB;

/// Capacities of the actor pipeline; see `docs/architecture.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Spooled envelopes being processed at once, from the spool reader until the
    /// KafkaProducer has handed their messages to librdkafka. When all are taken, the spool
    /// reader waits. Defaults to 256, the default `mailbox_capacity`: more than a mailbox holds
    /// would only be refused by a full stage and retried from the spool.
    pub max_in_flight: usize,
    /// Bytes of spooled envelopes handed to Kafka and awaiting their delivery reports, at most.
    /// When the window is full, the spool reader waits. A separate, larger bound than
    /// `max_in_flight` because such an envelope costs only its spooled bytes, and because
    /// the wait for delivery (`linger.ms` plus the broker's round trip) would otherwise cap
    /// the throughput at `max_in_flight` per round trip. An envelope larger than the window
    /// takes all of it. Defaults to 8 MiB.
    pub delivery_window_bytes: usize,
    /// Mailbox capacity of each async actor. Defaults to 256.
    pub mailbox_capacity: usize,
    /// Pipelines run side by side, each on its own thread, taking entries from the one spool
    /// reader (its slots and window are shared, not multiplied); 0 means one per CPU core.
    /// Defaults to 0.
    pub lanes: usize,
    /// Threads of the symbolication arbiter; 0 means one per CPU core. Defaults to 0.
    pub symbolicator_threads: usize,
    /// Jobs admitted to the symbolication arbiter at once (queued plus running). Defaults to 64.
    pub symbolicator_queue: usize,
    /// How long a graceful shutdown waits for in-flight requests, in seconds. Defaults to 30.
    pub shutdown_timeout_secs: u64,
    /// The `Retry-After` sent with 503 answers, in seconds. Defaults to 1.
    pub retry_after_secs: u64,
    /// First wait before an envelope whose Kafka delivery failed is retried from the spool, in
    /// milliseconds; doubles up to 30 s. (An envelope refused by a full stage is retried after
    /// 5 to 50 ms.) Defaults to 200.
    pub retry_backoff_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_in_flight: 256,
            delivery_window_bytes: 8 * MIB,
            mailbox_capacity: 256,
            lanes: 0,
            symbolicator_threads: 0,
            symbolicator_queue: 64,
            shutdown_timeout_secs: 30,
            retry_after_secs: 1,
            retry_backoff_ms: 200,
        }
    }
}
