//! Client authentication: the `X-Sentry-Auth` / `Authorization` header format and DSNs.

use std::fmt;
use std::str::FromStr;

/// Why client credentials could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The header does not start with the `Sentry` scheme.
    #[error("authorization header does not use the Sentry scheme")]
    WrongScheme,
    /// The header has no `sentry_key`.
    #[error("authorization header has no sentry_key")]
    MissingKey,
    /// The DSN is not of the form `scheme://key@host/project_id`.
    #[error("invalid DSN: {0}")]
    InvalidDsn(&'static str),
}

/// Credentials sent by a client, from any of the accepted places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The project's public key (`sentry_key`).
    pub public_key: String,
    /// The protocol version (`sentry_version`), if given.
    pub version: Option<String>,
    /// The client name and version (`sentry_client`), if given.
    pub client: Option<String>,
}

impl Auth {
    /// Parses `Sentry sentry_key=…, sentry_version=7, sentry_client=…`.
    ///
    /// The scheme is case-insensitive; pairs are separated by commas with optional spaces.
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        let (scheme, rest) = value.split_at(value.find(' ').unwrap_or(value.len()));
        if !scheme.eq_ignore_ascii_case("sentry") {
            return Err(AuthError::WrongScheme);
        }
        Self::from_pairs(
            rest.split(',')
                .filter_map(|pair| pair.trim().split_once('='))
                .map(|(k, v)| (k.trim(), v.trim())),
        )
    }

    /// Builds credentials from key/value pairs such as a query string's.
    ///
    /// Fails with [`AuthError::MissingKey`] when there is no non-empty `sentry_key`.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AuthError> {
        let mut auth = Auth {
            public_key: String::new(),
            version: None,
            client: None,
        };
        for (key, value) in pairs {
            match key {
                "sentry_key" => auth.public_key = value.to_owned(),
                "sentry_version" => auth.version = Some(value.to_owned()),
                "sentry_client" => auth.client = Some(value.to_owned()),
                _ => {}
            }
        }
        if auth.public_key.is_empty() {
            return Err(AuthError::MissingKey);
        }
        Ok(auth)
    }
}

/// A parsed DSN: `{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{project_id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dsn {
    /// `http` or `https`.
    pub scheme: String,
    /// The public key.
    pub public_key: String,
    /// Host and optional port.
    pub host: String,
    /// The project id.
    pub project_id: u64,
}

impl FromStr for Dsn {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or(AuthError::InvalidDsn("no scheme"))?;
        let (userinfo, rest) = rest
            .split_once('@')
            .ok_or(AuthError::InvalidDsn("no public key"))?;
        let public_key = userinfo.split(':').next().unwrap_or_default();
        let (host, path) = rest
            .split_once('/')
            .ok_or(AuthError::InvalidDsn("no project id"))?;
        let project_id = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or(AuthError::InvalidDsn("project id is not a number"))?;
        if public_key.is_empty() || host.is_empty() {
            return Err(AuthError::InvalidDsn("empty public key or host"));
        }
        Ok(Dsn {
            scheme: scheme.to_owned(),
            public_key: public_key.to_owned(),
            host: host.to_owned(),
            project_id,
        })
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}/{}",
            self.scheme, self.public_key, self.host, self.project_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_sdk_header() {
        let auth = Auth::from_header(
            "Sentry sentry_key=abc123def456abc123def456abc123de, sentry_version=7, sentry_client=sentry.python/2.75.0",
        )
        .unwrap();
        assert_eq!(auth.public_key, "abc123def456abc123def456abc123de");
        assert_eq!(auth.version.as_deref(), Some("7"));
        assert_eq!(auth.client.as_deref(), Some("sentry.python/2.75.0"));
    }

    #[test]
    fn scheme_and_spacing_are_lenient() {
        let auth = Auth::from_header("sentry sentry_key=k,sentry_version=7").unwrap();
        assert_eq!(auth.public_key, "k");
        assert_eq!(Auth::from_header("Bearer xyz"), Err(AuthError::WrongScheme));
        assert_eq!(
            Auth::from_header("Sentry sentry_version=7"),
            Err(AuthError::MissingKey)
        );
    }

    #[test]
    fn dsn_round_trip() {
        let dsn: Dsn = "http://abc123def456abc123def456abc123de@127.0.0.1:3000/42"
            .parse()
            .unwrap();
        assert_eq!(dsn.public_key, "abc123def456abc123def456abc123de");
        assert_eq!(dsn.project_id, 42);
        assert_eq!(
            dsn.to_string(),
            "http://abc123def456abc123def456abc123de@127.0.0.1:3000/42"
        );
        let with_secret: Dsn = "https://key:secret@example.com/sub/7".parse().unwrap();
        assert_eq!(
            (with_secret.public_key.as_str(), with_secret.project_id),
            ("key", 7)
        );
        assert!("http://127.0.0.1/42".parse::<Dsn>().is_err());
        assert!("http://k@host/abc".parse::<Dsn>().is_err());
    }
}
