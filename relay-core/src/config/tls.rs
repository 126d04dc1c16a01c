//! The `tls` section: an HTTPS listener (rustls; HTTP/1.1 and HTTP/2 by ALPN) beside or
//! instead of the plain one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The HTTPS listener; see `docs/edge.md`, "TLS".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener, e.g. `0.0.0.0:3443`. Required.
    pub listen: String,
    /// PEM file with the certificate chain, leaf first. Required; read again on `SIGHUP`.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1). Required; read again on
    /// `SIGHUP`.
    pub key: PathBuf,
    /// Keep the plain HTTP listener (`listen`) open beside the HTTPS one. Defaults to true;
    /// false serves HTTPS only.
    pub plain: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            plain: true,
        }
    }
}

impl TlsConfig {
    /// Checks the address and that both files exist; `plain_listen` is the plain listener's
    /// address, which the HTTPS one must not reuse.
    pub(super) fn validate(&self, plain_listen: &str) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "tls.listen",
                format!("{:?} is not an address like 0.0.0.0:3443", self.listen),
            ));
        }
        if self.plain && self.listen == plain_listen {
            return Err(ConfigError::new(
                "tls.listen",
                "must differ from listen (the plain listener)",
            ));
        }
        for (key, path) in [("tls.cert", &self.cert), ("tls.key", &self.key)] {
            if !path.is_file() {
                return Err(ConfigError::new(
                    key,
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }
}
