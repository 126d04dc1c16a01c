//! `POST /api/{project_id}/minidump/`: crash uploads from Breakpad, Crashpad and friends.
//!
//! Multipart with the dump in `upload_file_minidump`; a `sentry` field holds event JSON and
//! `sentry[a][b]=v` fields set single event values; other files become attachments and other
//! text fields go to the event's `extra`. A raw `application/octet-stream` body is the dump
//! itself. The dump may be wrapped in gzip, zstd, xz or bzip2. The answer is the event id as
//! text, which crash uploaders log as the report id.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use relay_core::EventId;
use relay_processing::intake::multipart::{
    build_envelope, multipart_boundary, parse_multipart, Upload,
};
use relay_processing::minidump::unwrap_minidump;

use super::body::{decode_body, read_body, BodyRules};
use super::budget::{Charge, CHUNK_WAIT};
use super::common::{accept, admit_sender, client_ip, request_key};
use super::error::ApiError;
use super::quotas::tracked;
use crate::managed::Scoping;
use crate::state::RequestState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/minidump/", web::post().to(handle));
}

async fn handle(
    state: RequestState,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let _permit = state.abuse.admit(client_ip(&state, &req))?;
    let project_id = project_id.into_inner();
    let scoping = match admit_sender(&state, &req, project_id, request_key(&req)?) {
        Ok(scoping) => scoping,
        // Crash handlers retry on 429 and would resend the dump; the outcome is recorded.
        Err(ApiError::TooManyRequests { .. }) => return Ok(event_id_response(EventId::new())),
        Err(error) => return Err(error),
    };
    tracked(
        &state,
        &scoping,
        receive(&state, &req, payload, &scoping).await,
    )
}

async fn receive(
    state: &RequestState,
    req: &HttpRequest,
    payload: web::Payload,
    scoping: &Scoping,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.config.limits;
    // A minidump can be larger than an ordinary request; it is bounded as an attachment.
    let request_limit = limits.max_request_size.max(limits.max_attachment_size);
    // Holds the body's bytes in the in-flight budget until the envelope is spooled.
    let mut charge = state.budget.charge();
    let rules = BodyRules::new(limits, request_limit);
    let body = read_body(req, payload, rules, &mut charge).await?;
    let body = decode_body(req, body, limits.max_envelope_size, &mut charge).await?;

    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut upload = match multipart_boundary(content_type)? {
        Some(boundary) => parse_charged(body, boundary, &mut charge).await?,
        None => Upload::raw_dump(body),
    };
    let mut minidump = upload.take_minidump()?;
    minidump.data = unwrap(minidump.data, limits.max_attachment_size).await?;

    let (envelope, event_id) = build_envelope(upload, minidump)?;
    match accept(state, req, scoping, envelope, None, &mut charge).await {
        // Limited dumps are answered as usual (see `handle`); the outcome is recorded.
        Ok(_) | Err(ApiError::TooManyRequests { .. }) => Ok(event_id_response(event_id)),
        Err(error) => Err(error),
    }
}

/// The answer crash uploaders expect: the event id as text.
fn event_id_response(event_id: EventId) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(event_id.hyphenated())
}

/// Splits the body into its fields (see [`parse_multipart`]), charging multer's copy of the
/// body while both exist; afterwards the fields, slices of that copy, take the body's place.
async fn parse_charged(
    body: Bytes,
    boundary: String,
    charge: &mut Charge,
) -> Result<Upload, ApiError> {
    let held_before = charge.held();
    charge.grow(body.len(), CHUNK_WAIT).await?;
    let upload = parse_multipart(body, boundary)?;
    charge.shrink_to(held_before);
    Ok(upload)
}

async fn unwrap(data: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let unwrapped = web::block({
        let data = data.clone();
        move || unwrap_minidump(&data, limit)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("minidump unwrapping failed: {e}")))??;
    Ok(unwrapped.map(Bytes::from).unwrap_or(data))
}
