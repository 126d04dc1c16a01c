//! `GET /metrics`: Prometheus text format.

use actix_web::{web, HttpResponse};

use crate::state::ServiceState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(handle));
}

async fn handle(state: web::Data<ServiceState>) -> HttpResponse {
    state.publish_gate_depths();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}
