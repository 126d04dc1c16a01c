//! `GET /api/0/organizations/{org}/chunk-upload/`: how to upload (sentry-cli's first call);
//! `POST` to the same path: the chunks, as a multipart form (see
//! [`relay_processing::uploads::parse_chunk_form`]).

use actix_web::{web, HttpRequest, HttpResponse};
use relay_processing::intake::multipart::multipart_boundary;
use relay_processing::uploads::{
    parse_chunk_form, CHUNK_SIZE, MAX_CHUNKS_PER_REQUEST, MAX_REQUEST_BYTES,
};
use serde_json::json;

use super::{authorization, blocking, read_body, uploads};
use crate::endpoints::error::ApiError;

/// What is uploaded through the chunk API: debug files (native, PDBs, source bundles) and
/// artifact bundles. Others (ProGuard, IL2CPP, ...) are not offered, so sentry-cli does not
/// send them.
const ACCEPTED: [&str; 4] = ["debug_files", "pdbs", "sources", "artifact_bundles"];

/// The chunk upload options, as sentry-cli reads them.
pub async fn options(req: HttpRequest, org: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let uploads = uploads(&req)?;
    let org = uploads.authorize(&org, authorization(&req))?;
    let connection = req.connection_info();
    let url = format!(
        "{}://{}/api/0/organizations/{}/chunk-upload/",
        connection.scheme(),
        connection.host(),
        org.slug
    );
    Ok(HttpResponse::Ok().json(json!({
        "url": url,
        "chunkSize": CHUNK_SIZE,
        "chunksPerRequest": MAX_CHUNKS_PER_REQUEST,
        "maxFileSize": uploads.storage().max_file_bytes(),
        "maxRequestSize": MAX_REQUEST_BYTES,
        "concurrency": 2,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "accept": ACCEPTED,
    })))
}

/// Stores the chunks of one request, each checked against its SHA-1; a corrupt chunk refuses
/// the whole request (400) and stores nothing of it.
pub async fn upload(
    req: HttpRequest,
    org: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let uploads = uploads(&req)?;
    uploads.authorize(&org, authorization(&req))?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let boundary = multipart_boundary(content_type)?
        .ok_or_else(|| ApiError::BadRequest("chunks are sent as multipart/form-data".into()))?;
    let (body, mut charge) =
        read_body(&req, payload, MAX_REQUEST_BYTES, uploads.body_timeout()).await?;
    let stored = blocking(move || {
        // The decoded chunks are held in the budget too, until they are written.
        let mut reserve = |bytes| charge.as_mut().is_none_or(|c| c.try_grow(bytes).is_ok());
        let chunks = parse_chunk_form(body, boundary, &mut reserve)?;
        uploads.storage().save_chunks(&chunks)?;
        Ok(chunks.len())
    })
    .await?;
    tracing::debug!(chunks = stored, "chunks stored");
    Ok(HttpResponse::Ok().json(json!({})))
}
