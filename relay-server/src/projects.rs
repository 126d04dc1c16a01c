//! Which projects and keys may send, and the default project of a configuration-free start.

use std::collections::HashMap;
use std::path::Path;

use relay_core::config::{origin_matches, KeyConfig, ProjectConfig};
use relay_core::Config;
use serde::{Deserialize, Serialize};

/// Why a request's credentials are refused. 401 for missing/unknown keys, 403 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No key was presented.
    #[error("missing authentication: send X-Sentry-Auth, Authorization: Sentry, ?sentry_key= or an envelope dsn")]
    MissingKey,
    /// The key is not configured.
    #[error("unknown public key {0}")]
    UnknownKey(String),
    /// The key is configured but disabled.
    #[error("public key {0} is disabled")]
    DisabledKey(String),
    /// The key belongs to a different project than the URL names.
    #[error("public key {key} does not belong to project {project_id}")]
    WrongProject {
        /// The presented key.
        key: String,
        /// The project in the URL.
        project_id: u64,
    },
    /// The project is disabled.
    #[error("project {0} is disabled")]
    DisabledProject(u64),
    /// The upstream refused this key recently (forward mode; remembered for
    /// `upstream.key_refusal_secs`). 401 when the upstream answered 401, 403 otherwise.
    #[error("public key {key} was refused by the upstream: {reason}")]
    RefusedUpstream {
        /// The presented key, cut like an unknown key.
        key: String,
        /// Whether the upstream answered 401 (else 403).
        unauthorized: bool,
        /// The upstream's reason.
        reason: String,
    },
    /// A browser request from an origin not in the project's `allowed_origins`.
    #[error("origin {origin} is not allowed for project {project_id}")]
    OriginNotAllowed {
        /// The request's `Origin`, cut like an unknown key.
        origin: String,
        /// The project in the URL.
        project_id: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct KeyEntry {
    project_id: u64,
    disabled: bool,
}

/// Lookup of public keys to projects.
#[derive(Debug, Default)]
pub struct Projects {
    keys: HashMap<String, KeyEntry>,
    disabled_projects: Vec<u64>,
    organizations: HashMap<u64, u64>,
    with_quotas: std::collections::HashSet<u64>,
    /// Projects with `allowed_origins`; a project not here allows every origin.
    allowed_origins: HashMap<u64, Vec<String>>,
}

impl Projects {
    /// Indexes the configured projects.
    pub fn new(projects: &[ProjectConfig]) -> Self {
        let mut index = Projects::default();
        for project in projects {
            if project.disabled {
                index.disabled_projects.push(project.id);
            }
            if let Some(organization) = project.organization {
                index.organizations.insert(project.id, organization);
            }
            if !project.quotas.is_empty() {
                index.with_quotas.insert(project.id);
            }
            if !project.allowed_origins.is_empty() {
                index
                    .allowed_origins
                    .insert(project.id, project.allowed_origins.clone());
            }
            for key in &project.keys {
                index.keys.insert(
                    key.key().to_ascii_lowercase(),
                    KeyEntry {
                        project_id: project.id,
                        disabled: key.disabled(),
                    },
                );
            }
        }
        index
    }

    /// The organization of a project, if configured.
    pub fn organization(&self, project_id: u64) -> Option<u64> {
        self.organizations.get(&project_id).copied()
    }

    /// Whether the project has quotas to enforce.
    pub fn has_quotas(&self, project_id: u64) -> bool {
        self.with_quotas.contains(&project_id)
    }

    /// Whether a browser request from `origin` may send to `project_id` (an unknown project
    /// allows every origin: its requests are refused by the key check instead).
    pub fn origin_allowed(&self, project_id: u64, origin: &str) -> bool {
        match self.allowed_origins.get(&project_id) {
            None => true,
            Some(patterns) => patterns
                .iter()
                .any(|pattern| origin_matches(pattern, origin)),
        }
    }

    /// Checks that `public_key` may send to `project_id`.
    pub fn check(&self, project_id: u64, public_key: &str) -> Result<(), AccessError> {
        let entry = self
            .keys
            .get(&public_key.to_ascii_lowercase())
            .ok_or_else(|| AccessError::UnknownKey(shown_key(public_key)))?;
        if entry.project_id != project_id {
            return Err(AccessError::WrongProject {
                key: public_key.to_owned(),
                project_id,
            });
        }
        if self.disabled_projects.contains(&project_id) {
            return Err(AccessError::DisabledProject(project_id));
        }
        if entry.disabled {
            return Err(AccessError::DisabledKey(public_key.to_owned()));
        }
        Ok(())
    }
}

/// Whether `key` looks like a public key (32 hex digits): what forward mode with
/// `upstream.accept_unknown_keys` takes without knowing it.
pub fn is_well_formed_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Characters of an unknown key repeated in the refusal (a configured key has 32).
const SHOWN_KEY_CHARS: usize = 64;

/// An unknown key as the refusal names it: whole up to [`SHOWN_KEY_CHARS`] characters, else
/// its start and its length, so that a client sending a 10 KiB key does not get it echoed
/// back (nor written to the log) in full.
pub(crate) fn shown_key(key: &str) -> String {
    match key.char_indices().nth(SHOWN_KEY_CHARS) {
        None => key.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &key[..end], key.len()),
    }
}

/// The project created on a start without configured projects, kept in `data_dir` so its DSN
/// stays the same across restarts.
#[derive(Debug, Serialize, Deserialize)]
struct DefaultProject {
    id: u64,
    public_key: String,
}

const DEFAULT_PROJECT_FILE: &str = "default-project.json";

/// When no project is configured, loads or creates the default project in `data_dir`.
pub fn ensure_default_project(config: &mut Config) -> std::io::Result<()> {
    if !config.projects.is_empty() {
        return Ok(());
    }
    let path = config.data_dir.join(DEFAULT_PROJECT_FILE);
    let project = match read_default_project(&path) {
        Some(project) => project,
        None => {
            let project = DefaultProject {
                id: 1,
                public_key: uuid::Uuid::new_v4().simple().to_string(),
            };
            std::fs::write(&path, serde_json::to_vec_pretty(&project)?)?;
            project
        }
    };
    config.projects.push(ProjectConfig::new(
        project.id,
        vec![KeyConfig::Plain(project.public_key)],
    ));
    Ok(())
}

fn read_default_project(path: &Path) -> Option<DefaultProject> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(project) => Some(project),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring unreadable default project file; creating a new one");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abc123def456abc123def456abc123de";

    fn projects() -> Projects {
        Projects::new(&[
            ProjectConfig::new(
                42,
                vec![
                    KeyConfig::Plain(KEY.into()),
                    KeyConfig::Detailed {
                        key: "00000000000000000000000000000001".into(),
                        disabled: true,
                    },
                ],
            ),
            ProjectConfig {
                disabled: true,
                ..ProjectConfig::new(
                    7,
                    vec![KeyConfig::Plain("00000000000000000000000000000007".into())],
                )
            },
        ])
    }

    #[test]
    fn access_rules() {
        let p = projects();
        assert_eq!(p.check(42, KEY), Ok(()));
        assert_eq!(p.check(42, &KEY.to_uppercase()), Ok(()));
        assert!(matches!(
            p.check(42, "ffff"),
            Err(AccessError::UnknownKey(_))
        ));
        assert!(matches!(
            p.check(43, KEY),
            Err(AccessError::WrongProject { .. })
        ));
        assert!(matches!(
            p.check(42, "00000000000000000000000000000001"),
            Err(AccessError::DisabledKey(_))
        ));
        assert_eq!(
            p.check(7, "00000000000000000000000000000007"),
            Err(AccessError::DisabledProject(7))
        );
    }

    #[test]
    fn well_formed_keys_are_32_hex_digits() {
        assert!(is_well_formed_key(KEY));
        assert!(is_well_formed_key(&KEY.to_uppercase()));
        assert!(!is_well_formed_key(&KEY[1..]));
        assert!(!is_well_formed_key("zbc123def456abc123def456abc123de"));
        assert!(!is_well_formed_key(""));
    }

    #[test]
    fn a_long_unknown_key_is_not_repeated_whole() {
        let p = projects();
        let long = "k".repeat(10 * 1024);
        let Err(error) = p.check(42, &long) else {
            panic!("a 10 KiB key is unknown");
        };
        let text = error.to_string();
        assert!(text.len() < 120, "{text}");
        assert!(
            text.ends_with(&format!("{}... (10240 bytes)", "k".repeat(64))),
            "{text}"
        );
        let multibyte = "\u{e9}".repeat(100);
        assert!(shown_key(&multibyte).starts_with(&"\u{e9}".repeat(64)));
        assert_eq!(shown_key("ffff"), "ffff");
    }

    #[test]
    fn default_project_is_stable() {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path().to_path_buf();
        let mut first = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        ensure_default_project(&mut first).unwrap();
        let mut second = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        ensure_default_project(&mut second).unwrap();
        assert_eq!(first.projects, second.projects);
        assert_eq!(first.projects[0].keys[0].key().len(), 32);
        first.validate().unwrap();
    }
}
