//! `POST /api/{project_id}/security/`: Content Security Policy reports, as browsers send them
//! to a policy's `report-uri` or `report-to` endpoint.
//!
//! A browser cannot add headers to a report, so the key comes in the query string
//! (`?sentry_key=...`). Each CSP report becomes a `security` item (data category `security`)
//! and goes the way of every other item: quotas, outcomes, the spool, the events topic.

use actix_web::{web, HttpRequest, HttpResponse};
use relay_core::{DataCategory, Outcome};
use relay_processing::intake::security::{envelope_from_reports, SkipReason};

use super::body::read_json_document;
use super::common::{accept, admit_sender, client_ip, request_key};
use super::error::ApiError;
use super::quotas::tracked;
use crate::managed::Scoping;
use crate::state::RequestState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/security/", web::post().to(handle));
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
    // Holds the body's bytes in the in-flight budget until the reports are spooled.
    let mut charge = state.budget.charge();
    let body = read_json_document(limits, req, payload, &mut charge).await?;
    let reports = envelope_from_reports(body)?;
    track_skipped(state, scoping, &reports.skipped);
    Ok(
        accept(state, req, scoping, reports.envelope, None, &mut charge)
            .await?
            .json_response(),
    )
}

/// The reports of a batch that were left out are counted as `invalid` security items, one
/// outcome per reason (a batch may hold thousands of small reports).
fn track_skipped(state: &RequestState, scoping: &Scoping, skipped: &[SkipReason]) {
    for reason in [
        SkipReason::NotCsp,
        SkipReason::Malformed,
        SkipReason::TooMany,
    ] {
        let count = skipped.iter().filter(|s| **s == reason).count() as u64;
        if count > 0 {
            state.outcomes.track_item(
                (scoping.project_id, Some(&scoping.public_key)),
                &[(DataCategory::Security, count)],
                Outcome::Invalid,
                Some(reason.as_str()),
            );
        }
    }
}
