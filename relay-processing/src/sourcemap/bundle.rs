//! Sentry artifact bundles: zip files with a `manifest.json` describing each file.
//!
//! The manifest (as `sentry-cli sourcemaps upload` writes it):
//!
//! ```json
//! {"debug_id": "…", "files": {
//!   "files/_/_/app.min.js": {"url": "~/app.min.js", "type": "minified_source",
//!                            "headers": {"debug-id": "…", "sourcemap": "app.min.js.map"}},
//!   "files/_/_/app.min.js.map": {"url": "~/app.min.js.map", "type": "source_map",
//!                                "headers": {"debug-id": "…"}}}}
//! ```
//!
//! Header names are matched case-insensitively; `sourcemap` and `x-sourcemap` both name the
//! map of a minified file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::url::normalize_debug_id;
use super::SourceMapError;

/// What a bundle entry holds, from its manifest `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// `minified_source`: the code the browser ran.
    MinifiedSource,
    /// `source_map`.
    SourceMap,
    /// `source`: an original source file.
    Source,
    /// `indexed_ram_bundle` (React Native RAM bundles; not resolved).
    IndexedRamBundle,
    /// Anything else.
    Other,
}

impl ArtifactKind {
    fn from_manifest(ty: Option<&str>) -> Self {
        match ty {
            Some("minified_source") => Self::MinifiedSource,
            Some("source_map") => Self::SourceMap,
            Some("source") => Self::Source,
            Some("indexed_ram_bundle") => Self::IndexedRamBundle,
            _ => Self::Other,
        }
    }
}

/// One file of an artifact bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    /// The path of the file inside the zip.
    pub name: String,
    /// The URL the file was served at (`~/app.min.js`, `https://…`).
    pub url: Option<String>,
    /// What the file holds.
    pub kind: ArtifactKind,
    /// Its `debug-id` header, normalised.
    pub debug_id: Option<String>,
    /// Its `sourcemap` (or `x-sourcemap`) header: the map of a minified file, relative to `url`.
    pub sourcemap: Option<String>,
}

/// The manifest of an artifact bundle on disk; file contents are read on demand.
#[derive(Clone, Debug)]
pub struct ArtifactBundle {
    /// The zip file.
    pub path: PathBuf,
    /// The bundle-level debug id, if any.
    pub debug_id: Option<String>,
    /// The files listed in the manifest.
    pub entries: Vec<BundleEntry>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    files: BTreeMap<String, ManifestFile>,
    #[serde(default)]
    debug_id: Option<String>,
}

#[derive(Deserialize)]
struct ManifestFile {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The largest `manifest.json` read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

impl ArtifactBundle {
    /// Opens the zip at `path` and reads its `manifest.json`.
    pub fn open(path: &Path) -> Result<Self, SourceMapError> {
        let invalid = |reason: String| SourceMapError::InvalidBundle {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| SourceMapError::io(path, e))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid(e.to_string()))?;
        let mut manifest = archive
            .by_name("manifest.json")
            .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        if manifest.size() > MAX_MANIFEST_BYTES {
            return Err(invalid("manifest.json is too large".into()));
        }
        let mut text = Vec::new();
        manifest
            .by_ref()
            .take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let entries = manifest
            .files
            .into_iter()
            .map(|(name, file)| {
                let header = |wanted: &str| {
                    file.headers
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(wanted))
                        .map(|(_, value)| value.clone())
                };
                BundleEntry {
                    kind: ArtifactKind::from_manifest(file.ty.as_deref()),
                    debug_id: header("debug-id").as_deref().and_then(normalize_debug_id),
                    sourcemap: header("sourcemap").or_else(|| header("x-sourcemap")),
                    url: file.url,
                    name,
                }
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            debug_id: manifest.debug_id.as_deref().and_then(normalize_debug_id),
            entries,
        })
    }

    /// Reads the file `name` out of the bundle at `path`, refusing files over `limit` bytes.
    pub fn read_entry(path: &Path, name: &str, limit: u64) -> Result<Vec<u8>, SourceMapError> {
        let invalid = |reason: String| SourceMapError::InvalidBundle {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| SourceMapError::io(path, e))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid(e.to_string()))?;
        let mut entry = archive
            .by_name(name)
            .map_err(|e| invalid(format!("{name}: {e}")))?;
        if entry.size() > limit {
            return Err(SourceMapError::TooLarge {
                path: path.join(name),
                size: entry.size(),
                limit,
            });
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry
            .by_ref()
            .take(limit)
            .read_to_end(&mut data)
            .map_err(|e| invalid(format!("{name}: {e}")))?;
        Ok(data)
    }
}
