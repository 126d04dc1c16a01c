//! Loading the configuration: YAML file, then environment variables, then flags.
//!
//! Precedence is flags > environment > file > built-in defaults. clap reads each override from
//! its flag or, when the flag is absent, from its `RELAY_*` variable.

use std::path::{Path, PathBuf};

use relay_core::{Config, ConfigError};

/// Values that override the file, from flags or environment variables.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Address to listen on, e.g. 127.0.0.1:3000.
    #[arg(long, env = "RELAY_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the relay's state.
    #[arg(long, env = "RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka bootstrap servers; without any, an embedded broker is started.
    #[arg(long, env = "RELAY_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not match the schema; `key` names where.
    #[error("{path}: {key}: {reason}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Dotted path of the offending key.
        key: String,
        /// The parser's message.
        reason: String,
    },
    /// A value is well-formed but unacceptable.
    #[error("{origin}: {error}")]
    Invalid {
        /// The file, or "configuration" when only defaults and overrides were used.
        origin: String,
        /// The offending key and why.
        error: ConfigError,
    },
}

/// Loads the configuration from `path` (if any), applies `overrides` and validates it.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, LoadError> {
    let mut config = match path {
        Some(path) => parse_file(path)?,
        None => Config::default(),
    };
    apply(&mut config, overrides);
    let invalid = |error| LoadError::Invalid {
        origin: path.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()),
        error,
    };
    config.validate().map_err(invalid)?;
    Ok(config)
}

/// The name this relay gives itself on the messages it publishes: `instance_id`, or the
/// hostname and the port of `listen` (`host:3000`), unique across a fleet of relays with one
/// per host or different ports.
pub fn instance_id(config: &Config) -> String {
    if let Some(id) = &config.instance_id {
        return id.clone();
    }
    let port = config
        .listen
        .parse::<std::net::SocketAddr>()
        .map(|addr| addr.port())
        .unwrap_or_default();
    format!("{}:{port}", hostname())
}

/// The host's name, or `localhost` when it cannot be read.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let status = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match (status, std::str::from_utf8(&buf[..len])) {
        (0, Ok(name)) if !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

fn parse_file(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text).map_err(|(key, reason)| LoadError::Schema {
        path: path.to_owned(),
        key,
        reason,
    })
}

/// Parses YAML into a [`Config`], reporting the path of the offending key on error.
fn parse_yaml(text: &str) -> Result<Config, (String, String)> {
    // An empty file (or only comments) means "all defaults".
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Config::default());
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." {
            "(top level)".to_owned()
        } else {
            key
        };
        let reason = err.into_inner().to_string();
        // serde_yaml's messages start with the path already when it knows it.
        let reason = match reason.strip_prefix(&format!("{key}: ")) {
            Some(rest) => rest.to_owned(),
            None => reason,
        };
        (key, reason)
    })
}

fn apply(config: &mut Config, overrides: &Overrides) {
    if let Some(listen) = &overrides.listen {
        config.listen = listen.clone();
    }
    if let Some(data_dir) = &overrides.data_dir {
        config.data_dir = data_dir.clone();
    }
    if let Some(brokers) = &overrides.kafka_brokers {
        config.kafka.brokers = Some(brokers.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
listen: "127.0.0.1:3000"
data_dir: "./relay-data"
kafka:
  brokers: "127.0.0.1:9092"    # absent: embedded broker
  topics: { events: relay.events, attachments: relay.attachments, outcomes: relay.outcomes, issues: relay.issues }
projects:
  - id: 42
    keys: ["abc123def456abc123def456abc123de"]
"#;

    #[test]
    fn documented_minimum_parses() {
        let config = parse_yaml(ISSUE_EXAMPLE).unwrap();
        assert_eq!(config.kafka.brokers.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(config.projects[0].id, 42);
        assert_eq!(config.kafka.topics.issues, "relay.issues");
        config.validate().unwrap();
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(parse_yaml("# nothing\n\n").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_offending_key() {
        let (key, reason) = parse_yaml("projects:\n  - id: x\n    keys: []\n").unwrap_err();
        assert_eq!(key, "projects[0].id");
        assert!(reason.starts_with("invalid type"), "{reason}");

        let (key, reason) = parse_yaml("listne: 1\n").unwrap_err();
        assert_eq!(key, "listne");
        assert!(reason.contains("listne"), "{reason}");

        let (key, _) = parse_yaml("kafka:\n  topics: { evnts: x }\n").unwrap_err();
        assert_eq!(key, "kafka.topics.evnts");
    }

    /// The processing library's sections are parsed with the rest of the file, so their
    /// errors name the key too (`relay config check` shows them).
    #[test]
    fn processing_errors_name_the_offending_key() {
        let project = "projects:\n  - id: 1\n    keys: [abc123def456abc123def456abc123de]\n";
        let (key, reason) =
            parse_yaml(&format!("{project}    filters: {{ localhots: true }}\n")).unwrap_err();
        assert_eq!(key, "projects[0].filters.localhots");
        assert!(reason.contains("localhots"), "{reason}");

        let (key, reason) = parse_yaml(&format!(
            "{project}    filters: {{ error_messages: [\"a[\"] }}\n"
        ))
        .unwrap_err();
        assert_eq!(key, "projects[0].filters.error_messages");
        assert!(reason.contains("a["), "{reason}");

        let (key, reason) = parse_yaml(&format!(
            "{project}    filters: {{ client_ips: [localhost] }}\n"
        ))
        .unwrap_err();
        assert_eq!(key, "projects[0].filters.client_ips");
        assert!(reason.contains("localhost"), "{reason}");

        let (key, _) =
            parse_yaml(&format!("{project}    pii: {{ scrub_ip: true }}\n")).unwrap_err();
        assert_eq!(key, "projects[0].pii.scrub_ip");

        let (key, _) = parse_yaml("processing:\n  aggregator: { window_secs: ten }\n").unwrap_err();
        assert_eq!(key, "processing.aggregator.window_secs");
        let (key, _) = parse_yaml("processing:\n  normalize: { max_frame: 1 }\n").unwrap_err();
        assert_eq!(key, "processing.normalize.max_frame");
    }

    #[test]
    fn instance_id_defaults_to_host_and_port() {
        let config = Config {
            listen: "127.0.0.1:4123".into(),
            ..Config::default()
        };
        let id = instance_id(&config);
        assert!(id.ends_with(":4123") && id.len() > 5, "{id}");
        let named = Config {
            instance_id: Some("relay-a".into()),
            ..config
        };
        assert_eq!(instance_id(&named), "relay-a");
    }

    #[test]
    fn overrides_win() {
        let mut config = parse_yaml(ISSUE_EXAMPLE).unwrap();
        apply(
            &mut config,
            &Overrides {
                listen: Some("127.0.0.1:4000".into()),
                data_dir: None,
                kafka_brokers: Some("10.0.0.1:9092".into()),
            },
        );
        assert_eq!(config.listen, "127.0.0.1:4000");
        assert_eq!(config.kafka.brokers.as_deref(), Some("10.0.0.1:9092"));
        assert_eq!(config.data_dir, PathBuf::from("./relay-data"));
    }
}
