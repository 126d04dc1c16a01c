//! The debug files and source maps the pipeline symbolicates with, per project, and where an
//! envelope's minidump is.
//!
//! [`ProjectSymbolStores`] is loaded at start and shared through [`LiveSymbols`]: the
//! SymbolFetcher adds downloaded debug files to its native stores, the upload API
//! ([`UploadTargets`]) adds uploaded debug files and artifact bundles, the Symbolicator's
//! threads read them. A config reload that changes a project's symbol sources loads them all
//! again (with the files uploaded so far, read from disk) and puts them in place of the old
//! ones: what those remembered (misses included) is dropped with them.
//!
//! Every project of an organization (one that can receive uploads) has stores of its own:
//! its uploaded debug files are searched along with its symbol directories, its uploaded
//! bundles along with its (or the global) artifact directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use relay_core::config::{HttpSymbolSource, SymbolicationConfig};
use relay_core::{Config, Envelope, Item, ItemType};
use relay_processing::sourcemap::{JsLimits, SourceMapStore, StoreOptions};
use relay_processing::symbolicate::sources::identify;
use relay_processing::symbolicate::{LocalDirectory, SymbolSource, SymbolStore, WalkLimits};

use crate::uploads::layout::{bundles_dir, debug_files_dir, uploads_root};

/// Size bound of the built source map caches on disk.
const SOURCEMAP_CACHE_BYTES: u64 = 1 << 30;

/// The symbol stores in force, shared by the SymbolFetcher, the symbolicator threads and the
/// upload API; a reload replaces them. Each envelope takes the stores in force when its stage
/// starts on it.
#[derive(Clone)]
pub struct LiveSymbols(Arc<ArcSwap<ProjectSymbolStores>>);

impl LiveSymbols {
    /// `stores` in force until the first [`Self::replace`].
    pub fn new(stores: impl Into<Arc<ProjectSymbolStores>>) -> Self {
        LiveSymbols(Arc::new(ArcSwap::new(stores.into())))
    }

    /// The stores in force now.
    pub fn current(&self) -> Arc<ProjectSymbolStores> {
        self.0.load_full()
    }

    /// Puts `stores` in force for the envelopes taken up from now on.
    pub fn replace(&self, stores: ProjectSymbolStores) {
        self.0.store(Arc::new(stores));
    }

    /// The stores the upload API adds files to: those in force when a file arrives.
    pub fn upload_targets(&self) -> UploadTargets {
        UploadTargets {
            live: Some(self.clone()),
        }
    }
}

/// The HTTP symbol servers of the configuration: the global ones and each project's own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpSources {
    /// `symbolication.http_sources`.
    pub global: Vec<HttpSymbolSource>,
    /// `projects[].http_sources`, for the projects that have some.
    pub per_project: HashMap<u64, Vec<HttpSymbolSource>>,
}

impl HttpSources {
    /// The HTTP sources of `config`.
    pub fn of(config: &Config) -> Self {
        HttpSources {
            global: config.symbolication.http_sources.clone(),
            per_project: config
                .projects
                .iter()
                .filter(|p| !p.http_sources.is_empty())
                .map(|p| (p.id, p.http_sources.clone()))
                .collect(),
        }
    }
}

/// Debug files and source maps per project, shared by the SymbolFetcher and all symbolicator
/// threads.
pub struct ProjectSymbolStores {
    http_sources: HttpSources,
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
            http_sources: HttpSources::of(config),
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

    /// The HTTP symbol servers the SymbolFetcher asks for these stores' projects.
    pub fn http_sources(&self) -> &HttpSources {
        &self.http_sources
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

/// The projects' stores that uploaded files go to, so that the next event uses them: the
/// stores in force when the file arrives (those of the projects of an organization).
#[derive(Clone, Default)]
pub struct UploadTargets {
    live: Option<LiveSymbols>,
}

impl UploadTargets {
    /// Indexes the uploaded debug file at `path` in the project's store and drops what the
    /// store remembers about modules with its ids (a miss, or lesser symbols); returns the
    /// objects found.
    pub fn add_debug_file(&self, project_id: u64, path: &std::path::Path) -> usize {
        let Some(stores) = self.live.as_ref().map(LiveSymbols::current) else {
            return 0;
        };
        let Some(store) = stores.per_project.get(&project_id) else {
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
        let Some(stores) = self.live.as_ref().map(LiveSymbols::current) else {
            return;
        };
        if let Some(store) = stores.js_per_project.get(&project_id) {
            if store.uploads_dir().is_some() {
                store.refresh_index();
            }
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

#[cfg(test)]
mod tests {
    use relay_core::config::ProjectConfig;

    use super::*;
    use crate::test_support::fixtures;

    /// Copies the fixture `name` where the upload API keeps project 42's debug files.
    fn upload(config: &Config, dir: &str, name: &str) -> PathBuf {
        let stored = debug_files_dir(&uploads_root(config), 42).join(dir);
        std::fs::create_dir_all(&stored).unwrap();
        let target = stored.join(std::path::Path::new(name).file_name().unwrap());
        std::fs::copy(fixtures().join(name), &target).unwrap();
        target
    }

    #[test]
    fn uploads_reach_the_stores_in_force_and_outlive_a_reload() {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data_dir.path().to_owned(),
            projects: vec![ProjectConfig {
                organization: Some(1),
                ..ProjectConfig::new(42, Vec::new())
            }],
            ..Config::default()
        };
        let live = LiveSymbols::new(ProjectSymbolStores::load(&config).unwrap());
        let targets = live.upload_targets();
        let first = upload(&config, "a", "native/linux-x86_64/crash.debug");
        assert!(targets.add_debug_file(42, &first) > 0);
        let uploaded = |live: &LiveSymbols| live.current().native_store(42).uploads().len();
        let before_reload = uploaded(&live);
        assert!(before_reload > 0);

        config.projects[0].native_symbols = vec![fixtures().join("native/rust-minidump/symbols")];
        let old = live.current();
        live.replace(ProjectSymbolStores::load(&config).unwrap());
        assert!(!Arc::ptr_eq(&old, &live.current()), "new stores in force");
        assert_eq!(uploaded(&live), before_reload, "read again from disk");

        let second = upload(
            &config,
            "b",
            "native/rust-minidump/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym",
        );
        assert!(targets.add_debug_file(42, &second) > 0);
        assert!(
            uploaded(&live) > before_reload,
            "added to the stores in force"
        );
        assert_eq!(old.native_store(42).uploads().len(), before_reload);
    }
}
