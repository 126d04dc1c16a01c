//! The configuration schema. Loading (files, environment, flags) is the server's job.
//!
//! Every field has a default, so an empty file (or none at all) is a working configuration.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
        }
    }
}

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

/// A project that may send to this relay.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The numeric project id from the DSN path.
    pub id: u64,
    /// Public keys (32 hex digits) accepted for this project.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// A disabled project's requests are answered 403. Defaults to false.
    #[serde(default)]
    pub disabled: bool,
    /// Directories of native debug files for this project, searched before the global ones
    /// in `symbolication.native_symbols`.
    #[serde(default)]
    pub native_symbols: Vec<PathBuf>,
    /// HTTP symbol servers for this project, tried before the global ones in
    /// `symbolication.http_sources`. Defaults to none.
    #[serde(default)]
    pub http_sources: Vec<HttpSymbolSource>,
    /// Directory of JavaScript artifacts for this project, instead of the global one.
    #[serde(default)]
    pub js_artifacts: Option<PathBuf>,
    /// The organization the project belongs to, for organization-scoped quotas.
    #[serde(default)]
    pub organization: Option<u64>,
    /// Quotas, each enforced per scope and category.
    #[serde(default)]
    pub quotas: Vec<QuotaConfig>,
    /// Inbound filters (`relay_processing::filter::FilterConfig`; see `docs/processing.md`).
    /// Checked when the configuration is loaded. Defaults to every filter off.
    #[serde(default)]
    pub filters: serde_json::Value,
    /// PII scrubbing options (`relay_processing::pii::PiiConfig`; see `docs/processing.md`).
    /// Checked when the configuration is loaded. Defaults to scrubbing on.
    #[serde(default)]
    pub pii: serde_json::Value,
}

/// Relay-wide event processing settings.
///
/// The sections are the processing library's own config types, kept as data here (this crate
/// cannot name them) and checked when the configuration is loaded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Normalization limits (`relay_processing::normalize::NormalizeConfig`).
    pub normalize: serde_json::Value,
    /// Issue windows (`relay_processing::aggregate::AggregatorConfig`).
    pub aggregator: serde_json::Value,
}

impl ProjectConfig {
    /// A project with these keys and every option at its default.
    pub fn new(id: u64, keys: Vec<KeyConfig>) -> Self {
        ProjectConfig {
            id,
            keys,
            disabled: false,
            native_symbols: Vec::new(),
            http_sources: Vec::new(),
            js_artifacts: None,
            organization: None,
            quotas: Vec::new(),
            filters: serde_json::Value::Null,
            pii: serde_json::Value::Null,
        }
    }
}

/// What a quota counts against.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum QuotaScope {
    /// All projects of the organization together.
    Organization,
    /// The project.
    Project,
    /// Each public key separately.
    Key,
}

impl QuotaScope {
    /// The name used in `X-Sentry-Rate-Limits`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaScope::Organization => "organization",
            QuotaScope::Project => "project",
            QuotaScope::Key => "key",
        }
    }
}

/// A quota: at most `limit` units of `categories` per `window` seconds in each `scope`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// A name for the quota, unique within the project.
    pub id: String,
    /// Data categories counted; empty means all.
    #[serde(default)]
    pub categories: Vec<crate::DataCategory>,
    /// What the quota counts against.
    pub scope: QuotaScope,
    /// Units allowed per window (items; bytes for `attachment`).
    pub limit: u64,
    /// Window length in seconds.
    pub window: u64,
    /// Reason code reported to clients in `X-Sentry-Rate-Limits` and in outcomes.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A public key, written either as a plain string or as `{key, disabled}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyConfig {
    /// An enabled key.
    Plain(String),
    /// A key with options.
    Detailed {
        /// The public key.
        key: String,
        /// A disabled key's requests are answered 403. Defaults to false.
        #[serde(default)]
        disabled: bool,
    },
}

impl KeyConfig {
    /// The public key.
    pub fn key(&self) -> &str {
        match self {
            KeyConfig::Plain(key) | KeyConfig::Detailed { key, .. } => key,
        }
    }

    /// Whether requests with this key are refused.
    pub fn disabled(&self) -> bool {
        matches!(self, KeyConfig::Detailed { disabled: true, .. })
    }
}

/// Size limits. A request over a limit is answered 413.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body as received (compressed), in bytes. Defaults to 20 MiB.
    pub max_request_size: usize,
    /// Largest envelope after decompression, in bytes. Defaults to 100 MiB.
    pub max_envelope_size: usize,
    /// Largest event or transaction item, in bytes. Defaults to 1 MiB.
    pub max_event_size: usize,
    /// Largest single attachment (minidumps included), in bytes. Defaults to 100 MiB.
    pub max_attachment_size: usize,
    /// Requests per second allowed from one client IP (with bursts of twice that); beyond,
    /// 429 with `Retry-After`. 0 turns the limit off. Defaults to 1000.
    pub per_ip_requests_per_second: u32,
    /// Intake requests handled at once; beyond, 503 with `Retry-After`. Defaults to 1024.
    pub max_concurrent_requests: usize,
}

/// A mebibyte, for byte-sized defaults.
const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_size: 20 * MIB,
            max_envelope_size: 100 * MIB,
            max_event_size: MIB,
            max_attachment_size: 100 * MIB,
            per_ip_requests_per_second: 1000,
            max_concurrent_requests: 1024,
        }
    }
}

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

/// Symbol and source map sources; see `docs/symbolication-native.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolicationConfig {
    /// Directories of native debug files (ELF/DWARF, Mach-O/dSYM, PDB, PE, Breakpad `.sym`) in
    /// any layout, searched in order for every project. Defaults to none.
    pub native_symbols: Vec<PathBuf>,
    /// HTTP symbol servers, tried in order (after the local directories) for the modules of a
    /// minidump that no local debug file covers. Defaults to none: nothing is downloaded.
    pub http_sources: Vec<HttpSymbolSource>,
    /// Directory of JavaScript artifacts (minified files, source maps, Sentry artifact
    /// bundles) for every project without its own `js_artifacts`. Defaults to none.
    pub js_artifacts: Option<PathBuf>,
    /// Where SymCaches, CFI caches and downloaded debug files are kept. Defaults to
    /// `data_dir/symbol-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Size bound of `cache_dir` in bytes (downloads, SymCaches and CFI together); beyond it the
    /// oldest files (by modification time) are deleted. Defaults to 10 GiB.
    pub max_cache_bytes: u64,
    /// Deadline for symbolicating one event, in seconds; frames not done by then are marked
    /// `timeout` and the event goes on. Defaults to 20.
    pub timeout_secs: u64,
    /// Deadline for downloading one event's debug files from `http_sources`, in seconds; the
    /// event then goes on with what has arrived (downloads still running finish in the
    /// background for later events). Defaults to 30.
    pub fetch_deadline_secs: u64,
    /// How long a file a symbol server does not have (404) is not asked for again, in
    /// seconds; failures (timeouts, 5xx) are retried after at most 5 minutes. Defaults to 3600.
    pub negative_cache_secs: u64,
}

impl Default for SymbolicationConfig {
    fn default() -> Self {
        SymbolicationConfig {
            native_symbols: Vec::new(),
            http_sources: Vec::new(),
            js_artifacts: None,
            cache_dir: None,
            max_cache_bytes: 10 * 1024 * 1024 * 1024,
            timeout_secs: 20,
            fetch_deadline_secs: 30,
            negative_cache_secs: 3600,
        }
    }
}

/// An HTTP symbol server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSymbolSource {
    /// Base URL (`http://` or `https://`); file paths of the layout are appended to it.
    pub url: String,
    /// How the server arranges its files. Defaults to `breakpad`.
    #[serde(default)]
    pub layout: SymbolServerLayout,
    /// Longest wait for the connection, the response headers or the next part of the body of
    /// one file, in seconds. Defaults to 10.
    #[serde(default = "default_source_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_source_timeout_secs() -> u64 {
    10
}

/// The file layout of a symbol server.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SymbolServerLayout {
    /// Breakpad's native layout: `<debug_file>/<DEBUG_ID>/<debug_file without .pdb>.sym`.
    #[default]
    Breakpad,
    /// Microsoft's symbol store: `<name>/<ID>/<name>`, or `<name>/<ID>/<nam_>` compressed (a
    /// cabinet); PDBs by debug id, PE files by code id (timestamp and image size).
    Symstore,
    /// debuginfod: `buildid/<build id>/debuginfo` and `buildid/<build id>/executable`.
    Debuginfod,
}

/// Outcome aggregation and publishing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutcomesConfig {
    /// How often aggregated outcomes are published, in seconds. Defaults to 10.
    pub flush_interval_secs: u64,
    /// Distinct (minute, project, key, category, outcome, reason) counters kept between
    /// flushes; beyond, a flush is forced. Defaults to 10000.
    pub max_buckets: usize,
}

impl Default for OutcomesConfig {
    fn default() -> Self {
        OutcomesConfig {
            flush_interval_secs: 10,
            max_buckets: 10_000,
        }
    }
}

/// When the spool makes appended data durable.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Sync before answering 200 (one sync per group of concurrent appends). Survives power loss.
    Always,
    /// Sync at most every `fsync_interval_ms`; answers before the sync. Survives a process
    /// crash; a power loss may lose the last interval.
    Interval,
    /// Leave syncing to the OS. Survives a process crash only.
    Never,
}

/// The durable spool under `data_dir/spool`; see `docs/guarantees.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Disk quota of all segments, in bytes. When full, intake answers 503 and readiness is
    /// false until delivered entries free space. Defaults to 1 GiB.
    pub max_disk_bytes: u64,
    /// A segment is sealed and a new one started beyond this size, in bytes. Defaults to 16 MiB.
    pub segment_bytes: u64,
    /// When appends are synced to disk. Defaults to `always`.
    pub fsync: FsyncPolicy,
    /// Sync interval for `fsync: interval`, in milliseconds. Defaults to 100.
    pub fsync_interval_ms: u64,
    /// Appends waiting for the writer at most; beyond, intake answers 503. Defaults to 4096.
    pub write_queue: usize,
    /// An entry older than this when read from the spool is dropped with an `expired` count
    /// and a log line instead of being published, in seconds. Defaults to 7 days.
    pub max_entry_age_secs: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_disk_bytes: 1024 * 1024 * 1024,
            segment_bytes: 16 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 100,
            write_queue: 4096,
            max_entry_age_secs: 7 * 24 * 3600,
        }
    }
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
        if let Some(brokers) = &self.kafka.brokers {
            if brokers.trim().is_empty() {
                return Err(ConfigError::new(
                    "kafka.brokers",
                    "must not be empty; remove it to use the embedded broker",
                ));
            }
        }
        for (name, topic) in self.kafka.topics.all() {
            if topic.is_empty() {
                return Err(ConfigError::new(
                    format!("kafka.topics.{name}"),
                    "must not be empty",
                ));
            }
        }
        if self.kafka.attachment_chunk_size == 0 {
            return Err(ConfigError::new(
                "kafka.attachment_chunk_size",
                "must be at least 1",
            ));
        }
        if self.kafka.embedded_partitions < 1 {
            return Err(ConfigError::new(
                "kafka.embedded_partitions",
                "must be at least 1",
            ));
        }
        self.validate_projects()?;
        let positive = [
            ("limits.max_request_size", self.limits.max_request_size),
            ("limits.max_envelope_size", self.limits.max_envelope_size),
            ("limits.max_event_size", self.limits.max_event_size),
            (
                "limits.max_attachment_size",
                self.limits.max_attachment_size,
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
        if self.spool.segment_bytes > self.spool.max_disk_bytes {
            return Err(ConfigError::new(
                "spool.segment_bytes",
                "must not exceed spool.max_disk_bytes",
            ));
        }
        Ok(())
    }

    fn validate_symbol_sources(&self) -> Result<(), ConfigError> {
        let symbolication = &self.symbolication;
        let global = symbolication
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
            let rest = source
                .url
                .strip_prefix("http://")
                .or_else(|| source.url.strip_prefix("https://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
                return Err(ConfigError::new(
                    format!("{path}.url"),
                    format!("{:?} is not an http:// or https:// URL", source.url),
                ));
            }
            if source.timeout_secs == 0 {
                return Err(ConfigError::new(
                    format!("{path}.timeout_secs"),
                    "must be at least 1",
                ));
            }
        }
        let positive = [
            (
                "symbolication.max_cache_bytes",
                symbolication.max_cache_bytes,
            ),
            (
                "symbolication.fetch_deadline_secs",
                symbolication.fetch_deadline_secs,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    fn validate_projects(&self) -> Result<(), ConfigError> {
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        for (p, project) in self.projects.iter().enumerate() {
            if !ids.insert(project.id) {
                return Err(ConfigError::new(
                    format!("projects[{p}].id"),
                    format!("project {} is configured twice", project.id),
                ));
            }
            if project.keys.is_empty() {
                return Err(ConfigError::new(
                    format!("projects[{p}].keys"),
                    "needs at least one key",
                ));
            }
            let mut quota_ids = HashSet::new();
            for (q, quota) in project.quotas.iter().enumerate() {
                let path = format!("projects[{p}].quotas[{q}]");
                if !quota_ids.insert(quota.id.as_str()) {
                    return Err(ConfigError::new(
                        format!("{path}.id"),
                        format!("quota {:?} is defined twice", quota.id),
                    ));
                }
                if quota.window == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.window"),
                        "must be at least 1 second",
                    ));
                }
                if quota.scope == QuotaScope::Organization && project.organization.is_none() {
                    return Err(ConfigError::new(
                        format!("{path}.scope"),
                        "an organization quota needs the project's `organization`",
                    ));
                }
            }
            for (k, key) in project.keys.iter().enumerate() {
                let key = key.key();
                let path = format!("projects[{p}].keys[{k}]");
                if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ConfigError::new(
                        path,
                        format!("{key:?} is not 32 hex digits"),
                    ));
                }
                if !keys.insert(key.to_ascii_lowercase()) {
                    return Err(ConfigError::new(path, format!("key {key} is used twice")));
                }
            }
        }
        Ok(())
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
