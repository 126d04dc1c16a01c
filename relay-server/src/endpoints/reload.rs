//! `POST /api/relay/reload/` on the admin listener (`admin.listen`, off by default): reloads
//! the configuration file ([`crate::reload`]).
//!
//! Answers `200 {"reloaded": true, "not_applied": [...]}` (changed sections that need a
//! restart), or `400 {"detail": ...}` naming what is wrong with the file, which is then not
//! applied.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use crate::reload::Reloader;

/// Registers the admin routes.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/relay/reload/", web::post().to(reload));
}

async fn reload(reloader: web::Data<Arc<Reloader>>) -> Result<HttpResponse, ApiError> {
    match reloader.reload("admin request").await {
        Ok(not_applied) => Ok(HttpResponse::Ok().json(json!({
            "reloaded": true,
            "not_applied": not_applied,
        }))),
        Err(error) => Err(ApiError::BadRequest(error.to_string())),
    }
}
