//! A project's JavaScript artifacts: finding the source map for a minified file.
//!
//! [`SourceMapStore`] looks in one artifact directory, the operator's drop folder for a
//! project. It holds plain files laid out by URL, and Sentry artifact bundles (`*.zip` with a
//! `manifest.json`) anywhere below it:
//!
//! ```text
//! <dir>/example.com/static/app.min.js      only for https://example.com/static/app.min.js
//! <dir>/~/static/app.min.js                for /static/app.min.js on any host
//! <dir>/static/app.min.js                  the same, without the `~` folder
//! <dir>/static/app.min.js.map
//! <dir>/release-1.2.zip                    artifact bundle (files matched by their `url`)
//! ```
//!
//! For a frame at `abs_path` the map is found, first match wins:
//!
//! 1. by the **debug id** the event gives for `abs_path` (`debug_meta.images` of type
//!    `sourcemap`): a map whose `debug_id`/`debugId` field (or bundle `debug-id` header) has
//!    that id, with the minified file carrying the same id (`//# debugId=`) if present;
//! 2. by **URL**: the minified file is found at `abs_path` (full URL key, then `~/path`), then
//!    its map by its own debug id, its bundle `sourcemap` header, its `sourceMappingURL`
//!    comment (relative to `abs_path`; `data:` URLs are inline maps), or `<abs_path>.map`;
//! 3. without a minified file, a map at `<abs_path>.map` (no scope names then).
//!
//! Built caches are kept in a size-bounded [`DiskCache`] keyed by the identity (path, mtime,
//! size) of the map and minified file, and the most recent ones stay open in memory. Invalid
//! maps are remembered too (in memory), so a broken map is parsed once, not once per event.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use symbolic::common::ByteView;

use super::bundle::{ArtifactBundle, ArtifactKind};
use super::cache::DiskCache;
use super::url::{self, UrlParts};
use super::view::build_cache_bytes;
use super::{SourceMapError, SourceMapView};

/// Tuning of a [`SourceMapStore`]; `Default` gives the values documented per field.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long the index of bundles and debug ids is used before the artifact directory is
    /// scanned again (unchanged files are not re-read). Defaults to 10 seconds.
    pub index_refresh: Duration,
    /// Built caches (and failures) kept open in memory. Defaults to 64.
    pub memory_entries: usize,
    /// Largest artifact (minified file, map, bundle entry) read, in bytes. Defaults to 256 MiB.
    pub max_artifact_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            index_refresh: Duration::from_secs(10),
            memory_entries: 64,
            max_artifact_bytes: 256 << 20,
        }
    }
}

/// How the map of a frame was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolvedWith {
    /// Through a debug id (from the event, or the minified file's `//# debugId=`).
    DebugId,
    /// Through the frame's URL and the minified file's reference (or `<url>.map`).
    Url,
}

impl ResolvedWith {
    /// `debug_id` or `url`, as written into `data.resolved_with`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DebugId => "debug_id",
            Self::Url => "url",
        }
    }
}

/// A source map found and built for a minified file.
#[derive(Clone, Debug)]
pub struct ResolvedMap {
    /// The built cache.
    pub view: Arc<SourceMapView>,
    /// The map's URL as the frame sees it (`<abs_path dir>/app.min.js.map`), or
    /// `debug-id://<id>/<artifact>` when only the debug id led to it.
    pub sourcemap_url: String,
    /// The URL the map's `sources` are relative to.
    pub sources_base: String,
    /// How the map was found.
    pub resolved_with: ResolvedWith,
    /// Where the map is, relative to the artifact directory (`static/app.js.map`,
    /// `bundle.zip!files/_/_/app.js.map`, or `static/app.js (inline)`).
    pub origin: String,
    /// Whether the minified source was available (scope names need it).
    pub with_minified_source: bool,
}

/// The artifacts of one project and the cache of built source maps. `Send + Sync`: share one
/// per project (in an `Arc`) between the symbolication threads.
pub struct SourceMapStore {
    artifacts_dir: Option<PathBuf>,
    disk: Option<DiskCache>,
    options: StoreOptions,
    index: Mutex<IndexState>,
    discoveries: Mutex<HashMap<String, Arc<Discovery>>>,
    memory: Mutex<MemoryCache>,
}

impl std::fmt::Debug for SourceMapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMapStore")
            .field("artifacts_dir", &self.artifacts_dir)
            .field("cache_dir", &self.disk.as_ref().map(DiskCache::dir))
            .finish()
    }
}

impl SourceMapStore {
    /// Opens the store for the artifact directory `artifacts_dir` (it need not exist yet),
    /// with built caches in `cache_dir` (created if missing; may be shared between projects),
    /// bounded to `cache_size_bytes` in total.
    pub fn open(
        artifacts_dir: impl Into<PathBuf>,
        cache_dir: impl Into<PathBuf>,
        cache_size_bytes: u64,
    ) -> Result<Self, SourceMapError> {
        Self::with_options(
            Some(artifacts_dir.into()),
            Some((cache_dir.into(), cache_size_bytes)),
            StoreOptions::default(),
        )
    }

    /// A store with explicit options. `artifacts_dir: None` finds nothing (every frame is
    /// `missing_sourcemap`); `cache: None` keeps built caches in memory only.
    pub fn with_options(
        artifacts_dir: Option<PathBuf>,
        cache: Option<(PathBuf, u64)>,
        options: StoreOptions,
    ) -> Result<Self, SourceMapError> {
        let disk = match cache {
            Some((dir, max_bytes)) => Some(
                DiskCache::open(&dir, "smcache", max_bytes)
                    .map_err(|e| SourceMapError::io(dir, e))?,
            ),
            None => None,
        };
        Ok(Self {
            artifacts_dir,
            disk,
            index: Mutex::new(IndexState::default()),
            discoveries: Mutex::new(HashMap::new()),
            memory: Mutex::new(MemoryCache::new(options.memory_entries)),
            options,
        })
    }

    /// The artifact directory.
    pub fn artifacts_dir(&self) -> Option<&Path> {
        self.artifacts_dir.as_deref()
    }

    /// Forces the next lookup to rescan the artifact directory (e.g. after an upload).
    pub fn invalidate_index(&self) {
        lock(&self.index).built = None;
    }

    /// Finds and builds the source map for a minified file served at `abs_path`, using
    /// `debug_id` (from the event's `debug_meta`) first when given.
    ///
    /// `Ok(None)`: no map found. `Err`: a map was found but cannot be read or parsed.
    pub fn resolve(
        &self,
        abs_path: &str,
        debug_id: Option<&str>,
    ) -> Result<Option<ResolvedMap>, SourceMapError> {
        let Some(dir) = self.artifacts_dir.as_deref() else {
            return Ok(None);
        };
        let index = LazyIndex::new(self, dir);

        if let Some(id) = debug_id.and_then(url::normalize_debug_id) {
            if let Some(found) = self.resolve_debug_id(&index, abs_path, &id, None)? {
                return Ok(Some(found));
            }
        }

        let Some(minified) = self.find_by_url(dir, &index, abs_path) else {
            // No minified file: a bare `<url>.map` still resolves (without scope names).
            let map_url = format!("{}.map", url::strip_query(abs_path));
            return match self.find_by_url(dir, &index, &map_url) {
                Some(map) => self
                    .load(None, &map, map_url.clone(), map_url, ResolvedWith::Url)
                    .map(Some),
                None => Ok(None),
            };
        };

        let discovery = self.discover(&minified)?;
        if let Some(id) = &discovery.debug_id {
            if let Some(found) = self.resolve_debug_id(&index, abs_path, id, Some(&minified))? {
                return Ok(Some(found));
            }
        }

        let reference = minified
            .sourcemap_header
            .clone()
            .or_else(|| discovery.sourcemap_url.clone());
        if let Some(reference) = reference {
            if reference.starts_with("data:") {
                let inline = Artifact::inline(&minified);
                let meta = reference.split(',').next().unwrap_or("data:");
                return self
                    .load(
                        Some(&minified),
                        &inline,
                        format!("{meta},"),
                        abs_path.to_owned(),
                        ResolvedWith::Url,
                    )
                    .map(Some);
            }
            let map_url = url::join(abs_path, &reference);
            let map = self
                .find_by_url(dir, &index, &map_url)
                .or_else(|| self.find_beside(dir, &index, &minified, &reference));
            if let Some(map) = map {
                return self
                    .load(
                        Some(&minified),
                        &map,
                        map_url.clone(),
                        map_url,
                        ResolvedWith::Url,
                    )
                    .map(Some);
            }
        }

        let map_url = format!("{}.map", url::strip_query(abs_path));
        let fallback = self.find_by_url(dir, &index, &map_url).or_else(|| {
            let name = minified.file_name()?;
            self.find_beside(dir, &index, &minified, &format!("{name}.map"))
        });
        match fallback {
            Some(map) => self
                .load(
                    Some(&minified),
                    &map,
                    map_url.clone(),
                    map_url,
                    ResolvedWith::Url,
                )
                .map(Some),
            None => Ok(None),
        }
    }

    /// The text of the original source file served at `abs_path`, if the artifacts hold it
    /// (context lines for maps without `sourcesContent`). Files over 10 MiB are skipped.
    pub fn original_source(&self, abs_path: &str) -> Option<Arc<str>> {
        let dir = self.artifacts_dir.as_deref()?;
        let index = LazyIndex::new(self, dir);
        let artifact = self.find_by_url(dir, &index, abs_path)?;
        let data = artifact.read(MAX_ORIGINAL_SOURCE_BYTES).ok()?;
        Some(String::from_utf8_lossy(&data).into())
    }

    fn resolve_debug_id(
        &self,
        index: &LazyIndex<'_>,
        abs_path: &str,
        id: &str,
        minified: Option<&Artifact>,
    ) -> Result<Option<ResolvedMap>, SourceMapError> {
        let index = index.get();
        let Some(map) = index.map_by_debug_id.get(id) else {
            return Ok(None);
        };
        let minified = minified
            .cloned()
            .or_else(|| index.minified_by_debug_id.get(id).cloned());
        let sourcemap_url = format!("debug-id://{id}/{}", map.display_name());
        self.load(
            minified.as_ref(),
            map,
            sourcemap_url,
            abs_path.to_owned(),
            ResolvedWith::DebugId,
        )
        .map(Some)
    }

    /// The artifact served at `url`: a plain file under one of the URL's local paths, else a
    /// bundle entry registered under the URL's full or `~/` key.
    fn find_by_url(&self, dir: &Path, index: &LazyIndex<'_>, url: &str) -> Option<Artifact> {
        if url.starts_with("data:") {
            return None;
        }
        let parts = UrlParts::parse(url)?;
        for candidate in parts.local_candidates() {
            let path = dir.join(candidate);
            if let Ok(meta) = fs::metadata(&path) {
                if meta.is_file() {
                    return Some(Artifact::file(dir, path, &meta));
                }
            }
        }
        parts
            .lookup_keys()
            .iter()
            .find_map(|key| index.get().by_url.get(key))
            .cloned()
    }

    /// `reference` relative to where `minified` itself lies (for files found by debug id, or
    /// laid out differently from their URLs).
    fn find_beside(
        &self,
        dir: &Path,
        index: &LazyIndex<'_>,
        minified: &Artifact,
        reference: &str,
    ) -> Option<Artifact> {
        if url::has_scheme(reference) {
            return None;
        }
        match &minified.location {
            ArtifactLocation::File(path) => {
                let relative = path.strip_prefix(dir).ok()?.to_str()?.replace('\\', "/");
                let joined = url::join(&relative, reference);
                let parts = UrlParts::parse(&joined)?;
                let candidate = dir.join(parts.segments.iter().collect::<PathBuf>());
                let meta = fs::metadata(&candidate).ok().filter(|m| m.is_file())?;
                Some(Artifact::file(dir, candidate, &meta))
            }
            ArtifactLocation::Bundle { .. } => {
                let base = minified.url.as_deref()?;
                let joined = url::join(base, reference);
                let key = UrlParts::parse(&joined)?.index_key();
                index.get().by_url.get(&key).cloned()
            }
            ArtifactLocation::Inline(_) => None,
        }
    }

    /// `sourceMappingURL` and `debugId` of a minified artifact, memoised by its identity.
    fn discover(&self, minified: &Artifact) -> Result<Arc<Discovery>, SourceMapError> {
        if let Some(found) = lock(&self.discoveries).get(&minified.identity) {
            return Ok(found.clone());
        }
        let data = minified.read(self.options.max_artifact_bytes)?;
        let text = String::from_utf8_lossy(&data);
        let discovery = Arc::new(Discovery {
            sourcemap_url: url::find_source_mapping_url(&text).map(str::to_owned),
            debug_id: minified
                .debug_id
                .clone()
                .or_else(|| url::find_debug_id(&text)),
        });
        let mut discoveries = lock(&self.discoveries);
        if discoveries.len() >= 4096 {
            discoveries.clear();
        }
        discoveries.insert(minified.identity.clone(), discovery.clone());
        Ok(discovery)
    }

    /// The built cache for `map` (+ `minified`): memory, then disk, then built and stored.
    fn load(
        &self,
        minified: Option<&Artifact>,
        map: &Artifact,
        sourcemap_url: String,
        sources_base: String,
        resolved_with: ResolvedWith,
    ) -> Result<ResolvedMap, SourceMapError> {
        let key = format!(
            "smcache/v3/relay-index-2|{}|{}",
            map.identity,
            minified.map_or("-", |m| m.identity.as_str())
        );
        let view = self.load_view(&key, minified, map)?;
        let sources_base = if url::has_scheme(&sourcemap_url)
            && !sourcemap_url.starts_with("data:")
            && !sourcemap_url.starts_with("debug-id:")
        {
            sourcemap_url.clone()
        } else {
            sources_base
        };
        Ok(ResolvedMap {
            view,
            sourcemap_url,
            sources_base,
            resolved_with,
            origin: map.display_name(),
            with_minified_source: minified.is_some(),
        })
    }

    fn load_view(
        &self,
        key: &str,
        minified: Option<&Artifact>,
        map: &Artifact,
    ) -> Result<Arc<SourceMapView>, SourceMapError> {
        if let Some(cached) = lock(&self.memory).get(key) {
            return cached.map_err(SourceMapError::InvalidSourceMap);
        }
        if let Some(entry) = self.disk.as_ref().and_then(|disk| disk.get(key)) {
            if let Ok(view) = SourceMapView::from_bytes(entry.bytes, entry.offset) {
                let view = Arc::new(view);
                lock(&self.memory).insert(key.to_owned(), Ok(view.clone()));
                return Ok(view);
            }
        }
        let built = self.build(minified, map);
        let view = match built {
            Ok(bytes) => bytes,
            Err(error) => {
                // Remember parse failures (not I/O errors, which may be transient).
                let reason = match &error {
                    SourceMapError::InvalidSourceMap(reason) => Some(reason.clone()),
                    SourceMapError::NotUtf8 { .. } | SourceMapError::InvalidDataUrl(_) => {
                        Some(error.to_string())
                    }
                    _ => None,
                };
                if let Some(reason) = reason {
                    lock(&self.memory).insert(key.to_owned(), Err(reason));
                }
                return Err(error);
            }
        };
        let stored = self
            .disk
            .as_ref()
            .and_then(|disk| disk.put(key, &view).ok());
        let view = match stored {
            Some(entry) => SourceMapView::from_bytes(entry.bytes, entry.offset)?,
            None => SourceMapView::from_bytes(ByteView::from_vec(view), 0)?,
        };
        let view = Arc::new(view);
        lock(&self.memory).insert(key.to_owned(), Ok(view.clone()));
        Ok(view)
    }

    fn build(
        &self,
        minified: Option<&Artifact>,
        map: &Artifact,
    ) -> Result<Vec<u8>, SourceMapError> {
        let limit = self.options.max_artifact_bytes;
        let map_bytes = match &map.location {
            ArtifactLocation::Inline(of) => {
                let data = of.read(limit)?;
                let text = String::from_utf8_lossy(&data);
                let reference = url::find_source_mapping_url(&text)
                    .ok_or_else(|| SourceMapError::InvalidDataUrl("no sourceMappingURL".into()))?;
                url::decode_data_url(reference)?
            }
            _ => map.read(limit)?,
        };
        let map_text = std::str::from_utf8(&map_bytes)
            .map_err(|_| SourceMapError::NotUtf8 { what: "source map" })?;
        let minified_text = match minified {
            Some(minified) => Some(String::from_utf8_lossy(&minified.read(limit)?).into_owned()),
            None => None,
        };
        build_cache_bytes(minified_text.as_deref(), map_text)
    }

    /// The index of bundles and debug ids, rescanned when older than `index_refresh`.
    fn index(&self, dir: &Path) -> Arc<ArtifactIndex> {
        let mut state = lock(&self.index);
        let fresh = state
            .built
            .is_some_and(|at| at.elapsed() < self.options.index_refresh);
        if !fresh {
            state.rebuild(dir, self.options.max_artifact_bytes);
            state.built = Some(Instant::now());
        }
        state.index.clone()
    }
}

/// The artifact index of one lookup, scanned (or refreshed) only when the lookup needs it:
/// for bundles and debug ids, not for plain files found by URL.
struct LazyIndex<'a> {
    store: &'a SourceMapStore,
    dir: &'a Path,
    index: std::cell::OnceCell<Arc<ArtifactIndex>>,
}

impl<'a> LazyIndex<'a> {
    fn new(store: &'a SourceMapStore, dir: &'a Path) -> Self {
        Self {
            store,
            dir,
            index: std::cell::OnceCell::new(),
        }
    }

    fn get(&self) -> &ArtifactIndex {
        self.index.get_or_init(|| self.store.index(self.dir))
    }
}

/// The largest original source read for context lines.
const MAX_ORIGINAL_SOURCE_BYTES: u64 = 10 << 20;

/// Locks, ignoring poisoning (the guarded maps stay consistent on panic).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a minified file says about its map.
#[derive(Debug)]
struct Discovery {
    sourcemap_url: Option<String>,
    debug_id: Option<String>,
}

/// A file in the artifact directory, a bundle entry, or the inline map of a minified file.
#[derive(Clone, Debug)]
struct Artifact {
    location: ArtifactLocation,
    /// Path + mtime + size (+ entry): changes whenever the content may have changed.
    identity: String,
    /// The relative name shown in `data.sourcemap_origin`.
    name: String,
    /// The bundle `url` of an entry.
    url: Option<String>,
    /// A bundle entry's `sourcemap` header.
    sourcemap_header: Option<String>,
    /// A bundle entry's `debug-id` header.
    debug_id: Option<String>,
}

#[derive(Clone, Debug)]
enum ArtifactLocation {
    File(PathBuf),
    Bundle { zip: PathBuf, entry: String },
    Inline(Box<Artifact>),
}

impl Artifact {
    fn file(dir: &Path, path: PathBuf, meta: &fs::Metadata) -> Self {
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

    fn inline(minified: &Artifact) -> Self {
        Self {
            identity: format!("inline:{}", minified.identity),
            name: format!("{} (inline)", minified.name),
            location: ArtifactLocation::Inline(Box::new(minified.clone())),
            url: None,
            sourcemap_header: None,
            debug_id: None,
        }
    }

    fn display_name(&self) -> String {
        self.name.clone()
    }

    fn file_name(&self) -> Option<String> {
        match &self.location {
            ArtifactLocation::File(path) => Some(path.file_name()?.to_string_lossy().into_owned()),
            ArtifactLocation::Bundle { .. } => {
                let url = url::strip_query(self.url.as_deref()?);
                Some(url.rsplit('/').next()?.to_owned())
            }
            ArtifactLocation::Inline(_) => None,
        }
    }

    fn read(&self, limit: u64) -> Result<Vec<u8>, SourceMapError> {
        match &self.location {
            ArtifactLocation::File(path) => read_file(path, limit),
            ArtifactLocation::Bundle { zip, entry } => {
                ArtifactBundle::read_entry(zip, entry, limit)
            }
            ArtifactLocation::Inline(of) => of.read(limit),
        }
    }
}

fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, SourceMapError> {
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
struct ArtifactIndex {
    by_url: HashMap<String, Artifact>,
    minified_by_debug_id: HashMap<String, Artifact>,
    map_by_debug_id: HashMap<String, Artifact>,
}

#[derive(Default)]
struct IndexState {
    index: Arc<ArtifactIndex>,
    built: Option<Instant>,
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
    fn rebuild(&mut self, dir: &Path, limit: u64) {
        let mut files = Vec::new();
        walk(dir, 0, &mut files);
        let mut index = ArtifactIndex::default();
        let mut scanned = HashMap::with_capacity(files.len());
        for (path, meta) in files {
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

/// A small LRU of built caches and of parse failures.
struct MemoryCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (u64, Result<Arc<SourceMapView>, String>)>,
}

impl MemoryCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<Result<Arc<SourceMapView>, String>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(used, value)| {
            *used = tick;
            value.clone()
        })
    }

    fn insert(&mut self, key: String, value: Result<Arc<SourceMapView>, String>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(key, (self.tick, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SourceMapStore>();
        assert_send_sync::<ResolvedMap>();
    }

    #[test]
    fn memory_cache_drops_least_recently_used() {
        let mut cache = MemoryCache::new(2);
        cache.insert("a".into(), Err("a".into()));
        cache.insert("b".into(), Err("b".into()));
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), Err("c".into()));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some());
        assert!(cache.get("c").is_some());
    }
}
