//! Config reload without restart: on `SIGHUP` or `POST /api/relay/reload/` (admin listener),
//! the config file is read and validated again, and its projects, keys, quotas, filters, PII
//! rules, symbol sources and normalization options are put in force
//! ([`ServiceState::reload`]). A file that fails to load or validate, or whose new symbol
//! sources cannot be read, is refused and logged; the settings in force stay. Requests and
//! envelopes already under way finish with the settings they started with.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;

use crate::config::{self, LoadError, Overrides};
use crate::projects::ensure_default_project;
use crate::state::{ServiceState, SymbolSourcesError};

/// Where the configuration came from, to read it again the same way.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// The file, if any.
    pub path: Option<PathBuf>,
    /// Flags and environment variables, which still win over the file.
    pub overrides: Overrides,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read, parsed or validated.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The default project's key (no projects configured) could not be read or written.
    #[error("cannot prepare the default project: {0}")]
    DefaultProject(std::io::Error),
    /// The projects' changed symbol sources could not be loaded.
    #[error(transparent)]
    SymbolSources(#[from] SymbolSourcesError),
}

/// Reloads the configuration of one relay; one reload at a time.
pub struct Reloader {
    source: ConfigSource,
    state: web::Data<ServiceState>,
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader reading `source` into `state`.
    pub fn new(source: ConfigSource, state: web::Data<ServiceState>) -> Arc<Self> {
        Arc::new(Reloader {
            source,
            state,
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the configuration again and puts it in force; `trigger` names the cause in the
    /// log. Returns the changed sections that need a restart to apply.
    pub async fn reload(&self, trigger: &str) -> Result<Vec<String>, ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let state = self.state.clone();
        // Off the runtime's threads: new symbol sources are scanned, however large they are.
        let reloaded = match self.load() {
            Ok(config) => tokio::task::spawn_blocking(move || state.reload(config))
                .await
                .expect("the reload does not panic")
                .map_err(ReloadError::from),
            Err(error) => Err(error),
        };
        match reloaded {
            Ok(not_applied) => {
                if not_applied.is_empty() {
                    tracing::info!(trigger, "configuration reloaded");
                } else {
                    tracing::warn!(
                        trigger,
                        ?not_applied,
                        "configuration reloaded; these changes need a restart and are not applied"
                    );
                }
                Ok(not_applied)
            }
            Err(error) => {
                tracing::error!(
                    trigger,
                    %error,
                    "configuration reload refused; the configuration in force stays"
                );
                Err(error)
            }
        }
    }

    fn load(&self) -> Result<relay_core::Config, ReloadError> {
        let mut config = config::load(self.source.path.as_deref(), &self.source.overrides)?;
        ensure_default_project(&mut config).map_err(ReloadError::DefaultProject)?;
        Ok(config)
    }
}

/// Reloads on every `SIGHUP`, for the life of the process. Listens on its own: other parts
/// of the relay may listen for `SIGHUP` too (tokio delivers it to every listener).
#[cfg(unix)]
pub async fn reload_on_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload through the admin listener instead");
        return;
    };
    while hangup.recv().await.is_some() {
        // The outcome is logged by `reload`.
        let _ = reloader.reload("SIGHUP").await;
    }
}

/// No `SIGHUP` outside Unix: reloads come from the admin listener only.
#[cfg(not(unix))]
pub async fn reload_on_sighup(_reloader: Arc<Reloader>) {}
