//! The `kafka` section: connection, topic names and producer properties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Kafka connection, topics and producer settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated. Absent: an embedded broker is started in-process.
    pub brokers: Option<String>,
    /// Topic names.
    pub topics: Topics,
    /// Size of one attachment chunk message in bytes. Defaults to 1 MiB.
    pub attachment_chunk_size: usize,
    /// Partitions of each topic on the embedded broker. Defaults to 3.
    pub embedded_partitions: i32,
    /// Extra librdkafka producer properties, e.g. `linger.ms: "10"`. They override the defaults
    /// (`enable.idempotence=true`, `acks=all`, `compression.type=lz4`).
    pub producer: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            topics: Topics::default(),
            attachment_chunk_size: 1024 * 1024,
            embedded_partitions: 3,
            producer: BTreeMap::new(),
        }
    }
}

/// Names of the topics the relay publishes to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    /// Events, transactions and every other non-attachment item. Defaults to `relay.events`.
    pub events: String,
    /// Attachment chunks (minidumps included). Defaults to `relay.attachments`.
    pub attachments: String,
    /// Outcomes. Defaults to `relay.outcomes`.
    pub outcomes: String,
    /// Issue aggregates. Defaults to `relay.issues`.
    pub issues: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            events: "relay.events".to_owned(),
            attachments: "relay.attachments".to_owned(),
            outcomes: "relay.outcomes".to_owned(),
            issues: "relay.issues".to_owned(),
        }
    }
}

impl Topics {
    /// All topics with their config key names.
    pub fn all(&self) -> [(&'static str, &str); 4] {
        [
            ("events", &self.events),
            ("attachments", &self.attachments),
            ("outcomes", &self.outcomes),
            ("issues", &self.issues),
        ]
    }
}

impl KafkaConfig {
    /// Checks the brokers, topic names, chunk size and partitions.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(brokers) = &self.brokers {
            if brokers.trim().is_empty() {
                return Err(ConfigError::new(
                    "kafka.brokers",
                    "must not be empty; remove it to use the embedded broker",
                ));
            }
        }
        for (name, topic) in self.topics.all() {
            if topic.is_empty() {
                return Err(ConfigError::new(
                    format!("kafka.topics.{name}"),
                    "must not be empty",
                ));
            }
        }
        if self.attachment_chunk_size == 0 {
            return Err(ConfigError::new(
                "kafka.attachment_chunk_size",
                "must be at least 1",
            ));
        }
        if self.embedded_partitions < 1 {
            return Err(ConfigError::new(
                "kafka.embedded_partitions",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
