//! The configuration schema. Loading (files, environment, flags) is the server's job.
//!
//! Every field has a default, so an empty file (or none at all) is a working configuration.
//! One module per top-level section, each with its types and defaults; this module holds
//! [`Config`] and the checks that span sections:
//!
//! - `kafka`: [`KafkaConfig`], [`Topics`];
//! - `projects`: [`ProjectConfig`], [`KeyConfig`], [`QuotaConfig`], [`QuotaScope`], with
//!   each project's `filters` ([`FilterConfig`]) and `pii` ([`PiiConfig`]);
//! - `limits`: [`Limits`]; `pipeline`: [`PipelineConfig`]; `spool`: [`SpoolConfig`];
//! - `symbolication`: [`SymbolicationConfig`], [`HttpSymbolSource`];
//! - `outcomes`: [`OutcomesConfig`];
//! - `processing`: [`ProcessingConfig`] ([`NormalizeConfig`], [`AggregatorConfig`]);
//! - `redis`: [`RedisConfig`] (quotas shared by a fleet of relays);
//! - `organizations`: [`OrganizationConfig`] with its [`UploadToken`]s; `uploads`:
//!   [`UploadsConfig`] (the upload API, `docs/uploads.md`);
//! - `upstream`: [`UpstreamConfig`] (forward mode, instead of Kafka);
//! - `tls`: [`TlsConfig`] (the HTTPS listener);
//! - `admin`: [`AdminConfig`] (the reload listener).
//!
//! The processing library's settings (filters, PII, normalization, aggregation) are typed
//! here too, so the file is parsed once and their errors name the key like any other.

mod admin;
mod filters;
mod kafka;
mod limits;
mod organizations;
mod outcomes;
mod pii;
mod pipeline;
mod processing;
mod projects;
mod redis;
mod spool;
mod symbolication;
mod tls;
mod upstream;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use admin::AdminConfig;
pub use filters::{FilterConfig, GlobPatterns, InvalidIpEntry, IpFilterList};
pub use kafka::{KafkaConfig, Topics};
pub use limits::Limits;
use organizations::validate_organizations;
pub use organizations::{
    constant_time_eq, OrganizationConfig, UploadToken, UploadsConfig, MIN_UPLOAD_TOKEN_LEN,
};
pub use outcomes::OutcomesConfig;
pub use pii::PiiConfig;
pub use pipeline::PipelineConfig;
pub use processing::{AggregatorConfig, NormalizeConfig, ProcessingConfig};
use projects::validate_projects;
pub use projects::{origin_matches, KeyConfig, ProjectConfig, QuotaConfig, QuotaScope};
pub use redis::{RedisConfig, RedisUrl};
pub use spool::{FsyncPolicy, SpoolConfig};
use symbolication::validate_http_source;
pub use symbolication::{HttpSymbolSource, SymbolServerLayout, SymbolicationConfig};
pub use tls::TlsConfig;
pub use upstream::{UpstreamCompression, UpstreamConfig, UpstreamProcessing};

/// A configuration value that is well-formed YAML but not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `projects[0].keys[1]`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole relay configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP intake listens on. Defaults to `127.0.0.1:3000`.
    pub listen: String,
    /// Directory for state (the default project's key, later the spool). Defaults to
    /// `./relay-data`; created on start.
    pub data_dir: PathBuf,
    /// Kafka output.
    pub kafka: KafkaConfig,
    /// Projects and their keys. When empty, a default project is created in `data_dir`.
    pub projects: Vec<ProjectConfig>,
    /// Size limits of requests, events and attachments.
    pub limits: Limits,
    /// Capacities and threads of the actor pipeline.
    pub pipeline: PipelineConfig,
    /// The durable spool between intake and pipeline.
    pub spool: SpoolConfig,
    /// Where debug files and source maps come from.
    pub symbolication: SymbolicationConfig,
    /// Outcome aggregation.
    pub outcomes: OutcomesConfig,
    /// Event processing settings for every project; see `docs/processing.md`.
    pub processing: ProcessingConfig,
    /// Where quotas are counted across relays; without it each relay counts on its own.
    pub redis: Option<RedisConfig>,
    /// This relay's name on the messages it publishes, so that consumers can tell the relays
    /// of a fleet apart. Defaults to the hostname and the port of `listen` (`host:3000`).
    pub instance_id: Option<String>,
    /// Organizations: slugs and upload tokens for the upload API (`docs/uploads.md`).
    pub organizations: Vec<OrganizationConfig>,
    /// Bounds of uploaded debug files and artifact bundles.
    pub uploads: UploadsConfig,
    /// Forward mode: spooled envelopes go to this upstream over HTTP instead of to Kafka.
    /// Absent (the default): the relay publishes to Kafka.
    pub upstream: Option<UpstreamConfig>,
    /// An HTTPS listener beside (or instead of) the plain one. Absent (the default): plain
    /// HTTP only.
    pub tls: Option<TlsConfig>,
    /// The admin listener (config reload); off by default.
    pub admin: AdminConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:3000".to_owned(),
            data_dir: PathBuf::from("./relay-data"),
            kafka: KafkaConfig::default(),
            projects: Vec::new(),
            limits: Limits::default(),
            pipeline: PipelineConfig::default(),
            spool: SpoolConfig::default(),
            symbolication: SymbolicationConfig::default(),
            outcomes: OutcomesConfig::default(),
            processing: ProcessingConfig::default(),
            redis: None,
            instance_id: None,
            organizations: Vec::new(),
            uploads: UploadsConfig::default(),
            upstream: None,
            tls: None,
            admin: AdminConfig::default(),
        }
    }
}

/// Reads an absent value (`null`, or a key written without a value) as the type's
/// defaults, as the processing sections were read when they were kept as untyped data.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Config {
    /// Checks values that parse but cannot work, naming the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:3000", self.listen),
            ));
        }
        self.kafka.validate()?;
        self.validate_upstream()?;
        if let Some(tls) = &self.tls {
            tls.validate(&self.listen)?;
        }
        validate_projects(&self.projects)?;
        validate_organizations(&self.organizations, &self.projects)?;
        self.uploads.validate()?;
        let positive = [
            ("limits.max_request_size", self.limits.max_request_size),
            ("limits.max_envelope_size", self.limits.max_envelope_size),
            ("limits.max_event_size", self.limits.max_event_size),
            (
                "limits.max_attachment_size",
                self.limits.max_attachment_size,
            ),
            (
                "limits.body_timeout_secs",
                self.limits.body_timeout_secs as usize,
            ),
            ("pipeline.max_in_flight", self.pipeline.max_in_flight),
            (
                "pipeline.delivery_window_bytes",
                self.pipeline.delivery_window_bytes,
            ),
            ("pipeline.mailbox_capacity", self.pipeline.mailbox_capacity),
            (
                "pipeline.symbolicator_queue",
                self.pipeline.symbolicator_queue,
            ),
            (
                "pipeline.shutdown_timeout_secs",
                self.pipeline.shutdown_timeout_secs as usize,
            ),
            (
                "pipeline.retry_backoff_ms",
                self.pipeline.retry_backoff_ms as usize,
            ),
            ("spool.max_disk_bytes", self.spool.max_disk_bytes as usize),
            ("spool.segment_bytes", self.spool.segment_bytes as usize),
            ("spool.write_queue", self.spool.write_queue),
            (
                "spool.max_entry_age_secs",
                self.spool.max_entry_age_secs as usize,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        self.validate_symbol_sources()?;
        self.limits.validate_budget()?;
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.admin.validate()?;
        if self.instance_id.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::new("instance_id", "must not be empty"));
        }
        if self.spool.segment_bytes > self.spool.max_disk_bytes {
            return Err(ConfigError::new(
                "spool.segment_bytes",
                "must not exceed spool.max_disk_bytes",
            ));
        }
        Ok(())
    }

    /// Forward mode excludes Kafka: an edge relay publishes nothing, so a `kafka` section
    /// beside `upstream` is a mistake to name rather than to ignore.
    fn validate_upstream(&self) -> Result<(), ConfigError> {
        let Some(upstream) = &self.upstream else {
            return Ok(());
        };
        upstream.validate()?;
        if self.kafka != KafkaConfig::default() {
            return Err(ConfigError::new(
                "kafka",
                "must not be configured together with upstream: a relay in forward mode \
                 sends to its upstream and publishes nothing to Kafka",
            ));
        }
        Ok(())
    }

    /// Whether the relay forwards to an upstream instead of publishing to Kafka.
    pub fn forwards(&self) -> bool {
        self.upstream.is_some()
    }

    /// The HTTP symbol sources, global ones first, then the symbolication section's values.
    fn validate_symbol_sources(&self) -> Result<(), ConfigError> {
        let global = self
            .symbolication
            .http_sources
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("symbolication.http_sources[{i}]"), s));
        let per_project = self.projects.iter().enumerate().flat_map(|(p, project)| {
            project
                .http_sources
                .iter()
                .enumerate()
                .map(move |(i, s)| (format!("projects[{p}].http_sources[{i}]"), s))
        });
        for (path, source) in global.chain(per_project) {
            validate_http_source(&path, source)?;
        }
        self.symbolication.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: u64, key: &str) -> ProjectConfig {
        ProjectConfig::new(id, vec![KeyConfig::Plain(key.to_owned())])
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let mut config = Config {
            projects: vec![
                project(1, "abc123def456abc123def456abc123de"),
                project(2, "short"),
            ],
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "projects[1].keys[0]");

        config.projects[1] = project(1, "00000000000000000000000000000000");
        assert_eq!(config.validate().unwrap_err().key, "projects[1].id");

        let config = Config {
            listen: "nowhere".into(),
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "listen");

        let mut config = Config::default();
        config.admin.listen = Some("localhost".into());
        assert_eq!(config.validate().unwrap_err().key, "admin.listen");
        config.admin.listen = Some("127.0.0.1:3001".into());
        config.instance_id = Some(String::new());
        assert_eq!(config.validate().unwrap_err().key, "instance_id");
    }

    #[test]
    fn http_symbol_sources() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "symbolication": {"http_sources": [
                {"url": "https://symbols.example.com/breakpad"},
                {"url": "http://127.0.0.1:8000", "layout": "debuginfod", "timeout_secs": 3},
            ]},
            "projects": [{"id": 1, "keys": ["abc123def456abc123def456abc123de"],
                "http_sources": [{"url": "https://msdl.example.com/download/symbols",
                    "layout": "symstore"}]}],
        }))
        .unwrap();
        config.validate().unwrap();
        let sources = &config.symbolication.http_sources;
        assert_eq!(sources[0].layout, SymbolServerLayout::Breakpad);
        assert_eq!(sources[0].timeout_secs, 10);
        assert_eq!(sources[1].layout, SymbolServerLayout::Debuginfod);
        assert_eq!(
            config.projects[0].http_sources[0].layout,
            SymbolServerLayout::Symstore
        );

        let mut bad = config.clone();
        bad.projects[0].http_sources[0].url = "ftp://x".into();
        assert_eq!(
            bad.validate().unwrap_err().key,
            "projects[0].http_sources[0].url"
        );
        let mut bad = config;
        bad.symbolication.http_sources[1].timeout_secs = 0;
        assert_eq!(
            bad.validate().unwrap_err().key,
            "symbolication.http_sources[1].timeout_secs"
        );
    }

    #[test]
    fn processing_sections_are_typed_and_null_means_defaults() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "projects": [{"id": 1, "keys": ["abc123def456abc123def456abc123de"],
                "filters": {"localhost": true, "client_ips": ["10.0.0.0/8"]}, "pii": null}],
            "processing": {"normalize": null, "aggregator": {"window_secs": 3}},
        }))
        .unwrap();
        let project = &config.projects[0];
        assert!(project.filters.localhost);
        assert!(project
            .filters
            .client_ips
            .contains("10.1.2.3".parse().unwrap()));
        assert_eq!(project.pii, PiiConfig::default());
        assert_eq!(config.processing.normalize, NormalizeConfig::default());
        assert_eq!(config.processing.aggregator.window_secs, 3);

        let bad = |value| serde_json::from_value::<Config>(value).is_err();
        assert!(bad(
            serde_json::json!({"processing": {"aggregator": {"window_secs": "ten"}}})
        ));
        assert!(bad(serde_json::json!({"projects": [{"id": 1, "keys": [],
            "filters": {"client_ips": ["localhost"]}}]})));
        assert!(bad(serde_json::json!({"projects": [{"id": 1, "keys": [],
            "filters": {"error_messages": ["a["]}}]})));
    }

    #[test]
    fn upstream_excludes_kafka_and_checks_its_url() {
        let forward = |value: serde_json::Value| -> Result<Config, String> {
            let config: Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
            config.validate().map_err(|e| e.key)?;
            Ok(config)
        };
        let config =
            forward(serde_json::json!({"upstream": {"url": "http://core:3000/"}})).unwrap();
        let upstream = config.upstream.as_ref().unwrap();
        assert_eq!(upstream.base_url(), "http://core:3000");
        assert_eq!(upstream.max_concurrent, 64);
        assert_eq!(upstream.process, UpstreamProcessing::None);
        assert!(config.forwards());
        assert!(!Config::default().forwards());

        let both = serde_json::json!({"upstream": {"url": "http://core:3000"},
            "kafka": {"brokers": "127.0.0.1:9092"}});
        assert_eq!(forward(both).unwrap_err(), "kafka");
        for url in [
            "",
            "core:3000",
            "ftp://core",
            "http://",
            "https:///x",
            "http://a/?b",
        ] {
            let bad = serde_json::json!({"upstream": {"url": url}});
            assert_eq!(forward(bad).unwrap_err(), "upstream.url", "{url:?}");
        }
        let bad = serde_json::json!({"upstream": {"url": "https://core", "max_concurrent": 0}});
        assert_eq!(forward(bad).unwrap_err(), "upstream.max_concurrent");
        let bad = serde_json::json!({"upstream": {"url": "https://core", "ca_file": "/nope.pem"}});
        assert_eq!(forward(bad).unwrap_err(), "upstream.ca_file");
        let scrub = serde_json::json!({"upstream": {"url": "https://core", "process": "scrub",
            "compression": "gzip", "accept_unknown_keys": true}});
        let scrub = forward(scrub).unwrap().upstream.unwrap();
        assert_eq!(scrub.process, UpstreamProcessing::Scrub);
        assert_eq!(scrub.compression, UpstreamCompression::Gzip);
        assert!(scrub.accept_unknown_keys);
        assert!(serde_json::from_value::<Config>(
            serde_json::json!({"upstream": {"url": "http://a", "proces": "scrub"}})
        )
        .is_err());
    }

    #[test]
    fn tls_needs_an_address_and_both_files() {
        let dir = std::env::temp_dir();
        let file = dir.join(format!("relay-tls-test-{}.pem", std::process::id()));
        std::fs::write(&file, "x").unwrap();
        let tls = |listen: &str, cert: &std::path::Path, plain: bool| -> Result<(), String> {
            let config: Config = serde_json::from_value(serde_json::json!({
                "tls": {"listen": listen, "cert": cert, "key": &file, "plain": plain}
            }))
            .map_err(|e| e.to_string())?;
            config.validate().map_err(|e| e.key)
        };
        assert_eq!(tls("127.0.0.1:3443", &file, true), Ok(()));
        assert_eq!(tls("nowhere", &file, true).unwrap_err(), "tls.listen");
        assert_eq!(
            tls("127.0.0.1:3000", &file, true).unwrap_err(),
            "tls.listen"
        );
        assert_eq!(tls("127.0.0.1:3000", &file, false), Ok(()), "HTTPS only");
        assert_eq!(
            tls("127.0.0.1:3443", &dir.join("missing.pem"), true).unwrap_err(),
            "tls.cert"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn key_forms() {
        let keys: Vec<KeyConfig> = serde_json::from_str(
            r#"["abc123def456abc123def456abc123de", {"key": "00000000000000000000000000000000", "disabled": true}]"#,
        )
        .unwrap();
        assert!(!keys[0].disabled());
        assert!(keys[1].disabled());
        assert_eq!(keys[1].key(), "00000000000000000000000000000000");
    }
}
