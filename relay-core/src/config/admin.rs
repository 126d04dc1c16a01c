//! The `admin` section: the operator's listener, apart from the intake.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The admin listener (`POST /api/relay/reload/`). Off unless `listen` is set; it has no
/// authentication, so bind it to a loopback or otherwise private address.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener, e.g. `127.0.0.1:3001`. Defaults to none (off).
    pub listen: Option<String>,
}

impl AdminConfig {
    /// Checks that `listen`, when set, is an address.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.listen {
            Some(listen) if listen.parse::<std::net::SocketAddr>().is_err() => Err(
                ConfigError::new("admin.listen", format!("{listen:?} is not an address")),
            ),
            _ => Ok(()),
        }
    }
}
