//! Liveness and readiness, under our paths and Sentry's.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::ServiceState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz/live", web::get().to(live))
        .route("/healthz/ready", web::get().to(ready))
        .route("/api/relay/healthcheck/live/", web::get().to(live))
        .route("/api/relay/healthcheck/ready/", web::get().to(ready));
}

/// 200 while the process serves HTTP at all.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "is_healthy": true }))
}

/// 200 once the relay accepts events; 503 before that, while shutting down, and while spool
/// appends fail (disk full, I/O error).
async fn ready(state: web::Data<ServiceState>) -> HttpResponse {
    if state.is_ready() && state.spool.is_writable() {
        HttpResponse::Ok().json(json!({ "is_healthy": true }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({ "is_healthy": false }))
    }
}
