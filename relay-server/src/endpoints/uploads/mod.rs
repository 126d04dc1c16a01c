//! The upload API that `sentry-cli debug-files upload` and `sentry-cli sourcemaps upload`
//! call, under `/api/0/` (`docs/uploads.md` has the calls in order):
//!
//! | route | module |
//! |---|---|
//! | `GET/POST /api/0/organizations/{org}/chunk-upload/` | [`chunks`] |
//! | `POST /api/0/projects/{org}/{project}/files/difs/assemble/` | [`assemble`] |
//! | `POST /api/0/organizations/{org}/artifactbundle/assemble/` | [`assemble`] |
//! | `GET /api/0/projects/{org}/{project}/files/dsyms/` | [`listing`] |
//! | `GET /api/0/projects/{org}/{project}/files/artifact-bundles/` | [`listing`] |
//!
//! Every route needs `Authorization: Bearer <upload token>` of the organization in the path
//! (401 without a valid token, 403 with another organization's). Disk work runs on actix's
//! blocking pool, never on the HTTP workers.

mod assemble;
mod chunks;
mod listing;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use relay_processing::uploads::UploadError;

use super::budget::{Charge, CHUNK_WAIT, RETRY_AFTER_SECS};
use super::error::ApiError;
use crate::state::ServiceState;
use crate::uploads::{AuthError, StorageError, Uploads};

/// Registers the upload routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/0/organizations/{org}/chunk-upload/",
        web::get().to(chunks::options),
    )
    .route(
        "/api/0/organizations/{org}/chunk-upload/",
        web::post().to(chunks::upload),
    )
    .route(
        "/api/0/projects/{org}/{project}/files/difs/assemble/",
        web::post().to(assemble::debug_files),
    )
    .route(
        "/api/0/organizations/{org}/artifactbundle/assemble/",
        web::post().to(assemble::artifact_bundle),
    )
    .route(
        "/api/0/projects/{org}/{project}/files/dsyms/",
        web::get().to(listing::debug_files),
    )
    .route(
        "/api/0/projects/{org}/{project}/files/artifact-bundles/",
        web::get().to(listing::artifact_bundles),
    );
}

/// The upload state, or a 404 when the relay runs without it (no organizations).
fn uploads(req: &HttpRequest) -> Result<Arc<Uploads>, ApiError> {
    req.app_data::<web::Data<Uploads>>()
        .map(|data| data.clone().into_inner())
        .ok_or_else(|| ApiError::NotFound("the upload API is not enabled".into()))
}

/// The upload API and the id of the project a `{org}/{project}` route names, once the
/// request's token may upload to it.
fn authorized_project(
    req: &HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<(Arc<Uploads>, u64), ApiError> {
    let uploads = uploads(req)?;
    let (org, project) = path.into_inner();
    let (_, project_id) = uploads.authorize_project(&org, &project, authorization(req))?;
    Ok((uploads, project_id))
}

/// The request's `Authorization` header, if it is text.
fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

/// The body, refused past `limit` bytes or when it takes longer than `timeout`. Its bytes
/// are held in the intake's in-flight budget (`limits.max_inflight_bytes`) as they arrive,
/// until the returned charge is dropped.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<(Bytes, Option<Charge>), ApiError> {
    let mut charge = req
        .app_data::<web::Data<ServiceState>>()
        .map(|state| state.budget.charge());
    let read = async {
        let mut body = BytesMut::new();
        while let Some(piece) = payload.next().await {
            let piece =
                piece.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
            if body.len() + piece.len() > limit {
                return Err(ApiError::TooLarge(format!(
                    "the body is larger than {limit} bytes"
                )));
            }
            if let Some(charge) = charge.as_mut() {
                charge.grow(piece.len(), CHUNK_WAIT).await?;
            }
            body.extend_from_slice(&piece);
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::BodyTimeout(format!("the body did not arrive within {timeout:?}"))
    })??;
    Ok((body, charge))
}

/// Runs disk work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work)
        .await
        .map_err(|e| ApiError::Internal(format!("upload work failed: {e}")))?
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let detail = error.to_string();
        match error {
            AuthError::Missing | AuthError::Invalid => ApiError::Unauthorized(detail),
            AuthError::OtherOrganization(_) => ApiError::Forbidden(detail),
            AuthError::UnknownOrganization(_) | AuthError::UnknownProject { .. } => {
                ApiError::NotFound(detail)
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge(detail) => ApiError::TooLarge(detail),
            UploadError::OverBudget => ApiError::Overloaded {
                detail: error.to_string(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::DiskFull { .. } => ApiError::InsufficientStorage(error.to_string()),
            StorageError::FileTooLarge { .. } => ApiError::TooLarge(error.to_string()),
            StorageError::ChecksumMismatch { .. } | StorageError::Invalid(_) => {
                ApiError::BadRequest(error.to_string())
            }
            StorageError::Io(_) => ApiError::Internal(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
