//! Reading and decoding a request body within the in-flight budget and the body deadline.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use relay_processing::decode::{decode_bounded_metered, ContentEncoding};
use tokio::time::Instant;

use super::budget::{Charge, CHUNK_WAIT};
use super::error::ApiError;

/// Compressed bodies up to this size are decoded on the HTTP worker itself.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// How a body is read: its size limit (as sent) and the time it may take.
#[derive(Clone, Copy, Debug)]
pub struct BodyRules {
    /// Bytes as sent, before decoding.
    pub limit: usize,
    /// From the start of reading to the last byte.
    pub timeout: Duration,
}

impl BodyRules {
    /// `limit` bytes, within `limits.body_timeout_secs`.
    pub fn new(limits: &relay_core::config::Limits, limit: usize) -> Self {
        BodyRules {
            limit,
            timeout: Duration::from_secs(limits.body_timeout_secs),
        }
    }
}

/// Reads the request body within `rules`, holding its bytes in `charge`.
///
/// A declared `Content-Length` is reserved whole before any byte is read, so a request that
/// does not fit is refused (503) without reading it. A chunked body (as @sentry/node sends
/// them) reserves each chunk as it arrives, waiting at most [`CHUNK_WAIT`] for room.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    rules: BodyRules,
    charge: &mut Charge,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    read_stream(payload, declared, rules, charge).await
}

/// [`read_body`] over any stream of chunks, for tests.
pub(super) async fn read_stream<S, E>(
    mut payload: S,
    declared: Option<usize>,
    rules: BodyRules,
    charge: &mut Charge,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let limit = rules.limit;
    let too_large =
        || ApiError::TooLarge(format!("request body exceeds the limit of {limit} bytes"));
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let reserved_before = charge.held();
    if let Some(len) = declared {
        charge.try_grow(len)?;
    }
    let deadline = Instant::now() + rules.timeout;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => {
                chunk.map_err(|e| ApiError::BadRequest(format!("cannot read request body: {e}")))?
            }
            Ok(None) => break,
            Err(_) => return Err(body_timeout(rules.timeout)),
        };
        if total + chunk.len() > limit {
            return Err(too_large());
        }
        total += chunk.len();
        // Past the declared length only if the client lied; charge that too.
        let held_for_body = charge.held() - reserved_before;
        if total > held_for_body {
            charge.grow(total - held_for_body, CHUNK_WAIT).await?;
        }
        chunks.push(chunk);
    }
    join(chunks, total, reserved_before, charge).await
}

fn body_timeout(timeout: Duration) -> ApiError {
    crate::metrics::count_rejection("body_timeout");
    ApiError::BodyTimeout(format!(
        "the request body did not arrive within {} s",
        timeout.as_secs()
    ))
}

/// One buffer for the body; a body of one chunk is used as is.
///
/// The copy is charged while both exist, then only the joined body stays charged.
async fn join(
    mut chunks: Vec<Bytes>,
    total: usize,
    reserved_before: usize,
    charge: &mut Charge,
) -> Result<Bytes, ApiError> {
    if chunks.len() <= 1 {
        charge.shrink_to(reserved_before + total);
        return Ok(chunks.pop().unwrap_or_default());
    }
    charge.grow(total, CHUNK_WAIT).await?;
    let mut body = BytesMut::with_capacity(total);
    for chunk in chunks {
        body.extend_from_slice(&chunk);
    }
    charge.shrink_to(reserved_before + total);
    Ok(body.freeze())
}

/// The body of a request that carries one JSON document (a store event, security reports):
/// read within `max_request_size`, then decoded within `max_event_size`, its bytes held in
/// `charge`.
pub async fn read_json_document(
    limits: &relay_core::config::Limits,
    req: &HttpRequest,
    payload: web::Payload,
    charge: &mut Charge,
) -> Result<Bytes, ApiError> {
    let rules = BodyRules::new(limits, limits.max_request_size);
    let body = read_body(req, payload, rules, charge).await?;
    decode_body(req, body, limits.max_event_size, charge).await
}

/// Undoes the `Content-Encoding`, producing at most `limit` bytes; the output is charged as
/// it grows, and once decoded only the output stays charged.
///
/// Decompression runs on the blocking pool so a large body does not stall an HTTP worker.
pub async fn decode_body(
    req: &HttpRequest,
    body: Bytes,
    limit: usize,
    charge: &mut Charge,
) -> Result<Bytes, ApiError> {
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
    // What the request holds besides this body stays charged after it is decoded.
    let others = charge.held().saturating_sub(body.len());
    let decoded = if body.len() <= INLINE_DECODE_BYTES {
        // Small bodies (nearly all SDK requests) decode faster than a hop to the blocking pool.
        decode_charged(encoding, &body, limit, charge)
    } else {
        let mut moved = charge.take();
        let (decoded, moved) = web::block(move || {
            let decoded = decode_charged(encoding, &body, limit, &mut moved);
            (decoded, moved)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("decompression task failed: {e}")))?;
        *charge = moved;
        decoded
    }?;
    charge.shrink_to(others + decoded.len());
    Ok(decoded.into())
}

fn decode_charged(
    encoding: ContentEncoding,
    body: &[u8],
    limit: usize,
    charge: &mut Charge,
) -> Result<Vec<u8>, ApiError> {
    Ok(decode_bounded_metered(encoding, body, limit, &mut |n| {
        charge.try_grow(n).is_ok()
    })?)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::super::budget::InflightBudget;
    use super::*;

    const RULES: BodyRules = BodyRules {
        limit: 10_000,
        timeout: Duration::from_secs(30),
    };

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
        let chunks: Vec<_> = sizes.iter().map(|&n| Ok(Bytes::from(vec![7; n]))).collect();
        futures::stream::iter(chunks)
    }

    #[actix_web::test]
    async fn a_declared_length_that_does_not_fit_is_refused_before_reading() {
        let budget = InflightBudget::new(5_000);
        let mut other = budget.charge();
        other.try_grow(4_000).unwrap();
        let mut charge = budget.charge();
        // A stream that would fail if polled: nothing may be read.
        let unread = futures::stream::iter([Err::<Bytes, _>("polled")]);
        let refused = read_stream(unread, Some(2_000), RULES, &mut charge).await;
        assert!(matches!(refused, Err(ApiError::Overloaded { .. })));
        assert_eq!(charge.held(), 0);
        drop(other);
        let body = read_stream(chunks(&[1_500, 500]), Some(2_000), RULES, &mut charge)
            .await
            .unwrap();
        assert_eq!(body.len(), 2_000);
        assert_eq!(charge.held(), 2_000);
        drop(charge);
        assert_eq!(budget.available(), 5_000);
    }

    #[actix_web::test]
    async fn a_streaming_body_that_outgrows_the_budget_is_refused_and_gives_all_back() {
        let budget = InflightBudget::new(5_000);
        let mut other = budget.charge();
        other.try_grow(2_000).unwrap();
        let mut charge = budget.charge();
        let refused = read_stream(chunks(&[1_000; 5]), None, RULES, &mut charge).await;
        assert!(matches!(refused, Err(ApiError::Overloaded { .. })));
        drop(charge);
        assert_eq!(
            budget.available(),
            3_000,
            "only the other request holds bytes"
        );

        // With room, the chunks are joined and only the joined body stays charged.
        drop(other);
        let mut charge = budget.charge();
        let body = read_stream(chunks(&[1_000; 2]), None, RULES, &mut charge)
            .await
            .unwrap();
        assert_eq!((body.len(), charge.held()), (2_000, 2_000));
    }

    #[actix_web::test]
    async fn over_the_size_limit_and_bad_streams_give_all_back() {
        let budget = InflightBudget::new(50_000);
        let mut charge = budget.charge();
        let too_large = read_stream(chunks(&[6_000, 6_000]), None, RULES, &mut charge).await;
        assert!(matches!(too_large, Err(ApiError::TooLarge(_))));
        let declared_too_large = read_stream(chunks(&[1]), Some(20_000), RULES, &mut charge).await;
        assert!(matches!(declared_too_large, Err(ApiError::TooLarge(_))));
        let broken = futures::stream::iter([Ok(Bytes::from_static(b"abc")), Err("reset")]);
        let failed = read_stream(broken, Some(10), RULES, &mut charge).await;
        assert!(matches!(failed, Err(ApiError::BadRequest(_))));
        drop(charge);
        assert_eq!(budget.available(), 50_000);
    }

    #[actix_web::test]
    async fn a_body_slower_than_the_deadline_is_answered_408() {
        let budget = InflightBudget::new(50_000);
        let mut charge = budget.charge();
        let stalled = futures::stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"{"))])
            .chain(futures::stream::pending());
        let rules = BodyRules {
            timeout: Duration::from_millis(50),
            ..RULES
        };
        let timed_out = read_stream(stalled, Some(100), rules, &mut charge).await;
        assert!(matches!(timed_out, Err(ApiError::BodyTimeout(_))));
        drop(charge);
        assert_eq!(budget.available(), 50_000);
    }
}
