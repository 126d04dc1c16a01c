//! The `outcomes` section: aggregation and publishing of outcomes.

use serde::{Deserialize, Serialize};

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
