//! Uploaded debug files and artifact bundles: who may upload ([`Uploads::authorize`]), where
//! the files are kept ([`storage`]) and how the symbolicators learn of them
//! ([`crate::symbols::UploadTargets`]). The HTTP side is `endpoints/uploads/`.
//!
//! Where each file lives under `data_dir/uploads`: [`layout`].

pub mod layout;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use relay_core::config::{OrganizationConfig, UploadToken};
use relay_core::Config;

pub use self::layout::{bundles_dir, debug_files_dir, uploads_root};
pub use self::storage::{Assembled, Storage, StorageError};
use crate::symbols::UploadTargets;

/// The longest wait between two sweeps of stale chunks.
const SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// An organization as the upload API sees it.
#[derive(Debug)]
pub struct Organization {
    /// Its id.
    pub id: u64,
    /// Its slug.
    pub slug: String,
    tokens: Vec<UploadToken>,
    /// Its projects: (id, slug).
    projects: Vec<(u64, String)>,
}

impl Organization {
    /// The project named by `name` (its slug, or its id as text).
    pub fn project(&self, name: &str) -> Option<u64> {
        self.projects
            .iter()
            .find(|(id, slug)| slug == name || id.to_string() == name)
            .map(|(id, _)| *id)
    }

    /// The projects' ids and slugs.
    pub fn projects(&self) -> &[(u64, String)] {
        &self.projects
    }
}

/// Why an upload request is not allowed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header; 401.
    #[error("authentication required: send an upload token as `Authorization: Bearer <token>` (SENTRY_AUTH_TOKEN)")]
    Missing,
    /// The token is no configured upload token; 401.
    #[error("invalid upload token")]
    Invalid,
    /// The token belongs to another organization; 403.
    #[error("this upload token is not allowed for organization {0:?}")]
    OtherOrganization(String),
    /// No organization has this slug or id; 404.
    #[error("organization {0:?} not found")]
    UnknownOrganization(String),
    /// The organization has no such project; 404.
    #[error("project {project:?} not found in organization {organization:?}")]
    UnknownProject {
        /// The organization slug.
        organization: String,
        /// The project as named in the request.
        project: String,
    },
}

/// The upload API's shared state: organizations, storage, and the stores to tell.
pub struct Uploads {
    organizations: Vec<Organization>,
    storage: Storage,
    targets: UploadTargets,
    body_timeout: Duration,
}

impl Uploads {
    /// Opens the storage under `data_dir/uploads`, measuring what it holds.
    pub fn open(config: &Config, targets: UploadTargets) -> std::io::Result<Self> {
        let organizations = config
            .organizations
            .iter()
            .map(|org| organization(org, config))
            .collect();
        Ok(Uploads {
            organizations,
            storage: Storage::open(&uploads_root(config), &config.uploads)?,
            targets,
            body_timeout: Duration::from_secs(config.limits.body_timeout_secs),
        })
    }

    /// How long a request body may take (`limits.body_timeout_secs`).
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// Deletes stale chunks now and then, off the HTTP workers, for as long as the actix
    /// system runs.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let every = (self.storage.chunk_ttl() / 4).clamp(Duration::from_secs(1), SWEEP_INTERVAL);
        let uploads = self.clone();
        actix_web::rt::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                let uploads = uploads.clone();
                let swept = actix_web::web::block(move || uploads.storage.sweep()).await;
                if let Ok(deleted @ 1..) = swept {
                    tracing::info!(deleted, "stale upload chunks deleted");
                }
            }
        });
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The symbol stores to tell about new files.
    pub fn targets(&self) -> &UploadTargets {
        &self.targets
    }

    /// The organization named `name` (slug or id) if `authorization` carries one of its
    /// tokens. Every configured token is compared, in constant time each, whatever matches.
    pub fn authorize(
        &self,
        name: &str,
        authorization: Option<&str>,
    ) -> Result<&Organization, AuthError> {
        let presented = authorization
            .and_then(|value| value.trim().strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        let mut owner = None;
        for org in &self.organizations {
            for token in &org.tokens {
                if token.matches(presented) {
                    owner = Some(org.id);
                }
            }
        }
        let owner = owner.ok_or(AuthError::Invalid)?;
        let org = self
            .organizations
            .iter()
            .find(|org| org.slug == name || org.id.to_string() == name)
            .ok_or_else(|| AuthError::UnknownOrganization(shown(name)))?;
        if org.id != owner {
            return Err(AuthError::OtherOrganization(org.slug.clone()));
        }
        Ok(org)
    }

    /// [`Self::authorize`], then the organization's project named `project`.
    pub fn authorize_project(
        &self,
        name: &str,
        project: &str,
        authorization: Option<&str>,
    ) -> Result<(&Organization, u64), AuthError> {
        let org = self.authorize(name, authorization)?;
        let id = org
            .project(project)
            .ok_or_else(|| AuthError::UnknownProject {
                organization: org.slug.clone(),
                project: shown(project),
            })?;
        Ok((org, id))
    }
}

fn organization(org: &OrganizationConfig, config: &Config) -> Organization {
    Organization {
        id: org.id,
        slug: org.slug.clone(),
        tokens: org.upload_tokens.clone(),
        projects: config
            .projects
            .iter()
            .filter(|p| p.organization == Some(org.id))
            .map(|p| (p.id, p.slug()))
            .collect(),
    }
}

/// Client text for an error, bounded.
fn shown(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use relay_core::config::{KeyConfig, ProjectConfig};

    use super::*;

    const ACME: &str = "acme-token-0123456789abcdef0123456789";
    const OTHER: &str = "other-token-0123456789abcdef012345678";

    fn uploads(dir: &Path) -> Uploads {
        let mut web = ProjectConfig::new(42, vec![KeyConfig::Plain("a".repeat(32))]);
        web.slug = Some("web".into());
        web.organization = Some(7);
        let config = Config {
            data_dir: dir.to_owned(),
            organizations: vec![
                OrganizationConfig {
                    id: 7,
                    slug: "acme".into(),
                    upload_tokens: vec![UploadToken::new(ACME)],
                },
                OrganizationConfig {
                    id: 8,
                    slug: "other".into(),
                    upload_tokens: vec![UploadToken::new(OTHER)],
                },
            ],
            projects: vec![web],
            ..Config::default()
        };
        config.validate().unwrap();
        Uploads::open(&config, UploadTargets::default()).unwrap()
    }

    #[test]
    fn tokens_open_their_own_organization_only() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = uploads(dir.path());
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(
            uploads.authorize("acme", Some(&bearer(ACME))).unwrap().id,
            7
        );
        assert_eq!(uploads.authorize("7", Some(&bearer(ACME))).unwrap().id, 7);
        assert_eq!(
            uploads.authorize("acme", None).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            uploads.authorize("acme", Some(ACME)).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            uploads
                .authorize("acme", Some(&bearer(&ACME[..ACME.len() - 1])))
                .unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            uploads.authorize("acme", Some(&bearer(OTHER))).unwrap_err(),
            AuthError::OtherOrganization("acme".into())
        );
        assert!(matches!(
            uploads.authorize("nope", Some(&bearer(ACME))),
            Err(AuthError::UnknownOrganization(_))
        ));
        let (_, project) = uploads
            .authorize_project("acme", "web", Some(&bearer(ACME)))
            .unwrap();
        assert_eq!(project, 42);
        assert_eq!(
            uploads
                .authorize_project("acme", "42", Some(&bearer(ACME)))
                .unwrap()
                .1,
            42
        );
        assert!(matches!(
            uploads.authorize_project("acme", "api", Some(&bearer(ACME))),
            Err(AuthError::UnknownProject { .. })
        ));
    }
}
