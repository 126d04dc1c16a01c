//! Steps shared by the intake endpoints: bounded body reading and decoding, authentication,
//! item checks, and handing the envelope to the pipeline.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;
use relay_core::config::Limits;
use relay_core::{Auth, AuthError, Dsn, Envelope, EventId, ItemType};
use relay_processing::decode::{decode_bounded, ContentEncoding};
use serde_json::Value;

use super::ApiError;
use crate::actors::rate_limiter::CheckRateLimits;
use crate::managed::{ManagedEnvelope, RequestMeta, Verdict};
use crate::projects::AccessError;
use crate::service::{ServiceState, INTAKE_GATE};

/// Reads the request body, refusing more than `limit` bytes (as sent, before decoding).
///
/// Works for chunked bodies without `Content-Length`, as @sentry/node sends them.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::TooLarge(format!("request body exceeds the limit of {limit} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8192).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Undoes the `Content-Encoding`, producing at most `limit` bytes.
///
/// Decompression runs on the blocking pool so a large body does not stall an HTTP worker.
pub async fn decode_body(req: &HttpRequest, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let value = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"));
    let encoding = ContentEncoding::from_header(value)?;
    if encoding == ContentEncoding::Identity {
        if body.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "body exceeds the limit of {limit} bytes"
            )));
        }
        return Ok(body);
    }
    let decoded = web::block(move || decode_bounded(encoding, &body, limit))
        .await
        .map_err(|e| ApiError::Internal(format!("decompression task failed: {e}")))??;
    Ok(decoded.into())
}

/// Credentials from the `X-Sentry-Auth` or `Authorization` header or the query string.
pub fn request_auth(req: &HttpRequest) -> Result<Option<Auth>, ApiError> {
    for name in ["x-sentry-auth", "authorization"] {
        let Some(value) = req.headers().get(name) else {
            continue;
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::BadRequest(format!("{name} header is not valid text")))?;
        match Auth::from_header(value) {
            Ok(auth) => return Ok(Some(auth)),
            // `Authorization` may carry other schemes meant for a proxy; ignore those.
            Err(AuthError::WrongScheme) if name == "authorization" => continue,
            Err(error) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid {name} header: {error}"
                )))
            }
        }
    }
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    if query.iter().any(|(k, _)| k == "sentry_key") {
        let pairs = query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        return Auth::from_pairs(pairs)
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string auth: {e}")));
    }
    Ok(None)
}

/// The public key from an envelope's `dsn` header, when the request itself carried none.
pub fn envelope_dsn_key(envelope: &Envelope) -> Result<Option<String>, ApiError> {
    let Some(dsn) = &envelope.headers.dsn else {
        return Ok(None);
    };
    let dsn: Dsn = dsn.parse().map_err(|e: AuthError| {
        ApiError::BadRequest(format!("invalid envelope dsn header: {e}"))
    })?;
    Ok(Some(dsn.public_key))
}

/// Checks that `public_key` (if any) may send to `project_id`, and returns it.
pub fn authorize(
    state: &ServiceState,
    project_id: u64,
    public_key: Option<String>,
) -> Result<String, ApiError> {
    let public_key = public_key.ok_or(AccessError::MissingKey)?;
    state.projects.check(project_id, &public_key)?;
    Ok(public_key)
}

/// Checks item sizes and parses the event item, which the pipeline normalizes.
pub fn check_items(envelope: &Envelope, limits: &Limits) -> Result<Option<Value>, ApiError> {
    let mut event = None;
    for (index, item) in envelope.items.iter().enumerate() {
        let size = item.payload.len();
        if item.ty().is_event() {
            if size > limits.max_event_size {
                return Err(ApiError::TooLarge(format!(
                    "{} item {index} is {size} bytes; the limit is {}",
                    item.ty(),
                    limits.max_event_size
                )));
            }
            if event.is_some() {
                return Err(ApiError::BadRequest(format!(
                    "item {index}: an envelope may carry only one event"
                )));
            }
            let value: Value = serde_json::from_slice(&item.payload).map_err(|e| {
                ApiError::BadRequest(format!("{} item {index} is not valid JSON: {e}", item.ty()))
            })?;
            if !value.is_object() {
                return Err(ApiError::BadRequest(format!(
                    "{} item {index} must be a JSON object",
                    item.ty()
                )));
            }
            event = Some(value);
        } else if item.ty() == &ItemType::Attachment && size > limits.max_attachment_size {
            return Err(ApiError::TooLarge(format!(
                "attachment item {index} is {size} bytes; the limit is {}",
                limits.max_attachment_size
            )));
        }
    }
    Ok(event)
}

/// Hands the envelope to the pipeline and waits for its verdict.
///
/// Returns the event id once every message made from it is delivered to Kafka. A full gate
/// or mailbox anywhere on the way comes back as 503 with `Retry-After`.
pub async fn submit(
    state: &ServiceState,
    envelope: Envelope,
    event: Option<Value>,
    project_id: u64,
    public_key: String,
) -> Result<Option<EventId>, ApiError> {
    let pipeline = &state.config.pipeline;
    let Some(permit) = state.admit() else {
        crate::metrics::count_rejection("overloaded");
        return Err(ApiError::Overloaded {
            detail: format!("the {INTAKE_GATE} stage is at capacity; retry later"),
            retry_after_secs: pipeline.retry_after_secs,
        });
    };
    let meta = RequestMeta {
        project_id,
        public_key,
        received: Utc::now(),
    };
    let (managed, verdict) = ManagedEnvelope::new(envelope, meta, event, permit);
    state.pipeline.forward(CheckRateLimits(managed));

    let timeout = Duration::from_secs(pipeline.timeout_secs);
    match tokio::time::timeout(timeout, verdict).await {
        Ok(Ok(Verdict::Accepted { event_id })) => Ok(event_id),
        Ok(Ok(Verdict::Rejected(rejection))) => Err(ApiError::from_rejection(
            rejection,
            pipeline.retry_after_secs,
        )),
        Ok(Err(_)) => Err(ApiError::Internal(
            "the pipeline dropped the request".to_owned(),
        )),
        Err(_) => Err(ApiError::Overloaded {
            detail: format!(
                "not published within {}s; retry later",
                pipeline.timeout_secs
            ),
            retry_after_secs: pipeline.retry_after_secs,
        }),
    }
}
