//! The HTTPS listener's certificate (`tls`): rustls with ring, HTTP/1.1 and HTTP/2 by ALPN
//! (actix-web adds both protocols), the certificate and key read again on `SIGHUP`.
//!
//! The server's rustls configuration asks a [`ReloadableCert`] for the certificate at every
//! handshake, so a reload applies to the next connection without restarting the listener.
//! A reload that fails (a missing file, a key that does not match the certificate) keeps the
//! certificate in use and logs why. The `SIGHUP` listener here is its own: tokio delivers a
//! signal to every listener registered for it, so other `SIGHUP` users are unaffected.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use relay_core::config::TlsConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("tls.cert {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file is unreadable, holds no PEM private key, or a key rustls cannot use.
    #[error("tls.key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("tls.key {path} does not match the certificate in tls.cert")]
    Mismatch {
        /// The key file.
        path: String,
    },
    /// rustls refused the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate served, replaced by [`ReloadableCert::reload`].
#[derive(Debug)]
pub struct ReloadableCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads `tls.cert` and `tls.key`.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let current = load_certified_key(&config.cert, &config.key)?;
        Ok(ReloadableCert {
            cert: config.cert.clone(),
            key: config.key.clone(),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; on success the next handshakes get the new certificate, on
    /// failure the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load_certified_key(&self.cert, &self.key)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration serving `cert`'s certificate (actix-web adds the ALPN
/// protocols).
pub fn server_config(cert: Arc<ReloadableCert>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert))
}

/// Reloads the certificate on every `SIGHUP`, until the process ends.
#[cfg(unix)]
pub async fn reload_on_sighup(cert: Arc<ReloadableCert>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the TLS certificate is not reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match cert.reload() {
            Ok(()) => {
                tracing::info!(cert = %cert.cert.display(), "SIGHUP: TLS certificate reloaded")
            }
            Err(error) => {
                tracing::warn!(%error, "SIGHUP: TLS certificate not reloaded; keeping the current one")
            }
        }
    }
}

#[cfg(not(unix))]
pub async fn reload_on_sighup(_cert: Arc<ReloadableCert>) {}

/// Reads a certificate chain and its private key, checking that they belong together.
fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert.display().to_string(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: key.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in the file".to_owned()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(e.to_string()))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&private_key)
        .map_err(|e| key_error(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            path: key.display().to_string(),
        }),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        crate::test_support::fixtures().join("tls").join(name)
    }

    fn config(cert: &str, key: &str) -> TlsConfig {
        TlsConfig {
            listen: "127.0.0.1:3443".into(),
            cert: fixture(cert),
            key: fixture(key),
            plain: true,
        }
    }

    #[test]
    fn a_certificate_loads_and_a_reload_swaps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::copy(fixture("cert-a.pem"), &cert).unwrap();
        std::fs::copy(fixture("key-a.pem"), &key).unwrap();
        let tls = TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            ..config("cert-a.pem", "key-a.pem")
        };
        let reloadable = Arc::new(ReloadableCert::load(&tls).unwrap());
        server_config(reloadable.clone()).unwrap();
        let first = reloadable.current().cert[0].clone();

        // A broken pair on disk: the reload fails and the old certificate stays.
        std::fs::copy(fixture("cert-b.pem"), &cert).unwrap();
        assert!(matches!(
            reloadable.reload(),
            Err(TlsError::Mismatch { .. })
        ));
        assert_eq!(reloadable.current().cert[0], first);

        std::fs::copy(fixture("key-b.pem"), &key).unwrap();
        reloadable.reload().unwrap();
        let second = reloadable.current().cert[0].clone();
        assert_ne!(second, first);
        let expected = CertificateDer::from_pem_file(fixture("cert-b.pem")).unwrap();
        assert_eq!(second, expected);
    }

    #[test]
    fn unreadable_or_foreign_files_are_named() {
        let error = ReloadableCert::load(&config("missing.pem", "key-a.pem")).unwrap_err();
        assert!(matches!(error, TlsError::Cert { .. }), "{error}");
        let error = ReloadableCert::load(&config("cert-a.pem", "cert-a.pem")).unwrap_err();
        assert!(matches!(error, TlsError::Key { .. }), "{error}");
        let error = ReloadableCert::load(&config("cert-a.pem", "key-b.pem")).unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");
    }
}
