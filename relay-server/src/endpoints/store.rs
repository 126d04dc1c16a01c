//! `POST /api/{project_id}/store/`: the legacy endpoint taking one JSON event.

use actix_web::{web, HttpRequest, HttpResponse};
use relay_processing::intake::store::envelope_from_event;

use super::body::read_json_document;
use super::common::{accept, admit_sender, client_ip, request_key};
use super::error::ApiError;
use super::quotas::tracked;
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
    let scoping = admit_sender(&state, &req, project_id.into_inner(), request_key(&req)?)?;
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
    // Holds the body's bytes in the in-flight budget until the event is spooled.
    let mut charge = state.budget.charge();
    let body = read_json_document(limits, req, payload, &mut charge).await?;
    let envelope = envelope_from_event(body)?;
    Ok(accept(state, req, scoping, envelope, None, &mut charge)
        .await?
        .json_response())
}
