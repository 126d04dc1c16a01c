//! What a project holds: `GET /api/0/projects/{org}/{project}/files/dsyms/` (its debug files,
//! as the Sentry API lists them) and `GET …/files/artifact-bundles/` (its bundles).

use std::path::Path;

use actix_web::{web, HttpRequest, HttpResponse};
use relay_processing::symbolicate::sources::identify;
use serde_json::{json, Value};

use super::assemble::dif_json;
use super::{authorized_project, blocking};
use crate::endpoints::error::ApiError;
use crate::uploads::{bundles_dir, debug_files_dir};

/// The project's uploaded debug files, one entry per object (a fat Mach-O has several).
pub async fn debug_files(
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uploads, project_id) = authorized_project(&req, path)?;
    let list = blocking(move || {
        let dir = debug_files_dir(uploads.storage().root(), project_id);
        let mut out = Vec::new();
        for (checksum, entry) in sorted_entries(&dir) {
            for (_, file) in sorted_entries(&entry) {
                out.extend(
                    identify(&file)
                        .iter()
                        .map(|o| dif_json(&checksum, &file, o)),
                );
            }
        }
        Ok(out)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The project's uploaded artifact bundles.
pub async fn artifact_bundles(
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uploads, project_id) = authorized_project(&req, path)?;
    let list = blocking(move || {
        let dir = bundles_dir(uploads.storage().root(), project_id);
        let bundles = sorted_entries(&dir)
            .into_iter()
            .filter(|(name, _)| name.ends_with(".json"))
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .filter_map(|data| serde_json::from_slice::<Value>(&data).ok())
            .map(|d| {
                json!({
                    "bundleId": d["checksum"],
                    "release": d["release"],
                    "dist": d["dist"],
                    "fileCount": d["fileCount"],
                    "date": d["date"],
                })
            })
            .collect::<Vec<_>>();
        Ok(bundles)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A directory's entries (name, path), sorted by name; none when it does not exist.
fn sorted_entries(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}
