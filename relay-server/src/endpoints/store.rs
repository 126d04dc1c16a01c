//! `POST /api/{project_id}/store/`: the legacy endpoint taking one JSON event.

use actix_web::{web, HttpRequest, HttpResponse};
use relay_processing::intake::store::envelope_from_event;

use super::body::{decode_body, read_body, BodyRules};
use super::common::{accept, admit_sender, client_ip, request_auth};
use super::error::ApiError;
use super::quotas::track_invalid;
use crate::managed::Scoping;
use crate::state::RequestState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/store/", web::post().to(handle));
}

async fn handle(
    state: RequestState,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let _permit = state.abuse.admit(client_ip(&state, &req))?;
    let project_id = project_id.into_inner();
    let key = request_auth(&req)?.map(|a| a.public_key);
    let scoping = admit_sender(&state, &req, project_id, key)?;
    let result = receive(&state, &req, payload, &scoping).await;
    if let Err(error) = &result {
        track_invalid(&state, &scoping, error);
    }
    result
}

async fn receive(
    state: &RequestState,
    req: &HttpRequest,
    payload: web::Payload,
    scoping: &Scoping,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.config.limits;
    // Holds the body's bytes in the in-flight budget until the event is spooled.
    let mut charge = state.budget.charge();
    let rules = BodyRules::new(limits, limits.max_request_size);
    let body = read_body(req, payload, rules, &mut charge).await?;
    let body = decode_body(req, body, limits.max_event_size, &mut charge).await?;
    let envelope = envelope_from_event(body)?;
    Ok(accept(state, req, scoping, envelope, None, &mut charge)
        .await?
        .json_response())
}
