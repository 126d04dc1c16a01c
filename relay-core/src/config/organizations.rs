//! The `organizations` section: who may upload debug files and source maps (`docs/uploads.md`),
//! and the `uploads` section bounding what they may store.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::projects::ProjectConfig;
use super::ConfigError;

/// The shortest upload token accepted, in characters.
pub const MIN_UPLOAD_TOKEN_LEN: usize = 32;

/// An organization: a slug for the upload API's paths and the tokens that may upload to its
/// projects.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    /// The numeric id projects name in their `organization`.
    pub id: u64,
    /// The name in upload paths (`/api/0/organizations/{slug}/…`, `SENTRY_ORG`).
    pub slug: String,
    /// Secrets of at least 32 characters, sent by sentry-cli as `Authorization: Bearer …`.
    #[serde(default)]
    pub upload_tokens: Vec<UploadToken>,
}

/// A secret upload token. Its `Debug` output is redacted, so it never reaches a log line.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct UploadToken(String);

impl UploadToken {
    /// A token with this secret.
    pub fn new(secret: impl Into<String>) -> Self {
        UploadToken(secret.into())
    }

    /// The secret, for comparing with what a request presents.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that depends only on the lengths (so the
    /// answer time does not tell an attacker how many leading bytes were right).
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for UploadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadToken(<{} characters, redacted>)", self.0.len())
    }
}

/// Equality of two byte strings that reads every byte of both, whatever they hold.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let mut difference = (a.len() != b.len()) as u8;
    for i in 0..longest {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= x ^ y;
    }
    // Keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(difference) == 0
}

/// Bounds of the upload API's storage under `data_dir/uploads`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// Largest assembled file (debug file or artifact bundle), in bytes; larger ones are
    /// refused. Also announced to sentry-cli as `maxFileSize`. Defaults to 512 MiB.
    pub max_file_bytes: u64,
    /// Disk space of all uploads together (chunks waiting for assembly and stored files), in
    /// bytes; an upload that would pass it is refused. Defaults to 8 GiB.
    pub max_disk_bytes: u64,
    /// Chunks not assembled within this many seconds are deleted. Defaults to 1 hour.
    pub chunk_ttl_secs: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            max_file_bytes: 512 * 1024 * 1024,
            max_disk_bytes: 8 * 1024 * 1024 * 1024,
            chunk_ttl_secs: 3600,
        }
    }
}

impl UploadsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("uploads.max_file_bytes", self.max_file_bytes),
            ("uploads.max_disk_bytes", self.max_disk_bytes),
            ("uploads.chunk_ttl_secs", self.chunk_ttl_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.max_file_bytes > self.max_disk_bytes {
            return Err(ConfigError::new(
                "uploads.max_file_bytes",
                "must not exceed uploads.max_disk_bytes",
            ));
        }
        Ok(())
    }
}

/// Checks the organizations and the projects' references to them: unique ids, slugs and
/// tokens, tokens of 32+ characters, project slugs unique within an organization.
pub(super) fn validate_organizations(
    organizations: &[OrganizationConfig],
    projects: &[ProjectConfig],
) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    let mut slugs = HashSet::new();
    let mut tokens = HashSet::new();
    for (o, org) in organizations.iter().enumerate() {
        if !ids.insert(org.id) {
            return Err(ConfigError::new(
                format!("organizations[{o}].id"),
                format!("organization {} is configured twice", org.id),
            ));
        }
        if let Some(reason) = slug_error(&org.slug) {
            return Err(ConfigError::new(format!("organizations[{o}].slug"), reason));
        }
        if !slugs.insert(org.slug.as_str()) {
            return Err(ConfigError::new(
                format!("organizations[{o}].slug"),
                format!("slug {:?} is used twice", org.slug),
            ));
        }
        for (t, token) in org.upload_tokens.iter().enumerate() {
            let path = format!("organizations[{o}].upload_tokens[{t}]");
            // The token itself is never part of an error: errors are printed and logged.
            if token.secret().chars().count() < MIN_UPLOAD_TOKEN_LEN {
                return Err(ConfigError::new(
                    path,
                    format!("must be at least {MIN_UPLOAD_TOKEN_LEN} characters"),
                ));
            }
            if token
                .secret()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ConfigError::new(path, "must not contain spaces"));
            }
            if !tokens.insert(token.secret()) {
                return Err(ConfigError::new(path, "the same token is configured twice"));
            }
        }
    }
    let mut project_slugs = HashSet::new();
    for (p, project) in projects.iter().enumerate() {
        if let Some(slug) = &project.slug {
            if let Some(reason) = slug_error(slug) {
                return Err(ConfigError::new(format!("projects[{p}].slug"), reason));
            }
        }
        let Some(org) = project.organization else {
            continue;
        };
        if !organizations.is_empty() && !ids.contains(&org) {
            return Err(ConfigError::new(
                format!("projects[{p}].organization"),
                format!("no organization with id {org} in `organizations`"),
            ));
        }
        if !project_slugs.insert((org, project.slug())) {
            return Err(ConfigError::new(
                format!("projects[{p}].slug"),
                format!(
                    "slug {:?} is used twice in organization {org}",
                    project.slug()
                ),
            ));
        }
    }
    Ok(())
}

/// Why a slug cannot be a path segment, if so.
fn slug_error(slug: &str) -> Option<&'static str> {
    if slug.is_empty() || slug.len() > 64 {
        return Some("must be 1 to 64 characters");
    }
    let valid = slug
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (!valid || slug == "." || slug == "..")
        .then_some("may hold only letters, digits, `-`, `_` and `.`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: u64, slug: &str, tokens: &[&str]) -> OrganizationConfig {
        OrganizationConfig {
            id,
            slug: slug.into(),
            upload_tokens: tokens.iter().map(|t| UploadToken::new(*t)).collect(),
        }
    }

    #[test]
    fn constant_time_eq_agrees_with_eq() {
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("a", "b"),
            ("ab", "a"),
            ("a", "ab"),
            ("", "x"),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} {b:?}"
            );
        }
        // A prefix padded with the bytes the fold pads with is still different.
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }

    #[test]
    fn tokens_are_redacted_in_debug_output() {
        let token = UploadToken::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t");
        let shown = format!("{:?}", org(1, "acme", &[token.secret()]));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(token.matches("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"));
        assert!(!token.matches("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3"));
    }

    #[test]
    fn errors_name_the_key_and_never_the_token() {
        let good = "a".repeat(32);
        let short = "short-secret";
        let error = validate_organizations(&[org(7, "acme", &[&good, short])], &[]).unwrap_err();
        assert_eq!(error.key, "organizations[0].upload_tokens[1]");
        assert!(!error.to_string().contains(short), "{error}");

        let error = validate_organizations(&[org(7, "acme", &[&good]), org(8, "acme", &[])], &[])
            .unwrap_err();
        assert_eq!(error.key, "organizations[1].slug");
        let error = validate_organizations(&[org(7, "a/b", &[])], &[]).unwrap_err();
        assert_eq!(error.key, "organizations[0].slug");
        let error = validate_organizations(&[org(7, "a", &[&good]), org(8, "b", &[&good])], &[])
            .unwrap_err();
        assert_eq!(error.key, "organizations[1].upload_tokens[0]");

        let mut project = ProjectConfig::new(42, Vec::new());
        project.organization = Some(9);
        let error = validate_organizations(&[org(7, "acme", &[])], &[project.clone()]).unwrap_err();
        assert_eq!(error.key, "projects[0].organization");
        project.organization = Some(7);
        let mut twin = ProjectConfig::new(43, Vec::new());
        twin.organization = Some(7);
        twin.slug = Some("42".into());
        let error = validate_organizations(&[org(7, "acme", &[])], &[project, twin]).unwrap_err();
        assert_eq!(error.key, "projects[1].slug");
    }

    #[test]
    fn uploads_bounds_are_checked() {
        UploadsConfig::default().validate().unwrap();
        let config = UploadsConfig {
            max_file_bytes: 10,
            max_disk_bytes: 5,
            ..UploadsConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "uploads.max_file_bytes");
    }
}
