//! The `upstream` section: forward mode, where the relay sends its spooled envelopes over HTTP
//! to another relay (or any endpoint speaking the Sentry envelope API) instead of to Kafka.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// What an edge relay does to an envelope before it leaves.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProcessing {
    /// Forward the envelope as received.
    #[default]
    None,
    /// Apply the project's inbound filters and PII rules to the event first; drop the client
    /// address when the project scrubs IP addresses.
    Scrub,
}

/// How the request bodies sent upstream are compressed.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamCompression {
    /// `Content-Encoding: zstd`.
    #[default]
    Zstd,
    /// `Content-Encoding: gzip`, for upstreams that do not take zstd.
    Gzip,
    /// Uncompressed.
    None,
}

/// Forward mode; see `docs/edge.md`. Present with a `url`: the relay forwards; absent: it
/// publishes to Kafka.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL of the upstream, `http://` or `https://`, e.g. `http://core.example:3000`.
    /// Envelopes go to `{url}/api/{project_id}/envelope/`. Required.
    pub url: String,
    /// Requests to the upstream at once, at most (they share a keep-alive pool). Keep it below
    /// the upstream's `limits.max_concurrent_requests_per_ip` (256 by default): every request
    /// comes from the edge's address. Defaults to 64 (`docs/benchmarks.md`, "Edge forwarding").
    pub max_concurrent: usize,
    /// One request's limit, from connecting to the end of the answer, in seconds; past it the
    /// entry is retried. Defaults to 30.
    pub timeout_secs: u64,
    /// Longest wait between two attempts of one entry, in seconds (the first wait is
    /// `pipeline.retry_backoff_ms`, doubling, with jitter). Defaults to 30.
    pub max_backoff_secs: u64,
    /// Compression of the bodies sent. Defaults to `zstd`.
    pub compression: UpstreamCompression,
    /// Accept any well-formed key (32 hex digits) for any project and let the upstream decide;
    /// its `401`/`403` are then remembered for `key_refusal_secs`. Defaults to false: only the
    /// configured `projects` and keys are accepted.
    pub accept_unknown_keys: bool,
    /// How long a key the upstream refused (`401`/`403`) is refused at the edge, in seconds.
    /// Defaults to 60.
    pub key_refusal_secs: u64,
    /// `none` forwards envelopes as received; `scrub` applies the project's filters and PII
    /// rules before they leave. Defaults to `none`.
    pub process: UpstreamProcessing,
    /// A PEM file of CA certificates trusted for an `https://` upstream, besides the system's
    /// roots. Defaults to none.
    pub ca_file: Option<PathBuf>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            url: String::new(),
            max_concurrent: 64,
            timeout_secs: 30,
            max_backoff_secs: 30,
            compression: UpstreamCompression::default(),
            accept_unknown_keys: false,
            key_refusal_secs: 60,
            process: UpstreamProcessing::default(),
            ca_file: None,
        }
    }
}

impl UpstreamConfig {
    /// The URL without a trailing slash, to which `/api/...` paths are appended.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// Checks the URL and the bounds.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err(ConfigError::new(
                "upstream.url",
                "is required when the upstream section is present",
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {}
            _ => {
                return Err(ConfigError::new(
                    "upstream.url",
                    format!("{url:?} is not an http:// or https:// URL with a host"),
                ))
            }
        }
        if url.contains('?') || url.contains('#') {
            return Err(ConfigError::new(
                "upstream.url",
                "must not have a query or fragment",
            ));
        }
        for (key, value) in [
            ("upstream.max_concurrent", self.max_concurrent as u64),
            ("upstream.timeout_secs", self.timeout_secs),
            ("upstream.max_backoff_secs", self.max_backoff_secs),
            ("upstream.key_refusal_secs", self.key_refusal_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if let Some(ca_file) = &self.ca_file {
            if !ca_file.is_file() {
                return Err(ConfigError::new(
                    "upstream.ca_file",
                    format!("{} is not a readable file", ca_file.display()),
                ));
            }
        }
        Ok(())
    }
}
