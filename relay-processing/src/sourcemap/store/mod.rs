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
//! Artifact bundles uploaded through the upload API live in a second directory
//! ([`SourceMapStore::with_uploads_dir`]), indexed together with the first; after an upload
//! [`SourceMapStore::refresh_index`] makes the next lookup see it at once.
//!
//! Built caches are kept in a size-bounded [`DiskCache`] keyed by the identity (path, mtime,
//! size) of the map and minified file, and the most recent ones stay open in memory. Invalid
//! maps are remembered too (in memory), so a broken map is parsed once, not once per event.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use symbolic::common::ByteView;

use super::cache::DiskCache;
use super::url::{self, UrlParts};
use super::view::build_cache_bytes;
use super::{SourceMapError, SourceMapView};

mod artifacts;
mod memory;

use artifacts::{Artifact, ArtifactIndex, ArtifactLocation, IndexState};
use memory::MemoryCache;

/// Tuning of a [`SourceMapStore`]; `Default` gives the values documented per field.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long the index of bundles and debug ids is used before the artifact directory is
    /// scanned again (unchanged files are not re-read). Defaults to 10 seconds.
    pub index_refresh: Duration,
    /// Built caches (and failures) kept open in memory. Defaults to 64.
    pub memory_entries: usize,
    /// Largest artifact (minified file, map, bundle entry) read, in bytes: a file's size (a
    /// bundle entry's declared size, before it is decompressed) is checked before it is read,
    /// and reading stops at the bound whatever the size said. A larger artifact is not
    /// loaded: its frames get `too_large`. Defaults to 64 MiB.
    pub max_artifact_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            index_refresh: Duration::from_secs(10),
            memory_entries: 64,
            max_artifact_bytes: 64 << 20,
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
    uploads_dir: Option<PathBuf>,
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
            uploads_dir: None,
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

    /// The store, also searching the artifact bundles in `dir` (uploaded ones; created
    /// elsewhere, it need not exist yet). Its bundles are matched by debug id and URL like
    /// those of the artifact directory, which wins where both have a URL or debug id.
    pub fn with_uploads_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.uploads_dir = Some(dir.into());
        self
    }

    /// The directory of uploaded bundles, if any.
    pub fn uploads_dir(&self) -> Option<&Path> {
        self.uploads_dir.as_deref()
    }

    /// Makes the next lookup rescan the directories (unchanged files are not re-read): call
    /// it after a bundle was added, so the next event finds it.
    pub fn refresh_index(&self) {
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
        if self.artifacts_dir.is_none() && self.uploads_dir.is_none() {
            return Ok(None);
        }
        let dir = self.artifacts_dir.as_deref();
        let index = LazyIndex::new(self);

        if let Some(id) = debug_id.and_then(url::normalize_debug_id) {
            if let Some(found) = self.resolve_debug_id(&index, abs_path, &id, None)? {
                return Ok(Some(found));
            }
        }

        let Some(minified) = self.find_by_url(dir, &index, abs_path) else {
            // No minified file: a bare `<url>.map` still resolves (without scope names).
            let map_url = format!("{}.map", url::strip_query(abs_path));
            return match self.find_by_url(dir, &index, &map_url) {
                Some(map) => self.load_from_url(None, &map, map_url),
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
                return self.load_from_url(Some(&minified), &map, map_url);
            }
        }

        let map_url = format!("{}.map", url::strip_query(abs_path));
        let fallback = self.find_by_url(dir, &index, &map_url).or_else(|| {
            let name = minified.file_name()?;
            self.find_beside(dir, &index, &minified, &format!("{name}.map"))
        });
        match fallback {
            Some(map) => self.load_from_url(Some(&minified), &map, map_url),
            None => Ok(None),
        }
    }

    /// The text of the original source file served at `abs_path`, if the artifacts hold it
    /// (context lines for maps without `sourcesContent`). Files over 10 MiB are skipped.
    pub fn original_source(&self, abs_path: &str) -> Option<Arc<str>> {
        let index = LazyIndex::new(self);
        let artifact = self.find_by_url(self.artifacts_dir.as_deref(), &index, abs_path)?;
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
    fn find_by_url(
        &self,
        dir: Option<&Path>,
        index: &LazyIndex<'_>,
        url: &str,
    ) -> Option<Artifact> {
        if url.starts_with("data:") {
            return None;
        }
        let parts = UrlParts::parse(url)?;
        // Plain files only in the artifact directory; uploads are bundles.
        let plain = dir.map(|dir| (dir, parts.local_candidates()));
        for (dir, candidate) in plain
            .iter()
            .flat_map(|(dir, candidates)| candidates.iter().map(move |c| (*dir, c)))
        {
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
        dir: Option<&Path>,
        index: &LazyIndex<'_>,
        minified: &Artifact,
        reference: &str,
    ) -> Option<Artifact> {
        if url::has_scheme(reference) {
            return None;
        }
        match &minified.location {
            ArtifactLocation::File(path) => {
                let dir = dir?;
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
    /// A map found by its URL, which is also the base its sources resolve against.
    fn load_from_url(
        &self,
        minified: Option<&Artifact>,
        map: &Artifact,
        map_url: String,
    ) -> Result<Option<ResolvedMap>, SourceMapError> {
        self.load(minified, map, map_url.clone(), map_url, ResolvedWith::Url)
            .map(Some)
    }

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
    fn index(&self) -> Arc<ArtifactIndex> {
        let mut state = lock(&self.index);
        let fresh = state
            .built
            .is_some_and(|at| at.elapsed() < self.options.index_refresh);
        if !fresh {
            let dirs: Vec<&Path> = [&self.artifacts_dir, &self.uploads_dir]
                .into_iter()
                .filter_map(|dir| dir.as_deref())
                .collect();
            state.rebuild(&dirs, self.options.max_artifact_bytes);
            state.built = Some(Instant::now());
        }
        state.index.clone()
    }
}

/// The artifact index of one lookup, scanned (or refreshed) only when the lookup needs it:
/// for bundles and debug ids, not for plain files found by URL.
struct LazyIndex<'a> {
    store: &'a SourceMapStore,
    index: std::cell::OnceCell<Arc<ArtifactIndex>>,
}

impl<'a> LazyIndex<'a> {
    fn new(store: &'a SourceMapStore) -> Self {
        Self {
            store,
            index: std::cell::OnceCell::new(),
        }
    }

    fn get(&self) -> &ArtifactIndex {
        self.index.get_or_init(|| self.store.index())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SourceMapStore>();
        assert_send_sync::<ResolvedMap>();
    }
}
