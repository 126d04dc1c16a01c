//! Kafka output: producer settings, the embedded broker, the message formats, and how
//! librdkafka's reports about the brokers reach the log (`context`, `outage`).

pub mod context;
pub mod embedded;
pub mod messages;
pub mod outage;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use relay_core::config::KafkaConfig;

use self::context::{KafkaContext, ProducerClosed};
use crate::spool::Spool;

/// The relay's producer: librdkafka's reports go through [`KafkaContext`].
pub type Producer = FutureProducer<KafkaContext>;

/// Producer properties applied before the user's `kafka.producer` overrides.
///
/// Idempotence (which implies `acks=all` and ordered retries) keeps retries from duplicating
/// messages within a producer session; lz4 is built into librdkafka and cheap on CPU.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
    // Attachment chunks are 1 MiB of raw data, about 1.4 MiB as base64 JSON.
    ("message.max.bytes", "8388608"),
    // Bound the producer's memory; a full queue is back-pressure, answered with 503.
    ("queue.buffering.max.kbytes", "131072"),
    // The broker states read by the outage log (`context.rs`): its clock for summaries and
    // how it sees a broker return.
    ("statistics.interval.ms", "5000"),
];

/// librdkafka's default `reconnect.backoff.max.ms`.
const RECONNECT_BACKOFF_MAX_MS: u64 = 10_000;

/// Creates the producer for `brokers`, with the defaults and the user's overrides.
pub fn create_producer(brokers: &str, config: &KafkaConfig) -> anyhow::Result<Producer> {
    create_watched_producer(brokers, config, None).map(|(producer, _)| producer)
}

/// Creates the producer for `brokers`; its outage summaries count the entries waiting in
/// `spool`. The second value resolves once every clone of the producer is dropped and its
/// client destroyed.
pub fn create_watched_producer(
    brokers: &str,
    config: &KafkaConfig,
    spool: Option<Arc<Spool>>,
) -> anyhow::Result<(Producer, ProducerClosed)> {
    let (context, closed) = KafkaContext::new(spool, reconnect_backoff_max(config));
    let producer = producer_config(brokers, config)
        .create_with_context(context)
        .map_err(|e| anyhow::anyhow!("cannot create Kafka producer for {brokers}: {e}"))?;
    Ok((producer, closed))
}

/// The longest pause between two connection attempts to a down broker.
fn reconnect_backoff_max(config: &KafkaConfig) -> Duration {
    let ms = config
        .producer
        .get("reconnect.backoff.max.ms")
        .and_then(|value| value.parse().ok())
        .unwrap_or(RECONNECT_BACKOFF_MAX_MS);
    Duration::from_millis(ms)
}

/// The producer's librdkafka settings: the defaults, then the user's overrides. Public so that
/// the publish benchmark's bare producer runs with exactly the relay's settings.
pub fn producer_config(brokers: &str, config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", brokers);
    for (key, value) in PRODUCER_DEFAULTS {
        client.set(*key, *value);
    }
    for (key, value) in &config.producer {
        client.set(key, value);
    }
    client
}
