//! `POST /api/{project_id}/envelope/`: Sentry envelopes, as every current SDK sends them.
//!
//! The envelope is checked, then spooled as received (decompressed); `200` means it is on disk.

use actix_web::{web, HttpRequest, HttpResponse};
use relay_core::Envelope;

use super::body::{decode_body, read_body, BodyRules};
use super::common::{accept, admit_sender, client_ip, envelope_dsn_key, request_auth};
use super::error::ApiError;
use super::quotas::track_invalid;
use crate::managed::Scoping;
use crate::state::RequestState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/envelope/", web::post().to(handle));
}

async fn handle(
    state: RequestState,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let _permit = state.abuse.admit(client_ip(&state, &req))?;
    let project_id = project_id.into_inner();
    // Refuse bad credentials (and senders under a full limit) before reading the body, when
    // the request carries them; otherwise the envelope's `dsn` header decides.
    let scoping = match request_auth(&req)? {
        Some(auth) => Some(admit_sender(
            &state,
            &req,
            project_id,
            Some(auth.public_key),
        )?),
        None => None,
    };
    let result = receive(&state, &req, payload, project_id, scoping.clone()).await;
    if let (Err(error), Some(scoping)) = (&result, &scoping) {
        track_invalid(&state, scoping, error);
    }
    result
}

async fn receive(
    state: &RequestState,
    req: &HttpRequest,
    payload: web::Payload,
    project_id: u64,
    scoping: Option<Scoping>,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.config.limits;
    // Holds the body's bytes in the in-flight budget until the envelope is spooled.
    let mut charge = state.budget.charge();
    let rules = BodyRules::new(limits, limits.max_request_size);
    let body = read_body(req, payload, rules, &mut charge).await?;
    let body = decode_body(req, body, limits.max_envelope_size, &mut charge).await?;
    let envelope = Envelope::parse(body.clone())?;
    let scoping = match scoping {
        Some(scoping) => scoping,
        None => admit_sender(state, req, project_id, envelope_dsn_key(&envelope)?)?,
    };
    Ok(
        accept(state, req, &scoping, envelope, Some(body), &mut charge)
            .await?
            .json_response(),
    )
}
