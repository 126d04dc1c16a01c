//! The artifact directory: its files and bundle entries as [`Artifact`]s, and the index of
//! bundles by URL and of artifacts by debug id, rescanned only where files changed.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Deserialize;

use super::super::bundle::{ArtifactBundle, ArtifactKind};
use super::super::url::{self, UrlParts};
use super::super::SourceMapError;

/// A file in the artifact directory, a bundle entry, or the inline map of a minified file.
#[derive(Clone, Debug)]
pub(super) struct Artifact {
    pub(super) location: ArtifactLocation,
    /// Path + mtime + size (+ entry): changes whenever the content may have changed.
    pub(super) identity: String,
    /// The relative name shown in `data.sourcemap_origin`.
    pub(super) name: String,
    /// The bundle `url` of an entry.
    pub(super) url: Option<String>,
    /// A bundle entry's `sourcemap` header.
    pub(super) sourcemap_header: Option<String>,
    /// A bundle entry's `debug-id` header.
    pub(super) debug_id: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) enum ArtifactLocation {
    File(PathBuf),
    Bundle { zip: PathBuf, entry: String },
    Inline(Box<Artifact>),
}

impl Artifact {
    pub(super) fn file(dir: &Path, path: PathBuf, meta: &fs::Metadata) -> Self {
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        Self {
            identity: format!("file:{}:{}", path.display(), stamp(meta)),
            location: ArtifactLocation::File(path),
            name,
            url: None,
            sourcemap_header: None,
            debug_id: None,
        }
    }

    pub(super) fn inline(minified: &Artifact) -> Self {
        Self {
            identity: format!("inline:{}", minified.identity),
            name: format!("{} (inline)", minified.name),
            location: ArtifactLocation::Inline(Box::new(minified.clone())),
            url: None,
            sourcemap_header: None,
            debug_id: None,
        }
    }

    pub(super) fn display_name(&self) -> String {
        self.name.clone()
    }

    pub(super) fn file_name(&self) -> Option<String> {
        match &self.location {
            ArtifactLocation::File(path) => Some(path.file_name()?.to_string_lossy().into_owned()),
            ArtifactLocation::Bundle { .. } => {
                let url = url::strip_query(self.url.as_deref()?);
                Some(url.rsplit('/').next()?.to_owned())
            }
            ArtifactLocation::Inline(_) => None,
        }
    }

    pub(super) fn read(&self, limit: u64) -> Result<Vec<u8>, SourceMapError> {
        match &self.location {
            ArtifactLocation::File(path) => read_file(path, limit),
            ArtifactLocation::Bundle { zip, entry } => {
                ArtifactBundle::read_entry(zip, entry, limit)
            }
            ArtifactLocation::Inline(of) => of.read(limit),
        }
    }
}

pub(super) fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, SourceMapError> {
    let file = fs::File::open(path).map_err(|e| SourceMapError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| SourceMapError::io(path, e))?
        .len();
    if size > limit {
        return Err(SourceMapError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    file.take(limit)
        .read_to_end(&mut data)
        .map_err(|e| SourceMapError::io(path, e))?;
    Ok(data)
}

/// `mtime-nanos:size` of a file.
fn stamp(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{mtime}:{}", meta.len())
}

/// Bundles by URL and artifacts by debug id, from a scan of the artifact directory.
#[derive(Debug, Default)]
pub(super) struct ArtifactIndex {
    pub(super) by_url: HashMap<String, Artifact>,
    pub(super) minified_by_debug_id: HashMap<String, Artifact>,
    pub(super) map_by_debug_id: HashMap<String, Artifact>,
}

#[derive(Default)]
pub(super) struct IndexState {
    pub(super) index: Arc<ArtifactIndex>,
    pub(super) built: Option<Instant>,
    /// Per file: its stamp and what the scan found, so unchanged files are not re-read.
    scanned: HashMap<PathBuf, (String, Arc<Scanned>)>,
}

#[derive(Debug)]
enum Scanned {
    Minified { debug_id: Option<String> },
    Map { debug_id: Option<String> },
    Bundle(ArtifactBundle),
    Other,
}

/// Walk limits, so a mistaken directory (a home folder) cannot stall symbolication.
const MAX_SCAN_DEPTH: usize = 12;
const MAX_SCAN_FILES: usize = 100_000;

impl IndexState {
    /// Scans `dirs` in order; the first artifact for a URL or debug id wins.
    pub(super) fn rebuild(&mut self, dirs: &[&Path], limit: u64) {
        let mut files = Vec::new();
        for &dir in dirs {
            let mut found = Vec::new();
            walk(dir, 0, &mut found);
            files.extend(found.into_iter().map(|(path, meta)| (dir, path, meta)));
        }
        let mut index = ArtifactIndex::default();
        let mut scanned = HashMap::with_capacity(files.len());
        for (dir, path, meta) in files {
            let stamp = stamp(&meta);
            let result = match self.scanned.remove(&path) {
                Some((old_stamp, result)) if old_stamp == stamp => result,
                _ => Arc::new(scan(&path, limit)),
            };
            let artifact = Artifact::file(dir, path.clone(), &meta);
            match &*result {
                Scanned::Minified { debug_id: Some(id) } => {
                    index
                        .minified_by_debug_id
                        .entry(id.clone())
                        .or_insert(artifact);
                }
                Scanned::Map { debug_id: Some(id) } => {
                    index.map_by_debug_id.entry(id.clone()).or_insert(artifact);
                }
                Scanned::Bundle(bundle) => {
                    index_bundle(&mut index, dir, bundle, &artifact.identity)
                }
                _ => {}
            }
            scanned.insert(path, (stamp, result));
        }
        self.scanned = scanned;
        self.index = Arc::new(index);
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, fs::Metadata)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    // Sorted, so "first wins" between duplicates does not depend on the file system.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if out.len() >= MAX_SCAN_FILES {
            return;
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_SCAN_DEPTH && !entry.file_name().to_string_lossy().starts_with('.') {
                walk(&path, depth + 1, out);
            }
        } else if meta.is_file() {
            out.push((path, meta));
        }
    }
}

#[derive(Deserialize)]
struct MapDebugId {
    #[serde(default)]
    debug_id: Option<String>,
    #[serde(default, rename = "debugId")]
    debug_id_camel: Option<String>,
}

fn scan(path: &Path, limit: u64) -> Scanned {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    let Some(name) = name else {
        return Scanned::Other;
    };
    if name.ends_with(".zip") {
        return match ArtifactBundle::open(path) {
            Ok(bundle) => Scanned::Bundle(bundle),
            Err(_) => Scanned::Other,
        };
    }
    if name.ends_with(".map") {
        let debug_id = read_file(path, limit).ok().and_then(|data| {
            // Most maps have no debug id: skip the JSON parse unless the key occurs at all.
            let text = std::str::from_utf8(&data).ok()?;
            if !text.contains("\"debug_id\"") && !text.contains("\"debugId\"") {
                return None;
            }
            let ids: MapDebugId = serde_json::from_str(text).ok()?;
            ids.debug_id
                .or(ids.debug_id_camel)
                .as_deref()
                .and_then(url::normalize_debug_id)
        });
        return Scanned::Map { debug_id };
    }
    let minified = [".js", ".mjs", ".cjs", ".bundle", ".jsbundle"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if minified {
        let debug_id = read_file(path, limit)
            .ok()
            .and_then(|data| url::find_debug_id(&String::from_utf8_lossy(&data)));
        return Scanned::Minified { debug_id };
    }
    Scanned::Other
}

fn index_bundle(index: &mut ArtifactIndex, dir: &Path, bundle: &ArtifactBundle, identity: &str) {
    let relative = bundle
        .path
        .strip_prefix(dir)
        .unwrap_or(&bundle.path)
        .to_string_lossy();
    for entry in &bundle.entries {
        let artifact = Artifact {
            location: ArtifactLocation::Bundle {
                zip: bundle.path.clone(),
                entry: entry.name.clone(),
            },
            identity: format!("{identity}!{}", entry.name),
            name: format!("{relative}!{}", entry.name),
            url: entry.url.clone(),
            sourcemap_header: entry.sourcemap.clone(),
            debug_id: entry.debug_id.clone(),
        };
        if let Some(id) = &entry.debug_id {
            let by_id = match entry.kind {
                ArtifactKind::MinifiedSource => Some(&mut index.minified_by_debug_id),
                ArtifactKind::SourceMap => Some(&mut index.map_by_debug_id),
                _ => None,
            };
            if let Some(by_id) = by_id {
                by_id.entry(id.clone()).or_insert_with(|| artifact.clone());
            }
        }
        if let Some(key) = entry
            .url
            .as_deref()
            .and_then(UrlParts::parse)
            .map(|p| p.index_key())
        {
            index.by_url.entry(key).or_insert(artifact);
        }
    }
}
