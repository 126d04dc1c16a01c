//! `POST /api/{project_id}/store/`: the legacy endpoint taking one JSON event.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, Item, ItemHeaders, ItemType};
use serde_json::{json, Value};

use super::common::{authorize, check_items, decode_body, read_body, request_auth, spool};
use super::ApiError;
use crate::service::ServiceState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/store/", web::post().to(handle));
}

async fn handle(
    state: web::Data<ServiceState>,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let project_id = project_id.into_inner();
    let limits = &state.config.limits;
    let public_key = authorize(
        &state,
        project_id,
        request_auth(&req)?.map(|a| a.public_key),
    )?;
    let body = read_body(&req, payload, limits.max_request_size).await?;
    let body = decode_body(&req, body, limits.max_event_size).await?;
    let envelope = envelope_from_event(body)?;
    let event_id = check_items(&envelope, limits)?;
    spool(&state, &envelope.to_vec(), event_id, project_id, public_key).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": event_id })))
}

/// Wraps a store request's JSON event in a one-item envelope.
fn envelope_from_event(body: Bytes) -> Result<Envelope, ApiError> {
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("event is not valid JSON: {e}")))?;
    let Some(object) = event.as_object() else {
        return Err(ApiError::BadRequest(
            "event must be a JSON object".to_owned(),
        ));
    };
    let ty = match object.get("type").and_then(Value::as_str) {
        Some("transaction") => ItemType::Transaction,
        _ => ItemType::Event,
    };
    Ok(Envelope {
        headers: EnvelopeHeaders::default(),
        items: vec![Item::new(ItemHeaders::new(ty), body)],
    })
}
