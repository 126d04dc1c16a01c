//! The `projects` section: the projects that may send, their keys, quotas and per-project
//! processing options.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::filters::FilterConfig;
use super::null_as_default;
use super::pii::PiiConfig;
use super::symbolication::HttpSymbolSource;
use super::ConfigError;

/// A project that may send to this relay.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The numeric project id from the DSN path.
    pub id: u64,
    /// The name in upload paths (`/api/0/projects/{org}/{slug}/…`, `SENTRY_PROJECT`).
    /// Defaults to the id as text; the id is accepted in paths either way.
    #[serde(default)]
    pub slug: Option<String>,
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
    /// The organization the project belongs to: for organization-scoped quotas, and for
    /// uploads with that organization's tokens (an id from `organizations`, when that
    /// section is not empty).
    #[serde(default)]
    pub organization: Option<u64>,
    /// Quotas, each enforced per scope and category.
    #[serde(default)]
    pub quotas: Vec<QuotaConfig>,
    /// Inbound filters (see `docs/processing.md`). Defaults to every filter off.
    #[serde(default, deserialize_with = "null_as_default")]
    pub filters: FilterConfig,
    /// PII scrubbing options (see `docs/processing.md`). Defaults to scrubbing on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pii: PiiConfig,
    /// Browser origins that may send to this project (see [`origin_matches`]). Empty, the
    /// default, allows every origin; requests without an `Origin` header are never refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl ProjectConfig {
    /// A project with these keys and every option at its default.
    pub fn new(id: u64, keys: Vec<KeyConfig>) -> Self {
        ProjectConfig {
            id,
            slug: None,
            keys,
            disabled: false,
            native_symbols: Vec::new(),
            http_sources: Vec::new(),
            js_artifacts: None,
            organization: None,
            quotas: Vec::new(),
            filters: FilterConfig::default(),
            pii: PiiConfig::default(),
            allowed_origins: Vec::new(),
        }
    }

    /// The project's slug: `slug`, or the id as text.
    pub fn slug(&self) -> String {
        self.slug.clone().unwrap_or_else(|| self.id.to_string())
    }

    /// Whether a request with this `Origin` header may send to the project.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|pattern| origin_matches(pattern, origin))
    }
}

/// Whether `origin` (as browsers send it: `scheme://host[:port]`) matches an
/// `allowed_origins` pattern: `*` matches every origin; `*.example.org` matches any scheme
/// and any subdomain of example.org (not example.org itself) on the default port; anything
/// else must equal the origin, ignoring ASCII case.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    // `suffix` keeps its leading dot, so `*.example.org` does not match `evilexample.org`.
    match pattern.starts_with("*.").then(|| &pattern[1..]) {
        Some(suffix) => origin
            .split_once("://")
            .map(|(_, host)| host.len() > suffix.len() && ends_with_ignore_case(host, suffix))
            .unwrap_or(false),
        None => pattern.eq_ignore_ascii_case(origin),
    }
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    let (text, suffix) = (text.as_bytes(), suffix.as_bytes());
    text.len() >= suffix.len() && text[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Why an `allowed_origins` pattern can never match, if so: it is checked at load so that a
/// typo (a path, a missing scheme) does not silently refuse every browser.
fn origin_pattern_error(pattern: &str) -> Option<&'static str> {
    if pattern == "*" {
        return None;
    }
    if let Some(domain) = pattern.strip_prefix("*.") {
        let valid = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        return (!valid).then_some("a wildcard must be `*.` and a domain, e.g. `*.example.org`");
    }
    let Some((scheme, host)) = pattern.split_once("://") else {
        return Some("an origin needs a scheme, e.g. `https://app.example.com`");
    };
    if scheme.is_empty() || host.is_empty() || host.contains(['/', '*', '?', '#']) {
        return Some("an origin is `scheme://host[:port]` without a path or `*` inside");
    }
    None
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

/// Checks the projects: unique ids and keys, at least one key each, keys of 32 hex digits,
/// quotas with unique ids, a window and, for organization quotas, an organization.
pub(super) fn validate_projects(projects: &[ProjectConfig]) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for (p, project) in projects.iter().enumerate() {
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
        for (o, pattern) in project.allowed_origins.iter().enumerate() {
            if let Some(reason) = origin_pattern_error(pattern) {
                return Err(ConfigError::new(
                    format!("projects[{p}].allowed_origins[{o}]"),
                    format!("{pattern:?}: {reason}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_match_exactly_or_by_subdomain() {
        assert!(origin_matches("*", "https://anything.test"));
        assert!(origin_matches(
            "https://app.example.com",
            "https://app.example.com"
        ));
        assert!(origin_matches(
            "https://app.example.com",
            "HTTPS://App.Example.com"
        ));
        assert!(!origin_matches(
            "https://app.example.com",
            "http://app.example.com"
        ));
        assert!(!origin_matches(
            "https://app.example.com",
            "https://app.example.com:8443"
        ));
        assert!(origin_matches("*.example.org", "https://a.example.org"));
        assert!(origin_matches("*.example.org", "http://a.b.example.org"));
        assert!(!origin_matches("*.example.org", "https://example.org"));
        assert!(!origin_matches("*.example.org", "https://evilexample.org"));
        assert!(!origin_matches(
            "*.example.org",
            "https://a.example.org.evil.test"
        ));
        assert!(!origin_matches("*.example.org", "null"));
    }

    #[test]
    fn empty_allowed_origins_allow_every_origin() {
        let mut project = ProjectConfig::new(1, Vec::new());
        assert!(project.origin_allowed("https://any.test"));
        project.allowed_origins = vec!["https://app.example.com".into(), "*.example.org".into()];
        assert!(project.origin_allowed("https://x.example.org"));
        assert!(!project.origin_allowed("https://any.test"));
    }

    #[test]
    fn origin_patterns_are_checked_at_load() {
        for good in [
            "*",
            "*.example.org",
            "https://app.example.com",
            "http://localhost:3000",
        ] {
            assert_eq!(origin_pattern_error(good), None, "{good}");
        }
        for bad in [
            "app.example.com",
            "*.",
            "*example.org",
            "https://a.test/path",
            "https://*.a.test",
        ] {
            assert!(origin_pattern_error(bad).is_some(), "{bad}");
        }
        let mut project = ProjectConfig::new(1, vec![KeyConfig::Plain("a".repeat(32))]);
        project.allowed_origins = vec!["example.com".into()];
        let error = validate_projects(&[project]).unwrap_err().to_string();
        assert!(error.contains("projects[0].allowed_origins[0]"), "{error}");
    }
}
