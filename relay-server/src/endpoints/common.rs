//! Steps shared by the intake endpoints: bounded body reading and decoding, authentication,
//! item checks, quotas, and appending the envelope to the spool.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;
use relay_core::config::Limits;
use relay_core::{Auth, AuthError, Dsn, Envelope, EventId, ItemType};
use relay_processing::decode::{decode_bounded, ContentEncoding};
use serde_json::{json, Value};

use super::error::ApiError;
use super::error::RATE_LIMITS_HEADER;
use super::quotas;
use crate::managed::Scoping;
use crate::projects::AccessError;
use crate::spool::entry::{self, EntryMeta};
use crate::state::ServiceState;

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

/// Compressed bodies up to this size are decoded on the HTTP worker itself.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

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
    // Small bodies (nearly all SDK requests) decode faster than a hop to the blocking pool.
    if body.len() <= INLINE_DECODE_BYTES {
        return Ok(decode_bounded(encoding, &body, limit)?.into());
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

/// Checks item sizes and the event item, and returns the event id answered to the client.
///
/// The event's own `event_id` wins, then the envelope header's; an event without either gets
/// a new one, which the spool entry records so a replay publishes the same id.
pub fn check_items(envelope: &Envelope, limits: &Limits) -> Result<Option<EventId>, ApiError> {
    let mut event_id = None;
    let mut seen_event = false;
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
            if seen_event {
                return Err(ApiError::BadRequest(format!(
                    "item {index}: an envelope may carry only one event"
                )));
            }
            seen_event = true;
            event_id = Some(check_event(&item.payload, item.ty(), index)?);
        } else if item.ty() == &ItemType::Attachment && size > limits.max_attachment_size {
            return Err(ApiError::TooLarge(format!(
                "attachment item {index} is {size} bytes; the limit is {}",
                limits.max_attachment_size
            )));
        }
    }
    Ok(event_id
        .flatten()
        .or(envelope.headers.event_id)
        .or_else(|| seen_event.then(EventId::new)))
}

/// Checks that an event payload is a JSON object; returns its own valid `event_id`, if any.
fn check_event(payload: &[u8], ty: &ItemType, index: usize) -> Result<Option<EventId>, ApiError> {
    /// Only the id is needed here; the rest is checked for syntax and skipped, not built.
    #[derive(serde::Deserialize)]
    struct EventHead {
        #[serde(default)]
        event_id: Option<Value>,
    }
    let head: EventHead = serde_json::from_slice(payload).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::BadRequest(format!("{ty} item {index} must be a JSON object"))
        }
        _ => ApiError::BadRequest(format!("{ty} item {index} is not valid JSON: {e}")),
    })?;
    match head.event_id {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => id
            .parse()
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("{ty} item {index}: {e}"))),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{ty} item {index}: invalid event id {other}: expected a string"
        ))),
    }
}

/// What the intake did with an accepted request.
pub struct Accepted {
    /// The event id answered to the client.
    pub event_id: Option<EventId>,
    /// `X-Sentry-Rate-Limits` when some items were limited.
    pub rate_limits: Option<String>,
}

impl Accepted {
    /// `200 {"id": ...}` (or `{}`), with `X-Sentry-Rate-Limits` when items were limited.
    pub fn json_response(&self) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        if let Some(rate_limits) = &self.rate_limits {
            response.insert_header((RATE_LIMITS_HEADER, rate_limits.as_str()));
        }
        match self.event_id {
            Some(id) => response.json(json!({ "id": id })),
            None => response.json(json!({})),
        }
    }
}

/// The client's IP address, for the per-IP limit.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|addr| addr.ip())
}

/// Authorizes the key and refuses a sender under a limit covering everything.
pub fn admit_sender(
    state: &ServiceState,
    req: &HttpRequest,
    project_id: u64,
    public_key: Option<String>,
) -> Result<Scoping, ApiError> {
    let public_key = authorize(state, project_id, public_key)?;
    let scoping = quotas::scoping(state, project_id, &public_key, client_ip(req));
    quotas::refuse_if_fully_limited(state, &scoping)?;
    Ok(scoping)
}

/// Checks the envelope, counts its client reports, applies quotas and spools what is left.
///
/// `original` is the envelope's wire form, spooled as is when no item was removed.
pub async fn accept(
    state: &ServiceState,
    scoping: &Scoping,
    mut envelope: Envelope,
    original: Option<Bytes>,
) -> Result<Accepted, ApiError> {
    let event_id = check_items(&envelope, &state.config.limits)?;
    quotas::track_client_reports(state, scoping, &envelope);
    let rate_limits = quotas::enforce_quotas(state, scoping, &mut envelope)?;
    let bytes = match original {
        Some(original) if rate_limits.is_none() => original,
        _ => envelope.to_vec().into(),
    };
    spool(state, &bytes, event_id, scoping).await?;
    Ok(Accepted {
        event_id,
        rate_limits,
    })
}

/// Appends the envelope to the spool; once this returns, the envelope will reach Kafka.
///
/// A full spool, a writer with too many appends waiting, or a disk that cannot be written
/// (full, failing, directory gone) answers 503 with `Retry-After`.
async fn spool(
    state: &ServiceState,
    envelope: &[u8],
    event_id: Option<EventId>,
    scoping: &Scoping,
) -> Result<(), ApiError> {
    let meta = EntryMeta {
        project_id: scoping.project_id,
        public_key: scoping.public_key.clone(),
        received: Utc::now(),
        event_id,
        client_ip: scoping.client_ip,
    };
    let record = entry::encode(&meta, envelope);
    state
        .spool
        .append(record)
        .await
        .map(|_| ())
        .map_err(|error| {
            crate::metrics::count_rejection("spool");
            ApiError::Overloaded {
                detail: error.to_string(),
                retry_after_secs: state.config.pipeline.retry_after_secs,
            }
        })
}
