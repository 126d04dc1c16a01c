//! The debug files and source maps the pipeline symbolicates with, per project, and where an
//! envelope's minidump is.
//!
//! [`ProjectSymbolStores`] is loaded once at start and shared: the SymbolFetcher adds
//! downloaded debug files to its native stores, the upload API ([`UploadTargets`]) adds
//! uploaded debug files and artifact bundles, the Symbolicator's threads read them.
//!
//! Every project of an organization (one that can receive uploads) has stores of its own:
//! its uploaded debug files are searched along with its symbol directories, its uploaded
//! bundles along with its (or the global) artifact directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_core::config::SymbolicationConfig;
use relay_core::{Config, Envelope, Item, ItemType};
use relay_processing::sourcemap::{JsLimits, SourceMapStore, StoreOptions};
use relay_processing::symbolicate::sources::identify;
use relay_processing::symbolicate::{LocalDirectory, SymbolSource, SymbolStore, WalkLimits};

use crate::uploads::{bundles_dir, debug_files_dir, uploads_root};

/// Size bound of the built source map caches on disk.
const SOURCEMAP_CACHE_BYTES: u64 = 1 << 30;

/// Debug files and source maps per project, shared by the SymbolFetcher and all symbolicator
/// threads.
pub struct ProjectSymbolStores {
    per_project: HashMap<u64, Arc<SymbolStore>>,
    shared: Arc<SymbolStore>,
    js_per_project: HashMap<u64, Arc<SourceMapStore>>,
    js_shared: Option<Arc<SourceMapStore>>,
    timeout: Duration,
    walk_limits: WalkLimits,
    js_limits: JsLimits,
    max_event_frames: usize,
    max_minidump_size: usize,
}

impl ProjectSymbolStores {
    /// Indexes the configured symbol directories (scanned once, at start).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let cache_dir = config
            .symbolication
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("symbol-cache"));
        let global = &config.symbolication.native_symbols;
        let store = |dirs: &[&PathBuf]| -> anyhow::Result<Arc<SymbolStore>> {
            let mut sources: Vec<Box<dyn SymbolSource>> = Vec::new();
            for dir in dirs {
                let source = LocalDirectory::scan(dir).map_err(|e| {
                    anyhow::anyhow!("cannot read symbol directory {}: {e}", dir.display())
                })?;
                sources.push(Box::new(source));
            }
            Ok(Arc::new(SymbolStore::new(sources, Some(cache_dir.clone()))))
        };
        let uploads = uploads_root(config);
        let sourcemaps = |dir: Option<&PathBuf>,
                          uploaded: Option<PathBuf>|
         -> anyhow::Result<Arc<SourceMapStore>> {
            let options = StoreOptions {
                max_artifact_bytes: config.symbolication.max_sourcemap_bytes,
                ..StoreOptions::default()
            };
            let cache = (cache_dir.join("sourcemaps"), SOURCEMAP_CACHE_BYTES);
            let mut store = SourceMapStore::with_options(dir.cloned(), Some(cache), options)
                .map_err(|e| anyhow::anyhow!("cannot open JavaScript artifacts {dir:?}: {e}"))?;
            if let Some(uploaded) = uploaded {
                store = store.with_uploads_dir(uploaded);
            }
            Ok(Arc::new(store))
        };
        let mut js_per_project = HashMap::new();
        for project in &config.projects {
            let dir = project
                .js_artifacts
                .as_ref()
                .or(config.symbolication.js_artifacts.as_ref());
            let uploaded = project
                .organization
                .map(|_| bundles_dir(&uploads, project.id));
            if project.js_artifacts.is_some() || uploaded.is_some() {
                js_per_project.insert(project.id, sourcemaps(dir, uploaded)?);
            }
        }
        let js_shared = config
            .symbolication
            .js_artifacts
            .as_ref()
            .map(|dir| sourcemaps(Some(dir), None))
            .transpose()?;
        let mut per_project = HashMap::new();
        for project in config.projects.iter().filter(|p| {
            !p.native_symbols.is_empty() || !p.http_sources.is_empty() || p.organization.is_some()
        }) {
            let dirs: Vec<&PathBuf> = project.native_symbols.iter().chain(global).collect();
            let store = store(&dirs)?;
            if project.organization.is_some() {
                load_uploaded_debug_files(&store, &debug_files_dir(&uploads, project.id));
            }
            per_project.insert(project.id, store);
        }
        Ok(ProjectSymbolStores {
            per_project,
            shared: store(&global.iter().collect::<Vec<_>>())?,
            js_per_project,
            js_shared,
            timeout: Duration::from_secs(config.symbolication.timeout_secs),
            walk_limits: walk_limits(&config.symbolication),
            js_limits: JsLimits {
                max_frames: config.symbolication.max_js_frames,
                max_sourcemaps: config.symbolication.max_js_sourcemaps,
                deadline: None,
            },
            max_event_frames: config.processing.normalize.max_frames,
            max_minidump_size: config.limits.max_attachment_size,
        })
    }

    /// The stores the upload API adds files to: those of the projects of an organization.
    pub fn upload_targets(&self) -> UploadTargets {
        UploadTargets {
            native: self.per_project.clone(),
            js: self
                .js_per_project
                .iter()
                .filter(|(_, store)| store.uploads_dir().is_some())
                .map(|(id, store)| (*id, store.clone()))
                .collect(),
        }
    }

    /// The native symbol store used for `project_id`'s crashes.
    pub fn native_store(&self, project_id: u64) -> &Arc<SymbolStore> {
        self.per_project.get(&project_id).unwrap_or(&self.shared)
    }

    /// Every native symbol store (per project and shared), e.g. to drop evicted downloads.
    pub fn native_stores(&self) -> impl Iterator<Item = &Arc<SymbolStore>> {
        self.per_project.values().chain([&self.shared])
    }

    /// The source maps used for `project_id`'s JavaScript events, if any are configured.
    pub fn sourcemaps_for_project(&self, project_id: u64) -> Option<&SourceMapStore> {
        self.js_per_project
            .get(&project_id)
            .or(self.js_shared.as_ref())
            .map(Arc::as_ref)
    }

    /// How long one event's native symbolication may take (`symbolication.timeout_secs`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The bounds of one minidump's walk that started at `started`: the deadline
    /// (`symbolication.timeout_secs`) and the `symbolication.max_*` walk limits.
    pub fn walk_limits(&self, started: Instant) -> WalkLimits {
        WalkLimits {
            deadline: Some(started + self.timeout),
            ..self.walk_limits.clone()
        }
    }

    /// The bounds of one event's JavaScript symbolication that started at `started`: the
    /// deadline (`symbolication.timeout_secs`) and `symbolication.max_js_*`.
    pub fn js_limits(&self, started: Instant) -> JsLimits {
        JsLimits {
            deadline: Some(started + self.timeout),
            ..self.js_limits
        }
    }

    /// Frames per stack trace written into an event (`processing.normalize.max_frames`; 0
    /// for no limit): symbolication runs after normalization, so it trims its own.
    pub fn max_event_frames(&self) -> usize {
        match self.max_event_frames {
            0 => usize::MAX,
            n => n,
        }
    }

    /// The largest minidump unpacked (`limits.max_attachment_size`).
    pub fn max_minidump_size(&self) -> usize {
        self.max_minidump_size
    }
}

/// Indexes the debug files uploaded before this start (`<dir>/<sha1>/<name>`).
fn load_uploaded_debug_files(store: &SymbolStore, dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for file in files.filter_map(Result::ok) {
            store.uploads().add_files(identify(&file.path()));
        }
    }
}

/// The projects' stores that uploaded files go to, so that the next event uses them.
#[derive(Clone, Default)]
pub struct UploadTargets {
    native: HashMap<u64, Arc<SymbolStore>>,
    js: HashMap<u64, Arc<SourceMapStore>>,
}

impl UploadTargets {
    /// Indexes the uploaded debug file at `path` in the project's store and drops what the
    /// store remembers about modules with its ids (a miss, or lesser symbols); returns the
    /// objects found.
    pub fn add_debug_file(&self, project_id: u64, path: &std::path::Path) -> usize {
        let Some(store) = self.native.get(&project_id) else {
            return 0;
        };
        let files = identify(path);
        let count = files.len();
        for file in &files {
            store.forget_ids(Some(file.debug_id), file.code_id.as_ref());
        }
        store.uploads().add_files(files.clone());
        // Forgotten again after adding: a lookup between the two may have loaded without it.
        for file in &files {
            store.forget_ids(Some(file.debug_id), file.code_id.as_ref());
        }
        count
    }

    /// Makes the project's next JavaScript lookup see newly stored bundles.
    pub fn bundles_changed(&self, project_id: u64) {
        if let Some(store) = self.js.get(&project_id) {
            store.refresh_index();
        }
    }
}

/// The walk limits of the `symbolication` section, without a deadline (set per event).
fn walk_limits(config: &SymbolicationConfig) -> WalkLimits {
    WalkLimits {
        deadline: None,
        max_threads: config.max_threads,
        max_frames_per_thread: config.max_frames_per_thread,
        max_stack_bytes: config.max_stack_bytes,
        max_walk_bytes: config.max_walk_bytes,
    }
}

/// The envelope's minidump attachment, if any.
pub fn minidump_item(envelope: &Envelope) -> Option<&Item> {
    envelope.items.iter().find(|item| {
        item.ty() == &ItemType::Attachment
            && item.headers.attachment_type.as_deref() == Some("event.minidump")
    })
}
