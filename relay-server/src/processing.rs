//! The processing library's settings, taken from the configuration.
//!
//! The `filters`, `pii` and `processing` sections are typed in relay-core's schema, so they
//! were parsed (and their errors reported with the key path) when the file was read. What is
//! left here is what the pipeline needs ready: each project's settings by id, with its PII
//! rules built once.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use relay_core::Config;
use relay_processing::aggregate::AggregatorConfig;
use relay_processing::filter::FilterConfig;
use relay_processing::normalize::NormalizeConfig;
use relay_processing::pii::PiiScrubber;

/// One project's processing settings.
#[derive(Clone, Debug, Default)]
pub struct ProjectProcessing {
    /// Inbound filters.
    pub filters: FilterConfig,
    /// PII scrubbing, its rules built once.
    pub pii: PiiScrubber,
}

/// The processing settings in force, shared by the pipeline's stages and replaced as a whole
/// by a config reload. A stage takes the current settings when it starts on an envelope and
/// keeps them for that envelope.
#[derive(Clone)]
pub struct LiveProcessing(Arc<ArcSwap<ProcessingSettings>>);

impl LiveProcessing {
    /// Settings in force until the first [`Self::replace`].
    pub fn new(settings: ProcessingSettings) -> Self {
        LiveProcessing(Arc::new(ArcSwap::from_pointee(settings)))
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<ProcessingSettings> {
        self.0.load_full()
    }

    /// Puts `settings` in force for the envelopes taken up from now on.
    pub fn replace(&self, settings: ProcessingSettings) {
        self.0.store(Arc::new(settings));
    }
}

/// All processing settings.
#[derive(Debug, Default)]
pub struct ProcessingSettings {
    /// Normalization limits.
    pub normalize: NormalizeConfig,
    /// Issue windows.
    pub aggregator: AggregatorConfig,
    projects: HashMap<u64, ProjectProcessing>,
    fallback: ProjectProcessing,
}

impl ProcessingSettings {
    /// The processing settings of `config`, by project.
    pub fn new(config: &Config) -> Self {
        let projects = config
            .projects
            .iter()
            .map(|project| {
                let settings = ProjectProcessing {
                    filters: project.filters.clone(),
                    pii: PiiScrubber::new(project.pii.clone()),
                };
                (project.id, settings)
            })
            .collect();
        ProcessingSettings {
            normalize: config.processing.normalize,
            aggregator: config.processing.aggregator,
            projects,
            fallback: ProjectProcessing::default(),
        }
    }

    /// The settings of a project (defaults for an unknown one).
    pub fn project(&self, project_id: u64) -> &ProjectProcessing {
        self.projects.get(&project_id).unwrap_or(&self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn projects_get_their_own_settings_and_unknown_ones_the_defaults() {
        let mut config = Config::default();
        config.projects.push(
            serde_json::from_value(json!({
                "id": 1, "keys": ["abc123def456abc123def456abc123de"],
                "filters": {"localhost": true, "error_messages": ["*ConnectionError*"]},
                "pii": {"ip_addresses": true}
            }))
            .unwrap(),
        );
        config.processing.aggregator.window_secs = 3;
        let settings = ProcessingSettings::new(&config);
        assert!(settings.project(1).filters.localhost);
        assert!(settings
            .project(1)
            .filters
            .error_messages
            .is_match("a ConnectionError!"));
        assert!(settings.project(1).pii.config().ip_addresses);
        assert!(!settings.project(2).filters.localhost);
        assert!(!settings.project(2).pii.config().ip_addresses);
        assert_eq!(settings.aggregator.window_secs, 3);
    }
}
