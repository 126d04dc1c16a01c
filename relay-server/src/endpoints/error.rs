//! [`ApiError`]: every way a request can fail, with its status code and JSON reason.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use relay_core::EnvelopeError;
use relay_processing::decode::DecodeError;
use relay_processing::intake::IntakeError;
use relay_processing::minidump::MinidumpError;
use serde_json::json;

use super::budget::{BudgetError, RETRY_AFTER_SECS};
use crate::projects::AccessError;

/// A failed request. The body is always `{"detail": "<what is wrong>"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; 400.
    #[error("{0}")]
    BadRequest(String),
    /// Credentials are missing or refused; 401 or 403.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// An upload request without a valid upload token; 401.
    #[error("{0}")]
    Unauthorized(String),
    /// An upload token used outside its organization; 403.
    #[error("{0}")]
    Forbidden(String),
    /// The upload storage is full (`uploads.max_disk_bytes`); 507.
    #[error("{0}")]
    InsufficientStorage(String),
    /// No endpoint takes the request's method and path; 404.
    #[error("{0}")]
    NotFound(String),
    /// A size limit was exceeded; 413.
    #[error("{0}")]
    TooLarge(String),
    /// The `Content-Encoding` is not supported; 415.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// Over a quota or a request rate; 429 with `Retry-After` (and `X-Sentry-Rate-Limits` for
    /// quotas).
    #[error("{detail}")]
    TooManyRequests {
        /// What limit applied.
        detail: String,
        /// Seconds until the longest limit clears.
        retry_after_secs: u64,
        /// The `X-Sentry-Rate-Limits` value, for quotas.
        rate_limits: Option<String>,
    },
    /// The body did not arrive within `limits.body_timeout_secs`; 408.
    #[error("{0}")]
    BodyTimeout(String),
    /// The relay is at capacity; 503 with `Retry-After`.
    #[error("{detail}")]
    Overloaded {
        /// What is full.
        detail: String,
        /// Seconds the client should wait.
        retry_after_secs: u64,
    },
    /// Something failed inside the relay; 500.
    #[error("{0}")]
    Internal(String),
}

/// The header telling SDKs which categories are limited, and for how long.
pub const RATE_LIMITS_HEADER: &str = "X-Sentry-Rate-Limits";

impl ApiError {
    /// The `invalid` outcome reason for a refusal of the request's content, if it is one.
    pub fn invalid_reason(&self) -> Option<&'static str> {
        match self {
            ApiError::BadRequest(_) => Some("invalid_request"),
            ApiError::TooLarge(_) => Some("too_large"),
            ApiError::UnsupportedEncoding(_) => Some("invalid_encoding"),
            _ => None,
        }
    }
}

impl From<EnvelopeError> for ApiError {
    fn from(error: EnvelopeError) -> Self {
        ApiError::BadRequest(format!("invalid envelope: {error}"))
    }
}

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::TooLarge { .. } => ApiError::TooLarge(error.to_string()),
            DecodeError::Unsupported(_) => ApiError::UnsupportedEncoding(error.to_string()),
            DecodeError::Corrupt { .. } => ApiError::BadRequest(error.to_string()),
            DecodeError::OverBudget => BudgetError::Exhausted.into(),
        }
    }
}

impl From<BudgetError> for ApiError {
    fn from(error: BudgetError) -> Self {
        crate::metrics::count_rejection("inflight_bytes");
        match error {
            BudgetError::NeverFits { .. } => ApiError::TooLarge(error.to_string()),
            BudgetError::Exhausted => ApiError::Overloaded {
                detail: error.to_string(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::BadRequest(detail) => ApiError::BadRequest(detail),
            IntakeError::TooLarge(detail) => ApiError::TooLarge(detail),
            IntakeError::Envelope(error) => error.into(),
            IntakeError::Decode(error) => error.into(),
            IntakeError::Minidump(error) => error.into(),
        }
    }
}

impl From<MinidumpError> for ApiError {
    fn from(error: MinidumpError) -> Self {
        match error {
            MinidumpError::Decode(decode) => decode.into(),
            MinidumpError::BadSignature { .. } => ApiError::BadRequest(error.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Access(
                AccessError::MissingKey
                | AccessError::UnknownKey(_)
                | AccessError::RefusedUpstream {
                    unauthorized: true, ..
                },
            ) => StatusCode::UNAUTHORIZED,
            ApiError::Access(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // An overloaded relay answers thousands of 503s a second: each is counted in
        // `relay_rejections_total` (and readiness turns false when the spool is full), so a
        // log line per answer would only add work where there is none to spare.
        if status.is_server_error() && !matches!(self, ApiError::Overloaded { .. }) {
            tracing::warn!(%status, error = %self, "request failed");
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::Overloaded {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::TooManyRequests {
                retry_after_secs,
                rate_limits,
                ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
                if let Some(rate_limits) = rate_limits {
                    response.insert_header((RATE_LIMITS_HEADER, rate_limits.as_str()));
                }
            }
            _ => {}
        }
        response.json(json!({ "detail": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_answer_503_with_retry_after_or_413() {
        let overloaded: ApiError = BudgetError::Exhausted.into();
        assert!(matches!(
            overloaded,
            ApiError::Overloaded {
                retry_after_secs: 1,
                ..
            }
        ));
        let never: ApiError = BudgetError::NeverFits {
            wanted: 2,
            capacity: 1,
        }
        .into();
        assert!(matches!(never, ApiError::TooLarge(_)));
    }
}
