//! Prometheus metrics, exposed in text format at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `relay_mailbox_depth` | `mailbox` | messages queued (or jobs admitted) and not yet handled |
//! | `relay_mailbox_capacity` | `mailbox` | the bound beyond which senders get "full" |
//! | `relay_requests_total` | `endpoint`, `status` | answered intake requests |
//! | `relay_rejections_total` | `reason` | envelopes refused, by reason |
//! | `relay_kafka_messages_total` | `topic`, `result` | delivery reports: `delivered` or `failed` |
//! | `relay_outcomes_total` | `outcome`, `category`, `reason` | units per outcome (items; bytes for `attachment`) |
//! | `relay_outcomes_dropped_total` | | outcomes not counted because the aggregator was overwhelmed |
//! | `relay_pii_scrubbed_total` | | values replaced by `[Filtered]` |
//! | `relay_spool_bytes` | | bytes of all spool segments on disk |
//! | `relay_spool_capacity_bytes` | | the spool's disk quota |
//! | `relay_delivery_window_bytes` | | spooled bytes read by the spool reader and not yet released (in the pipeline or awaiting delivery reports) |
//! | `relay_delivery_window_capacity_bytes` | | `pipeline.delivery_window_bytes` |
//! | `relay_spool_retries_total` | | entries sent again after back-pressure or a failed delivery |
//! | `relay_lane_entries_total` | `lane` | spooled entries read by each pipeline lane (0, 1, ...) |
//! | `relay_spool_dropped_total` | `reason` | entries released without publishing: `expired`, `invalid`, `corrupt`, `internal`, `lost` (deleted or cut off on disk by something else); forward mode: `upstream_refused`, `rate_limited` |
//! | `relay_spool_write_errors_total` | `op`, `reason` | spool writes that failed (and appends stopped without a write: the disk reserve given back, no free space at start): `op` is `append`, `release` or `rotate`; `reason` is `no_space`, `read_only`, `missing`, `damaged` or `io` |
//! | `relay_spool_writable` | | 1 while appends succeed, 0 while they fail (intake answers 503, readiness is false) |
//! | `relay_symbol_downloads_total` | `result` | debug files asked of symbol servers: `found`, `missing`, `failed`, or `cached` (from the download cache) |
//! | `relay_symbol_cache_bytes` | | bytes of downloads, SymCaches and CFI caches, as of the last size check |
//! | `relay_quota_fallback` | | 1 while quotas are counted locally because Redis failed (`redis` configured), else 0 |
//! | `relay_quota_redis_errors_total` | `reason` | quota checks Redis did not answer: `not_connected`, `timeout`, `error`, `malformed` |
//! | `relay_spool_pending_entries` | | entries in the spool not yet released: in forward mode, the entries waiting to be forwarded (as of the last scrape) |
//! | `relay_upstream_requests_total` | `result` | requests to the upstream (forward mode), by answer: `2xx`, `429`, `4xx`, `5xx`, `error` (no answer: connection refused, timeout) |
//! | `relay_upstream_duration_seconds` | | histogram of upstream requests, from sending to the end of the answer |

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use relay_core::{DataCategory, Outcome};

/// All metrics of the process.
pub struct Metrics {
    registry: Registry,
    mailbox_depth: IntGaugeVec,
    mailbox_capacity: IntGaugeVec,
    requests: IntCounterVec,
    rejections: IntCounterVec,
    kafka_messages: IntCounterVec,
    spool_bytes: IntGauge,
    spool_capacity: IntGauge,
    delivery_window: IntGauge,
    delivery_window_capacity: IntGauge,
    spool_retries: prometheus::IntCounter,
    lane_entries: IntCounterVec,
    spool_dropped: IntCounterVec,
    spool_write_errors: IntCounterVec,
    spool_writable: IntGauge,
    outcomes: IntCounterVec,
    outcomes_dropped: prometheus::IntCounter,
    symbol_downloads: IntCounterVec,
    symbol_cache_bytes: IntGauge,
    pii_scrubbed: prometheus::IntCounter,
    quota_fallback: IntGauge,
    quota_redis_errors: IntCounterVec,
    spool_pending: IntGauge,
    upstream_requests: IntCounterVec,
    upstream_duration: prometheus::Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
            registry
                .register(Box::new(vec.clone()))
                .expect("unique metric");
            vec
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry
                .register(Box::new(vec.clone()))
                .expect("unique metric");
            vec
        };
        let single_gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid gauge");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let single_counter = |name: &str, help: &str| {
            let counter = prometheus::IntCounter::new(name, help).expect("valid counter");
            registry
                .register(Box::new(counter.clone()))
                .expect("unique metric");
            counter
        };
        let spool_bytes = single_gauge("relay_spool_bytes", "Bytes of all spool segments on disk.");
        let spool_capacity = single_gauge("relay_spool_capacity_bytes", "The spool's disk quota.");
        let spool_retries = single_counter(
            "relay_spool_retries_total",
            "Spooled entries sent again after back-pressure or a failed delivery.",
        );
        let delivery_window = single_gauge(
            "relay_delivery_window_bytes",
            "Spooled bytes read by the spool reader and not yet released.",
        );
        let delivery_window_capacity = single_gauge(
            "relay_delivery_window_capacity_bytes",
            "The delivery window (pipeline.delivery_window_bytes).",
        );
        let outcomes_dropped = single_counter(
            "relay_outcomes_dropped_total",
            "Outcomes not counted because the aggregator was overwhelmed.",
        );
        let symbol_cache_bytes = single_gauge(
            "relay_symbol_cache_bytes",
            "Bytes of downloaded debug files, SymCaches and CFI caches at the last size check.",
        );
        let pii_scrubbed =
            single_counter("relay_pii_scrubbed_total", "Values replaced by [Filtered].");
        let spool_writable = single_gauge(
            "relay_spool_writable",
            "1 while spool appends succeed, 0 while they fail.",
        );
        spool_writable.set(1);
        let quota_fallback = single_gauge(
            "relay_quota_fallback",
            "1 while quotas are counted locally because Redis failed, else 0.",
        );
        let spool_pending = single_gauge(
            "relay_spool_pending_entries",
            "Spool entries not yet released (forward mode: waiting to be forwarded).",
        );
        let upstream_duration = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "relay_upstream_duration_seconds",
                "Upstream requests, from sending to the end of the answer.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(upstream_duration.clone()))
            .expect("unique metric");
        Metrics {
            quota_fallback,
            quota_redis_errors: counter(
                "relay_quota_redis_errors_total",
                "Quota checks Redis did not answer, by reason.",
                &["reason"],
            ),
            spool_pending,
            upstream_requests: counter(
                "relay_upstream_requests_total",
                "Requests to the upstream, by answer (2xx, 429, 4xx, 5xx, error).",
                &["result"],
            ),
            upstream_duration,
            symbol_downloads: counter(
                "relay_symbol_downloads_total",
                "Debug files asked of symbol servers, by result.",
                &["result"],
            ),
            symbol_cache_bytes,
            pii_scrubbed,
            outcomes: counter(
                "relay_outcomes_total",
                "Units per outcome: items, or bytes for the attachment category.",
                &["outcome", "category", "reason"],
            ),
            outcomes_dropped,
            spool_dropped: counter(
                "relay_spool_dropped_total",
                "Spooled entries released without publishing, by reason.",
                &["reason"],
            ),
            spool_write_errors: counter(
                "relay_spool_write_errors_total",
                "Spool writes that failed, by operation and reason.",
                &["op", "reason"],
            ),
            spool_writable,
            spool_bytes,
            spool_capacity,
            spool_retries,
            lane_entries: counter(
                "relay_lane_entries_total",
                "Spooled entries read by each pipeline lane.",
                &["lane"],
            ),
            delivery_window,
            delivery_window_capacity,
            mailbox_depth: gauge(
                "relay_mailbox_depth",
                "Messages queued in a mailbox (or jobs admitted to a gate) and not yet handled.",
                &["mailbox"],
            ),
            mailbox_capacity: gauge(
                "relay_mailbox_capacity",
                "Capacity of a mailbox or gate; beyond it senders are refused.",
                &["mailbox"],
            ),
            requests: counter(
                "relay_requests_total",
                "Intake requests answered, by endpoint and status code.",
                &["endpoint", "status"],
            ),
            rejections: counter(
                "relay_rejections_total",
                "Envelopes refused, by reason.",
                &["reason"],
            ),
            kafka_messages: counter(
                "relay_kafka_messages_total",
                "Kafka delivery reports, by topic and result.",
                &["topic", "result"],
            ),
            registry,
        }
    }
}

/// The depth gauge of a mailbox.
pub fn mailbox_depth(mailbox: &str) -> IntGauge {
    METRICS.mailbox_depth.with_label_values(&[mailbox])
}

/// Records the capacity of a mailbox.
pub fn set_mailbox_capacity(mailbox: &str, capacity: usize) {
    METRICS
        .mailbox_capacity
        .with_label_values(&[mailbox])
        .set(capacity as i64);
}

/// Counts an answered request.
pub fn count_request(endpoint: &str, status: u16) {
    METRICS
        .requests
        .with_label_values(&[endpoint, &status.to_string()])
        .inc();
}

/// Records whether quotas are counted locally because Redis failed.
pub fn set_quota_fallback(fallback: bool) {
    METRICS.quota_fallback.set(i64::from(fallback));
}

/// Counts a quota check Redis did not answer.
pub fn count_quota_redis_error(reason: &str) {
    METRICS
        .quota_redis_errors
        .with_label_values(&[reason])
        .inc();
}

/// Counts a refused envelope.
pub fn count_rejection(reason: &str) {
    METRICS.rejections.with_label_values(&[reason]).inc();
}

/// Counts a Kafka delivery report.
pub fn count_kafka_delivery(topic: &str, delivered: bool) {
    let result = if delivered { "delivered" } else { "failed" };
    METRICS
        .kafka_messages
        .with_label_values(&[topic, result])
        .inc();
}

/// Records the bytes of all spool segments.
pub fn set_spool_bytes(bytes: u64) {
    METRICS.spool_bytes.set(bytes as i64);
}

/// Records the spool's disk quota.
pub fn set_spool_capacity(bytes: u64) {
    METRICS.spool_capacity.set(bytes as i64);
}

/// Records the delivery window's use and size.
pub fn set_delivery_window(used: usize, capacity: usize) {
    METRICS.delivery_window.set(used as i64);
    METRICS.delivery_window_capacity.set(capacity as i64);
}

/// The counter of entries read by pipeline lane `lane`.
pub fn lane_entries(lane: usize) -> IntCounter {
    METRICS.lane_entries.with_label_values(&[&lane.to_string()])
}

/// Records the spool entries not yet released.
pub fn set_spool_pending(entries: u64) {
    METRICS.spool_pending.set(entries as i64);
}

/// Counts a request to the upstream by its `result` and records how long it took.
pub fn count_upstream_request(result: &str, seconds: f64) {
    METRICS.upstream_requests.with_label_values(&[result]).inc();
    METRICS.upstream_duration.observe(seconds);
}

/// Counts a retry of a spooled entry.
pub fn count_spool_retry() {
    METRICS.spool_retries.inc();
}

/// Counts a spooled entry released without publishing.
pub fn count_spool_dropped(reason: &str) {
    METRICS.spool_dropped.with_label_values(&[reason]).inc();
}

/// Counts a failed spool write (`op`: append, release, rotate).
pub fn count_spool_write_error(op: &str, reason: &str) {
    METRICS
        .spool_write_errors
        .with_label_values(&[op, reason])
        .inc();
}

/// Records whether spool appends succeed.
pub fn set_spool_writable(writable: bool) {
    METRICS.spool_writable.set(i64::from(writable));
}

/// Counts one debug file asked of a symbol server (or found in the download cache).
pub fn count_symbol_download(result: &str) {
    METRICS.symbol_downloads.with_label_values(&[result]).inc();
}

/// Records the symbol cache's size after a size check.
pub fn set_symbol_cache_bytes(bytes: u64) {
    METRICS
        .symbol_cache_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// Counts `quantity` units of `category` with `outcome` (and its `reason`, if any).
///
/// Takes plain values, not the outcome message, so that this module depends on no actor.
pub fn count_outcome(
    outcome: Outcome,
    category: DataCategory,
    reason: Option<&str>,
    quantity: u64,
) {
    METRICS
        .outcomes
        .with_label_values(&[outcome.as_str(), category.as_str(), reason.unwrap_or("")])
        .inc_by(quantity);
}

/// Counts values replaced by PII scrubbing.
pub fn count_pii_scrubbed(values: usize) {
    METRICS.pii_scrubbed.inc_by(values as u64);
}

/// Counts an outcome lost to an overwhelmed aggregator.
pub fn count_outcome_dropped() {
    METRICS.outcomes_dropped.inc();
}

/// Renders every metric in Prometheus text format.
pub fn render() -> String {
    let encoder = prometheus::TextEncoder::new();
    encoder
        .encode_to_string(&METRICS.registry.gather())
        .unwrap_or_else(|e| format!("# failed to encode metrics: {e}\n"))
}
