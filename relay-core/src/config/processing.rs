//! The `processing` section: event processing settings for every project.

use serde::{Deserialize, Serialize};

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
