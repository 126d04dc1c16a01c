//! The `processing` section: event processing settings for every project.

use serde::{Deserialize, Serialize};

use super::null_as_default;

/// Relay-wide event processing settings, used by `relay_processing`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Normalization limits (`relay_processing::normalize`).
    #[serde(deserialize_with = "null_as_default")]
    pub normalize: NormalizeConfig,
    /// Issue windows (`relay_processing::aggregate`).
    #[serde(deserialize_with = "null_as_default")]
    pub aggregator: AggregatorConfig,
}

/// Bounds and size limits applied by normalization.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Oldest accepted event timestamp, in seconds before the receive time; an older one is
    /// replaced by the receive time and noted (`past_timestamp`). Defaults to 30 days
    /// (2592000).
    pub max_secs_in_past: u64,
    /// Latest accepted event timestamp, in seconds after the receive time; a later one is
    /// replaced by the receive time and noted (`future_timestamp`). Defaults to 60.
    pub max_secs_in_future: u64,
    /// Smallest difference, in seconds, between the envelope's `sent_at` and the receive time
    /// that is treated as a wrong SDK clock and corrected (`clock_drift`). Smaller differences
    /// are transfer time and left alone. Defaults to 3300 (55 minutes).
    pub clock_drift_threshold_secs: u64,
    /// Longest tag key, in characters; longer tags are dropped and noted. Defaults to 200.
    pub max_tag_key_length: usize,
    /// Longest tag value, in characters; longer tags are dropped and noted. Defaults to 200.
    pub max_tag_value_length: usize,
    /// Most frames kept per stack trace; the middle ones are dropped and `frames_omitted`
    /// says which. Defaults to 250.
    pub max_frames: usize,
    /// Most breadcrumbs kept (the latest ones). Defaults to 100.
    pub max_breadcrumbs: usize,
    /// Longest string anywhere in the event, in characters; longer ones are cut (ending in
    /// `...`) and their length is recorded in `_meta`. Defaults to 8192.
    pub max_string_length: usize,
    /// Deepest nesting inside a databag (`extra`, each context, `request.data`, frame `vars`,
    /// breadcrumb and span `data`, `user.data`); deeper containers become `null`. Defaults
    /// to 5.
    pub max_databag_depth: usize,
    /// Largest databag, in bytes of JSON; entries past the budget are removed and the
    /// container's original item count is recorded in `_meta`. Defaults to 16384.
    pub max_databag_size: usize,
    /// Most exceptions kept in `exception.values` (the last ones: the last is the one raised);
    /// the original count is recorded in `_meta`. Defaults to 25.
    pub max_exceptions: usize,
    /// Most threads kept in `threads.values` (crashed and current threads always, then the
    /// first others); the original count is recorded in `_meta`. Threads added by minidump
    /// symbolication are bounded by `symbolication.max_threads` instead. Defaults to 256.
    pub max_threads: usize,
    /// Most tags kept (the first ones, after the other tag rules); the original count is
    /// recorded in `_meta`. Defaults to 200.
    pub max_tags: usize,
    /// Most entries kept in `contexts` (the first ones in key order); the original count is
    /// recorded in `_meta`. Defaults to 50.
    pub max_contexts: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            max_secs_in_past: 30 * 24 * 3600,
            max_secs_in_future: 60,
            clock_drift_threshold_secs: 55 * 60,
            max_tag_key_length: 200,
            max_tag_value_length: 200,
            max_frames: 250,
            max_breadcrumbs: 100,
            max_string_length: 8192,
            max_databag_depth: 5,
            max_databag_size: 16 * 1024,
            max_exceptions: 25,
            max_threads: 256,
            max_tags: 200,
            max_contexts: 50,
        }
    }
}

/// Window length and memory bound of the aggregator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorConfig {
    /// Length of one window, in seconds (at least 1). Defaults to 10.
    pub window_secs: u64,
    /// Most groups one window holds before it is flushed early. Defaults to 10000.
    pub max_groups_per_window: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_secs: 10,
            max_groups_per_window: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default_and_unknown_keys_are_refused() {
        let config: NormalizeConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, NormalizeConfig::default());
        let config: NormalizeConfig = serde_json::from_str(r#"{"max_frames": 10}"#).unwrap();
        assert_eq!(config.max_frames, 10);
        assert!(serde_json::from_str::<NormalizeConfig>(r#"{"max_frame": 10}"#).is_err());
    }
}
