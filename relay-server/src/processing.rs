//! The processing library's settings, read from the configuration.
//!
//! relay-core keeps the `filters`, `pii` and `processing` sections as plain data because it
//! cannot name the processing library's types; they are parsed here, once, when the
//! configuration is loaded, so `relay config check` reports their errors with the key path.

use std::collections::HashMap;

use relay_core::{Config, ConfigError};
use relay_processing::aggregate::AggregatorConfig;
use relay_processing::filter::FilterConfig;
use relay_processing::normalize::NormalizeConfig;
use relay_processing::pii::{PiiConfig, PiiScrubber};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One project's processing settings.
#[derive(Clone, Debug, Default)]
pub struct ProjectProcessing {
    /// Inbound filters.
    pub filters: FilterConfig,
    /// PII scrubbing, its rules built once.
    pub pii: PiiScrubber,
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
    /// Parses the processing sections of `config`, naming the offending key on error.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut projects = HashMap::new();
        for (index, project) in config.projects.iter().enumerate() {
            let settings = ProjectProcessing {
                filters: parse(&project.filters, &format!("projects[{index}].filters"))?,
                pii: PiiScrubber::new(parse::<PiiConfig>(
                    &project.pii,
                    &format!("projects[{index}].pii"),
                )?),
            };
            projects.insert(project.id, settings);
        }
        Ok(ProcessingSettings {
            normalize: parse(&config.processing.normalize, "processing.normalize")?,
            aggregator: parse(&config.processing.aggregator, "processing.aggregator")?,
            projects,
            fallback: ProjectProcessing::default(),
        })
    }

    /// The settings of a project (defaults for an unknown one).
    pub fn project(&self, project_id: u64) -> &ProjectProcessing {
        self.projects.get(&project_id).unwrap_or(&self.fallback)
    }
}

/// Deserializes a section; absent (`null`) means the type's defaults.
fn parse<T: DeserializeOwned + Default>(value: &Value, key: &str) -> Result<T, ConfigError> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let key = if path == "." {
            key.to_owned()
        } else {
            format!("{key}.{path}")
        };
        ConfigError {
            key,
            reason: error.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sections_parse_and_errors_name_the_key() {
        let mut config = Config::default();
        config.projects.push(
            serde_json::from_value(json!({
                "id": 1, "keys": ["abc123def456abc123def456abc123de"],
                "filters": {"localhost": true, "error_messages": ["*ConnectionError*"]},
                "pii": {"ip_addresses": true}
            }))
            .unwrap(),
        );
        let settings = ProcessingSettings::from_config(&config).unwrap();
        assert!(settings.project(1).filters.localhost);
        assert!(settings.project(1).pii.config().ip_addresses);
        assert!(!settings.project(2).filters.localhost);

        config.projects[0].filters = json!({"localhots": true});
        let error = ProcessingSettings::from_config(&config).unwrap_err();
        assert!(error.key.starts_with("projects[0].filters"), "{error}");
        assert!(error.reason.contains("localhots"), "{error}");

        config.projects[0].filters = Value::Null;
        config.processing.aggregator = json!({"window_secs": "ten"});
        assert_eq!(
            ProcessingSettings::from_config(&config).unwrap_err().key,
            "processing.aggregator.window_secs"
        );
    }
}
