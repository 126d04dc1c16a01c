//! Limits of normalization, as an operator configures them.
//!
//! Self-contained (serde only) so that the relay configuration can embed it.

use serde::{Deserialize, Serialize};

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
