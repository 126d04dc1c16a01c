//! One intake request's whole check, from its path, headers and body to the envelope that
//! would be spooled: what the handlers do before quotas and the spool, minus HTTP.
//!
//! The handlers run the same steps interleaved with the in-flight budget and async body
//! reads; this composition serves the `intake` fuzz target and tests.

use bytes::Bytes;
use relay_core::config::Limits;
use relay_core::{Envelope, EventId};

use super::auth::{envelope_dsn_key, request_auth};
use super::multipart::{build_envelope, multipart_boundary, parse_multipart, Upload};
use super::security::envelope_from_reports;
use super::store::envelope_from_event;
use super::{items, IntakeError};
use crate::decode::{decode_bounded, ContentEncoding};
use crate::minidump::unwrap_minidump;

/// The intake endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/{project_id}/envelope/`
    Envelope,
    /// `POST /api/{project_id}/store/`
    Store,
    /// `POST /api/{project_id}/minidump/`
    Minidump,
    /// `POST /api/{project_id}/security/`
    Security,
}

/// An intake request as received: path, query string, headers (any case) and body.
#[derive(Clone, Debug, Default)]
pub struct IntakeRequest {
    /// The path, e.g. `/api/42/envelope/`.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// Header names and raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body as received.
    pub body: Bytes,
}

/// What the checks let through: ready for quotas and the spool.
#[derive(Debug)]
pub struct Checked {
    /// The endpoint the path named.
    pub endpoint: Endpoint,
    /// The project id from the path.
    pub project_id: u64,
    /// The public key from the request or the envelope's `dsn` header.
    pub public_key: Option<String>,
    /// The envelope that would be spooled.
    pub envelope: Envelope,
    /// The event id answered to the client.
    pub event_id: Option<EventId>,
}

impl IntakeRequest {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn header_text(&self, name: &str) -> Option<&str> {
        // Like the handlers: a header that is not text reads as unknown (`?`).
        self.header(name)
            .map(|v| std::str::from_utf8(v).unwrap_or("?"))
    }
}

/// `/api/{project_id}/{endpoint}/` -> the project id and endpoint.
pub fn parse_path(path: &str) -> Result<(u64, Endpoint), IntakeError> {
    let not_found = || IntakeError::BadRequest(format!("no intake endpoint at {path:?}"));
    let rest = path.strip_prefix("/api/").ok_or_else(not_found)?;
    let (project, endpoint) = rest.split_once('/').ok_or_else(not_found)?;
    let endpoint = match endpoint {
        "envelope/" => Endpoint::Envelope,
        "store/" => Endpoint::Store,
        "minidump/" => Endpoint::Minidump,
        "security/" => Endpoint::Security,
        _ => return Err(not_found()),
    };
    let project_id = project
        .parse()
        .map_err(|e| IntakeError::BadRequest(format!("invalid project id {project:?}: {e}")))?;
    Ok((project_id, endpoint))
}

/// Runs every intake check on `request` under `limits`.
pub fn check_request(request: &IntakeRequest, limits: &Limits) -> Result<Checked, IntakeError> {
    let (project_id, endpoint) = parse_path(&request.path)?;
    let auth = request_auth(|name| request.header(name), &request.query)?;
    let (received_limit, decoded_limit) = match endpoint {
        Endpoint::Envelope => (limits.max_request_size, limits.max_envelope_size),
        Endpoint::Store | Endpoint::Security => (limits.max_request_size, limits.max_event_size),
        Endpoint::Minidump => (
            limits.max_request_size.max(limits.max_attachment_size),
            limits.max_envelope_size,
        ),
    };
    if request.body.len() > received_limit {
        return Err(IntakeError::TooLarge(format!(
            "request body exceeds the limit of {received_limit} bytes"
        )));
    }
    let body = decode(request, decoded_limit)?;
    let (envelope, minidump_id) = match endpoint {
        Endpoint::Envelope => (Envelope::parse(body)?, None),
        Endpoint::Store => (envelope_from_event(body)?, None),
        Endpoint::Security => (envelope_from_reports(body)?.envelope, None),
        Endpoint::Minidump => {
            let (envelope, id) = minidump_envelope(request, body, limits)?;
            (envelope, Some(id))
        }
    };
    let public_key = match auth {
        Some(auth) => Some(auth.public_key),
        None => envelope_dsn_key(&envelope)?,
    };
    let event_id = items::check_items(&envelope, limits)?;
    Ok(Checked {
        endpoint,
        project_id,
        public_key,
        event_id: minidump_id.or(event_id),
        envelope,
    })
}

/// The body with its `Content-Encoding` undone, at most `limit` bytes.
fn decode(request: &IntakeRequest, limit: usize) -> Result<Bytes, IntakeError> {
    let encoding = ContentEncoding::from_header(request.header_text("content-encoding"))?;
    if encoding == ContentEncoding::Identity {
        if request.body.len() > limit {
            return Err(IntakeError::TooLarge(format!(
                "body exceeds the limit of {limit} bytes"
            )));
        }
        return Ok(request.body.clone());
    }
    Ok(decode_bounded(encoding, &request.body, limit)?.into())
}

/// A minidump upload (multipart form, or the dump as the body) as an envelope.
fn minidump_envelope(
    request: &IntakeRequest,
    body: Bytes,
    limits: &Limits,
) -> Result<(Envelope, EventId), IntakeError> {
    let mut upload = match multipart_boundary(request.header_text("content-type"))? {
        Some(boundary) => parse_multipart(body, boundary)?,
        None => Upload::raw_dump(body),
    };
    let mut minidump = upload.take_minidump()?;
    if let Some(unwrapped) = unwrap_minidump(&minidump.data, limits.max_attachment_size)? {
        minidump.data = unwrapped.into();
    }
    build_envelope(upload, minidump)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abc123def456abc123def456abc123de";

    fn request(path: &str, headers: &[(&str, &str)], body: &'static [u8]) -> IntakeRequest {
        IntakeRequest {
            path: path.to_owned(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/api/42/store/").unwrap(), (42, Endpoint::Store));
        assert_eq!(
            parse_path("/api/42/security/").unwrap(),
            (42, Endpoint::Security)
        );
        let err = parse_path("/api/18446744073709551616/envelope/").unwrap_err();
        assert!(err.to_string().starts_with("invalid project id"), "{err}");
        assert!(parse_path("/api/42/other/").is_err());
    }

    #[test]
    fn envelope_with_dsn_header() {
        let body = b"{\"dsn\":\"http://abc123def456abc123def456abc123de@h/42\"}\n{\"type\":\"event\"}\n{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n";
        let checked =
            check_request(&request("/api/42/envelope/", &[], body), &Limits::default()).unwrap();
        assert_eq!(checked.public_key.as_deref(), Some(KEY));
        assert_eq!(
            checked.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
    }

    #[test]
    fn raw_minidump_and_missing_dump() {
        let auth = (
            "X-Sentry-Auth",
            "Sentry sentry_key=abc123def456abc123def456abc123de",
        );
        let checked = check_request(
            &request("/api/42/minidump/", &[auth], b"MDMP\x93\xa7rest"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(checked.envelope.items.len(), 2);
        let form = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b--\r\n";
        let ct = ("Content-Type", "multipart/form-data; boundary=b");
        let err = check_request(
            &request("/api/42/minidump/", &[auth, ct], form),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("missing minidump"), "{err}");
    }
}
