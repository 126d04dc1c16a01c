//! The assemble calls: sentry-cli names a file by its SHA-1 and its chunks; the answer says
//! which chunks are still missing, or that the file is stored (`ok`), or why it was refused
//! (`error` with a `detail`, which sentry-cli prints). A file stored before answers `ok`
//! without its chunks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use relay_processing::symbolicate::sources::{identify, DebugFile};
use relay_processing::uploads::{
    check_upload, parse_bundle_assemble, parse_dif_assemble, BundleAssembleRequest,
    DifAssembleRequest, UploadKind,
};
use serde_json::{json, Map, Value};

use super::{authorization, authorized_project, blocking, read_body, uploads};
use crate::endpoints::error::ApiError;
use crate::uploads::{bundles_dir, debug_files_dir, Assembled, StorageError, Uploads};

/// The largest assemble request body (a few KB in practice).
const MAX_ASSEMBLE_BODY: usize = 4 * 1024 * 1024;

/// `POST /api/0/projects/{org}/{project}/files/difs/assemble/`.
pub async fn debug_files(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (uploads, project_id) = authorized_project(&req, path)?;
    let (body, _charge) =
        read_body(&req, payload, MAX_ASSEMBLE_BODY, uploads.body_timeout()).await?;
    let answer = blocking(move || {
        let files = parse_dif_assemble(&body, uploads.storage().max_chunks_per_file())?;
        let mut answer = Map::new();
        for file in files {
            let state = assemble_debug_file(&uploads, project_id, &file);
            answer.insert(file.checksum, state);
        }
        Ok(Value::Object(answer))
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

fn assemble_debug_file(uploads: &Uploads, project_id: u64, file: &DifAssembleRequest) -> Value {
    let dir = debug_files_dir(uploads.storage().root(), project_id).join(&file.checksum);
    // Stored before under another name: the same content.
    let dest = stored_file_in(&dir).unwrap_or_else(|| dir.join(&file.name));
    let result = uploads.storage().assemble(
        &file.checksum,
        &file.chunks,
        std::slice::from_ref(&dest),
        |tmp| check_upload(tmp, UploadKind::DebugFile).map(drop),
    );
    match result {
        Ok(Assembled::Missing(missing)) => state("not_found", missing, None),
        Ok(Assembled::Stored) => {
            let objects = uploads.targets().add_debug_file(project_id, &dest);
            tracing::info!(project_id, file = %file.name, objects, "debug file uploaded");
            stored_dif(&file.checksum, &dest)
        }
        Ok(Assembled::Existed) => stored_dif(&file.checksum, &dest),
        Err(error) => refused(&file.name, error),
    }
}

/// The one file of a stored debug file's directory, if any.
fn stored_file_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.is_file())
}

fn stored_dif(checksum: &str, path: &Path) -> Value {
    let mut answer = state("ok", Vec::new(), None);
    if let Some(object) = identify(path).first() {
        answer["dif"] = dif_json(checksum, path, object);
    }
    answer
}

/// A stored debug file as the Sentry API describes one (the assemble answer and the
/// listing share it).
pub(super) fn dif_json(checksum: &str, path: &Path, object: &DebugFile) -> Value {
    let features = [
        (object.features.has_debug_info, "debug"),
        (object.features.has_symbols, "symtab"),
        (object.features.has_unwind_info, "unwind"),
    ]
    .into_iter()
    .filter_map(|(has, name)| has.then_some(name))
    .collect::<Vec<_>>();
    json!({
        "id": checksum,
        "sha1": checksum,
        "uuid": object.debug_id.to_string(),
        "debugId": object.debug_id.to_string(),
        "codeId": object.code_id.as_ref().map(|id| id.to_string()),
        "cpuName": object.arch.name(),
        "objectName": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "symbolType": object.format.to_string(),
        "size": object.size,
        "data": {"type": object.kind.to_string(), "features": features},
    })
}

/// `POST /api/0/organizations/{org}/artifactbundle/assemble/`.
pub async fn artifact_bundle(
    req: HttpRequest,
    org: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let uploads = uploads(&req)?;
    let org = uploads.authorize(&org, authorization(&req))?;
    let (body, _charge) =
        read_body(&req, payload, MAX_ASSEMBLE_BODY, uploads.body_timeout()).await?;
    let bundle = parse_bundle_assemble(&body, uploads.storage().max_chunks_per_file())?;
    if bundle.projects.is_empty() {
        return Err(ApiError::BadRequest(
            "the bundle names no project (SENTRY_PROJECT)".into(),
        ));
    }
    let projects = bundle
        .projects
        .iter()
        .map(|name| {
            org.project(name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "project {name:?} not found in organization {:?}",
                    org.slug
                ))
            })
        })
        .collect::<Result<Vec<u64>, ApiError>>()?;
    let answer = blocking(move || Ok(assemble_bundle(&uploads, &projects, &bundle))).await?;
    Ok(HttpResponse::Ok().json(answer))
}

fn assemble_bundle(
    uploads: &Arc<Uploads>,
    projects: &[u64],
    bundle: &BundleAssembleRequest,
) -> Value {
    let root = uploads.storage().root();
    let dests: Vec<PathBuf> = projects
        .iter()
        .map(|id| bundles_dir(root, *id).join(format!("{}.zip", bundle.checksum)))
        .collect();
    let result = uploads
        .storage()
        .assemble(&bundle.checksum, &bundle.chunks, &dests, |tmp| {
            check_upload(tmp, UploadKind::ArtifactBundle).map(drop)
        });
    match result {
        Ok(Assembled::Missing(missing)) => state("not_found", missing, None),
        Ok(Assembled::Stored) => {
            for (id, dest) in projects.iter().zip(&dests) {
                describe_bundle(uploads, dest, bundle);
                uploads.targets().bundles_changed(*id);
                tracing::info!(project_id = id, release = ?bundle.version, "artifact bundle uploaded");
            }
            state("ok", Vec::new(), None)
        }
        Ok(Assembled::Existed) => state("ok", Vec::new(), None),
        Err(error) => refused("the artifact bundle", error),
    }
}

/// Writes `<sha1>.json` beside a stored bundle: what the listing shows.
fn describe_bundle(uploads: &Uploads, zip: &Path, bundle: &BundleAssembleRequest) {
    let file_count = relay_processing::sourcemap::bundle::ArtifactBundle::open(zip)
        .map(|b| b.entries.len())
        .unwrap_or(0);
    let description = json!({
        "checksum": bundle.checksum,
        "release": bundle.version,
        "dist": bundle.dist,
        "fileCount": file_count,
        "date": chrono::Utc::now().to_rfc3339(),
    });
    let path = zip.with_extension("json");
    if let Err(error) = uploads
        .storage()
        .write_file(&path, description.to_string().as_bytes())
    {
        tracing::warn!(%error, path = %path.display(), "cannot describe an uploaded bundle");
    }
}

fn refused(what: &str, error: StorageError) -> Value {
    tracing::info!(%error, "upload refused: {what}");
    state("error", Vec::new(), Some(format!("{what}: {error}")))
}

fn state(state: &str, missing: Vec<String>, detail: Option<String>) -> Value {
    json!({"state": state, "missingChunks": missing, "detail": detail})
}
