//! The embedded Kafka-protocol broker used when no brokers are configured.
//!
//! It is librdkafka's mock cluster: a real Kafka-protocol listener on 127.0.0.1, in memory,
//! so `kcat -b ADDR -C -t relay.events` or any Kafka client can read what the relay publishes.
//! Data is lost when the process exits; it is for trying the relay out, not for production.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use relay_core::config::KafkaConfig;

/// A running embedded broker; it stops when dropped.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster and creates the configured topics.
    pub fn start(config: &KafkaConfig) -> anyhow::Result<Self> {
        let cluster = MockCluster::new(1)
            .map_err(|e| anyhow::anyhow!("cannot start the embedded Kafka broker: {e}"))?;
        for (_, topic) in config.topics.all() {
            cluster
                .create_topic(topic, config.embedded_partitions, 1)
                .map_err(|e| {
                    anyhow::anyhow!("cannot create topic {topic} on the embedded broker: {e}")
                })?;
        }
        Ok(EmbeddedBroker { cluster })
    }

    /// The bootstrap address clients connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
