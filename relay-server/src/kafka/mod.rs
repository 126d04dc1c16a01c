//! Kafka output: producer settings, the embedded broker, and the message formats.

pub mod embedded;
pub mod messages;

use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use relay_core::config::KafkaConfig;

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
];

/// Creates the producer for `brokers`, with the defaults and the user's overrides.
pub fn create_producer(brokers: &str, config: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    producer_config(brokers, config)
        .create()
        .map_err(|e| anyhow::anyhow!("cannot create Kafka producer for {brokers}: {e}"))
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
