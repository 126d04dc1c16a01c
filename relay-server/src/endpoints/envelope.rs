//! `POST /api/{project_id}/envelope/`: Sentry envelopes, as every current SDK sends them.
//!
//! The envelope is checked, then spooled as received (decompressed); `200` means it is on disk.

use actix_web::{web, HttpRequest, HttpResponse};
use relay_core::Envelope;
use serde_json::json;

use super::common::{
    authorize, check_items, decode_body, envelope_dsn_key, read_body, request_auth, spool,
};
use super::ApiError;
use crate::service::ServiceState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/envelope/", web::post().to(handle));
}

async fn handle(
    state: web::Data<ServiceState>,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let project_id = project_id.into_inner();
    let limits = &state.config.limits;
    // Refuse bad credentials before reading the body, when the request carries them.
    let request_key = request_auth(&req)?.map(|auth| auth.public_key);
    if let Some(key) = &request_key {
        authorize(&state, project_id, Some(key.clone()))?;
    }
    let body = read_body(&req, payload, limits.max_request_size).await?;
    let body = decode_body(&req, body, limits.max_envelope_size).await?;
    let envelope = Envelope::parse(body.clone())?;
    let public_key = match request_key {
        Some(key) => key,
        None => authorize(&state, project_id, envelope_dsn_key(&envelope)?)?,
    };
    let event_id = check_items(&envelope, limits)?;
    spool(&state, &body, event_id, project_id, public_key).await?;
    Ok(match event_id {
        Some(id) => HttpResponse::Ok().json(json!({ "id": id })),
        None => HttpResponse::Ok().json(json!({})),
    })
}
