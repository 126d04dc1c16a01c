//! Credentials sent with an intake request: the `X-Sentry-Auth` or `Authorization` header, the
//! query string, or an envelope's `dsn` header.

use relay_core::{Auth, AuthError, Dsn, Envelope};

use super::IntakeError;

/// The headers credentials are read from, in order of preference.
pub const AUTH_HEADERS: [&str; 2] = ["x-sentry-auth", "authorization"];

/// Credentials from the first auth header present (`header` returns a header's raw value by
/// lowercase name), else from `sentry_key` in the query string, else `None`.
pub fn request_auth<'a>(
    header: impl Fn(&str) -> Option<&'a [u8]>,
    query: &str,
) -> Result<Option<Auth>, IntakeError> {
    for name in AUTH_HEADERS {
        let Some(value) = header(name) else {
            continue;
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| IntakeError::BadRequest(format!("{name} header is not valid text")))?;
        match Auth::from_header(value) {
            Ok(auth) => return Ok(Some(auth)),
            // `Authorization` may carry other schemes meant for a proxy; ignore those.
            Err(AuthError::WrongScheme) if name == "authorization" => continue,
            Err(error) => {
                return Err(IntakeError::BadRequest(format!(
                    "invalid {name} header: {error}"
                )))
            }
        }
    }
    query_auth(query)
}

/// `sentry_key` (and friends) from the query string, as @sentry/node and browsers send them.
fn query_auth(query: &str) -> Result<Option<Auth>, IntakeError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !pairs.iter().any(|(k, _)| k == "sentry_key") {
        return Ok(None);
    }
    Auth::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map(Some)
        .map_err(|e| IntakeError::BadRequest(format!("invalid query string auth: {e}")))
}

/// The public key from an envelope's `dsn` header, when the request itself carried none.
pub fn envelope_dsn_key(envelope: &Envelope) -> Result<Option<String>, IntakeError> {
    let Some(dsn) = &envelope.headers.dsn else {
        return Ok(None);
    };
    let dsn: Dsn = dsn.parse().map_err(|e: AuthError| {
        IntakeError::BadRequest(format!("invalid envelope dsn header: {e}"))
    })?;
    Ok(Some(dsn.public_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abc123def456abc123def456abc123de";

    fn none(_: &str) -> Option<&'static [u8]> {
        None
    }

    #[test]
    fn header_wins_over_query() {
        let header = format!("Sentry sentry_key={KEY}, sentry_version=7");
        let auth = request_auth(
            |name| (name == "x-sentry-auth").then_some(header.as_bytes()),
            "sentry_key=other",
        )
        .unwrap()
        .unwrap();
        assert_eq!(auth.public_key, KEY);
    }

    #[test]
    fn query_string_and_foreign_authorization_schemes() {
        let auth = request_auth(
            |name| (name == "authorization").then_some(b"Bearer abc".as_slice()),
            &format!("sentry_version=7&sentry_key={KEY}"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(auth.public_key, KEY);
        assert!(request_auth(none, "a=b").unwrap().is_none());
    }

    #[test]
    fn bad_credentials_are_reasons() {
        let err = request_auth(|_| Some(b"Sentry \xff".as_slice()), "").unwrap_err();
        assert!(err.to_string().contains("not valid text"), "{err}");
        let err = request_auth(
            |n| (n == "x-sentry-auth").then_some(b"Basic x".as_slice()),
            "",
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("invalid x-sentry-auth"));
    }
}
