//! What the intake endpoints check before an envelope is spooled, without HTTP.
//!
//! Credentials from headers and the query string ([`auth`]), the store endpoint's event
//! ([`store`]), the security endpoint's CSP reports ([`security`]), the minidump endpoint's
//! multipart form ([`multipart`]) and the item checks every envelope passes ([`items`]). The handlers in relay-server call these between reading
//! the body and spooling it; [`request::check_request`] runs the whole chain on one request's
//! headers and body, for the `intake` fuzz target and for tests.

pub mod auth;
pub mod items;
pub mod multipart;
pub mod request;
pub mod security;
pub mod store;

use relay_core::EnvelopeError;

use crate::decode::DecodeError;
use crate::minidump::MinidumpError;

/// Why a request's content is refused at intake.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Malformed content (answered 400).
    #[error("{0}")]
    BadRequest(String),
    /// Over a size or count limit (answered 413).
    #[error("{0}")]
    TooLarge(String),
    /// The envelope does not parse (answered 400).
    #[error("invalid envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The body's `Content-Encoding` cannot be undone within the limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The minidump upload is not a minidump, or its container does not unwrap.
    #[error(transparent)]
    Minidump(#[from] MinidumpError),
}
