//! The SymbolFetcher: downloads the debug files a minidump needs from HTTP symbol servers,
//! before the event reaches the Symbolicator's CPU threads.
//!
//! For an envelope with an `event.minidump` attachment it lists the dump's modules
//! ([`referenced_modules`]) and, for each module the project's [`SymbolStore`] cannot serve
//! from local files, tries the project's HTTP sources in order (project sources first, then
//! the global ones), each in its layout ([`ModuleRef::server_files`]): Breakpad `.sym`,
//! symstore PDB/PE (plain or as a `_` cabinet), debuginfod `debuginfo`/`executable`.
//! Fetched files land in the download cache and in the store's [`DownloadedFiles`] source,
//! then the envelope goes on. It always goes on: a slow, failing or missing source only means
//! fewer symbols (frames say `missing_symbol`).
//!
//! - One for all pipeline lanes (so a file is downloaded once), on the first lane's arbiter,
//!   async; the downloads never touch the Symbolicator's threads.
//!   Blocking file work (parsing the module list, unpacking, identifying files, eviction) goes
//!   to tokio's blocking pool.
//! - Timeouts: each source's `timeout_secs` bounds the wait for the connection, the response
//!   headers and every body chunk; `symbolication.fetch_deadline_secs` bounds one event's
//!   wait. Downloads still running at the deadline finish in the background for later events.
//! - Each file is downloaded once at a time (concurrent events share the download), at most
//!   [`MAX_CONCURRENT_DOWNLOADS`] files at once.
//! - Negative caching: a 404/410 is remembered for `negative_cache_secs` in memory and as a
//!   `<file>.missing` marker on disk (so a restart does not ask again); other failures
//!   (timeouts, 5xx, connection errors) for at most [`FAILURE_TTL`], in memory.
//! - Download cache: `<cache_dir>/downloads/<source>/<server path>`, where `<source>` is the
//!   server's host and a hash of its URL and layout. Together with the SymCache and CFI caches
//!   it is kept under `symbolication.max_cache_bytes` by [`evict_to_size`]: at start, every
//!   [`EVICT_INTERVAL`], and early when downloads added a tenth of the bound.
//! - At most `capacity` events are fetching at once; beyond, an event that needs downloads is
//!   refused as overload (the spool retries it); events that need none pass straight on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use futures::future::{FutureExt, Shared};
use futures::stream::StreamExt;
use relay_core::config::{HttpSymbolSource, SymbolServerLayout};
use relay_core::Config;
use relay_processing::minidump::unwrap_minidump;
use relay_processing::symbolicate::cache::Fnv64;
use relay_processing::symbolicate::{
    evict_to_size, identify, is_cab, referenced_modules, unpack_cab, DebugFile, DownloadedFiles,
    FileRole, ModuleRef, ServerFile, SymbolStore,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::symbolicator::SymbolicatorGate;
use super::{envelope_message, MailboxDepth};
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;
use crate::symbols::{minidump_item, ProjectSymbolStores};

envelope_message!(
    /// Fetches the debug files the envelope's minidump needs, then forwards the envelope.
    FetchSymbols
);

/// Files downloaded at once, over all sources and events.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 16;

/// Modules of one event looked up at once.
const MODULES_AT_ONCE: usize = 8;

/// How long a failed download (timeout, 5xx, connection error) is not retried, at most.
pub const FAILURE_TTL: Duration = Duration::from_secs(300);

/// How often the cache size bound is checked.
pub const EVICT_INTERVAL: Duration = Duration::from_secs(60);

/// The longest a single file may download, however steadily it trickles in.
const MAX_DOWNLOAD_TIME: Duration = Duration::from_secs(600);

/// Misses remembered in memory; beyond, expired ones are dropped, then all.
const MAX_NEGATIVE_ENTRIES: usize = 100_000;

/// Where the fetcher sends envelopes on (the Symbolicator's gate).
type Next = Box<dyn Fn(ManagedEnvelope) + Send>;

/// Downloads debug files for minidumps; see the module docs.
pub struct SymbolFetcher {
    depth: MailboxDepth,
    next: Next,
    symbols: Arc<ProjectSymbolStores>,
    sources: ProjectSources,
    downloader: Rc<Downloader>,
    deadline: Duration,
    max_minidump_size: usize,
    capacity: usize,
    in_flight: usize,
    evicting: Rc<Cell<bool>>,
}

impl SymbolFetcher {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "symbol_fetcher";

    /// A fetcher forwarding to the Symbolicator's gate.
    pub fn new(config: &Config, symbols: Arc<ProjectSymbolStores>, next: SymbolicatorGate) -> Self {
        Self::forwarding_to(config, symbols, move |envelope| next.forward(envelope))
    }

    /// A fetcher handing each envelope to `next` when done with it.
    pub fn forwarding_to(
        config: &Config,
        symbols: Arc<ProjectSymbolStores>,
        next: impl Fn(ManagedEnvelope) + Send + 'static,
    ) -> Self {
        let symbolication = &config.symbolication;
        let cache_dir = symbolication
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("symbol-cache"));
        SymbolFetcher {
            depth: MailboxDepth::new(Self::MAILBOX),
            next: Box::new(next),
            symbols,
            sources: ProjectSources::new(config),
            downloader: Rc::new(Downloader::new(
                cache_dir,
                symbolication.max_cache_bytes,
                Duration::from_secs(symbolication.negative_cache_secs),
            )),
            deadline: Duration::from_secs(symbolication.fetch_deadline_secs),
            max_minidump_size: config.limits.max_attachment_size,
            capacity: config.pipeline.mailbox_capacity,
            in_flight: 0,
            evicting: Rc::new(Cell::new(false)),
        }
    }

    /// Deletes the oldest cache files when the cache is over its bound, off this thread, and
    /// drops evicted downloads from the stores.
    fn evict(&mut self, ctx: &mut Context<Self>) {
        if self.evicting.replace(true) {
            return;
        }
        let downloader = self.downloader.clone();
        let roots = downloader.cache_roots();
        let max = downloader.max_cache_bytes;
        downloader.bytes_since_evict.set(0);
        let work = tokio::task::spawn_blocking(move || evict_to_size(&roots, max, max / 10 * 9));
        let evicting = self.evicting.clone();
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            evicting.set(false);
            let eviction = match result {
                Ok(Ok(eviction)) => eviction,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot check the symbol cache size");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "symbol cache eviction failed");
                    return;
                }
            };
            metrics::set_symbol_cache_bytes(eviction.bytes_after);
            if eviction.removed.is_empty() {
                return;
            }
            tracing::info!(
                files = eviction.removed.len(),
                bytes_before = eviction.bytes_before,
                bytes_after = eviction.bytes_after,
                "symbol cache over its bound: oldest files deleted"
            );
            act.downloader.forget_paths(&eviction.removed);
            for store in act.symbols.native_stores() {
                for path in &eviction.removed {
                    store.downloads().remove(path);
                }
            }
        }));
    }
}

impl Actor for SymbolFetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.evict(ctx);
        ctx.run_interval(EVICT_INTERVAL, |act, ctx| act.evict(ctx));
    }
}

impl Handler<FetchSymbols> for SymbolFetcher {
    type Result = ();

    fn handle(&mut self, FetchSymbols(envelope): FetchSymbols, ctx: &mut Self::Context) {
        self.depth.received();
        let sources = self.sources.for_project(envelope.meta.project_id);
        let minidump = minidump_payload(&envelope);
        let (Some(minidump), false) = (minidump, sources.is_empty()) else {
            return (self.next)(envelope);
        };
        if self.in_flight >= self.capacity {
            metrics::count_rejection("overloaded");
            return envelope.reject(Rejection::Overloaded {
                stage: Self::MAILBOX,
            });
        }
        self.in_flight += 1;
        let job = FetchJob {
            store: self.symbols.native_store(envelope.meta.project_id).clone(),
            sources,
            downloader: self.downloader.clone(),
            max_minidump_size: self.max_minidump_size,
        };
        let deadline = self.deadline;
        let work = async move {
            let started = Instant::now();
            if tokio::time::timeout(deadline, job.run(minidump))
                .await
                .is_err()
            {
                tracing::info!(
                    ?deadline,
                    "symbol downloads past the event's deadline; the event goes on"
                );
            }
            tracing::debug!(elapsed = ?started.elapsed(), "symbols fetched");
            envelope
        };
        ctx.spawn(work.into_actor(self).map(|envelope, act, ctx| {
            act.in_flight -= 1;
            (act.next)(envelope);
            if act.downloader.bytes_since_evict.get() > act.downloader.max_cache_bytes / 10 {
                act.evict(ctx);
            }
        }));
    }
}

/// The minidump attachment's payload, if the envelope is routed through native symbolication
/// (it has an event and a minidump), the only envelopes this stage works on.
fn minidump_payload(envelope: &ManagedEnvelope) -> Option<Bytes> {
    if !envelope.route.native {
        return None;
    }
    minidump_item(&envelope.envelope).map(|item| item.payload.clone())
}

/// One configured HTTP source.
#[derive(Debug)]
struct Source {
    url: String,
    layout: SymbolServerLayout,
    timeout: Duration,
    /// Directory name below `downloads/`: host and a hash of URL and layout.
    dir: String,
}

impl Source {
    fn new(config: &HttpSymbolSource) -> Self {
        let host = config
            .url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':', '@']).next())
            .unwrap_or("source")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(64)
            .collect::<String>();
        let mut hash = Fnv64::default();
        hash.write(config.url.trim_end_matches('/').as_bytes());
        hash.write(format!("{:?}", config.layout).as_bytes());
        Source {
            url: config.url.clone(),
            layout: config.layout,
            timeout: Duration::from_secs(config.timeout_secs),
            dir: format!("{host}-{:016x}", hash.0),
        }
    }

    /// The file's URL: each path component percent-encoded below the base URL.
    fn url_of(&self, file: &ServerFile) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.url).map_err(|e| e.to_string())?;
        url.path_segments_mut()
            .map_err(|()| "the URL cannot have a path".to_owned())?
            .pop_if_empty()
            .extend(file.path.split('/'));
        Ok(url)
    }
}

/// The HTTP sources per project: its own first, then the global ones.
struct ProjectSources {
    global: Rc<[Rc<Source>]>,
    per_project: HashMap<u64, Rc<[Rc<Source>]>>,
}

impl ProjectSources {
    fn new(config: &Config) -> Self {
        let global: Vec<Rc<Source>> = config
            .symbolication
            .http_sources
            .iter()
            .map(|s| Rc::new(Source::new(s)))
            .collect();
        let per_project = config
            .projects
            .iter()
            .filter(|p| !p.http_sources.is_empty())
            .map(|p| {
                let own = p.http_sources.iter().map(|s| Rc::new(Source::new(s)));
                (p.id, own.chain(global.iter().cloned()).collect())
            })
            .collect();
        ProjectSources {
            global: global.into(),
            per_project,
        }
    }

    fn for_project(&self, project_id: u64) -> Rc<[Rc<Source>]> {
        self.per_project
            .get(&project_id)
            .unwrap_or(&self.global)
            .clone()
    }
}

/// The work for one event.
struct FetchJob {
    store: Arc<SymbolStore>,
    sources: Rc<[Rc<Source>]>,
    downloader: Rc<Downloader>,
    max_minidump_size: usize,
}

impl FetchJob {
    async fn run(self, minidump: Bytes) -> usize {
        let limit = self.max_minidump_size;
        let modules = tokio::task::spawn_blocking(move || {
            let unwrapped = unwrap_minidump(&minidump, limit).ok()?;
            referenced_modules(unwrapped.as_deref().unwrap_or(&minidump)).ok()
        })
        .await;
        // A dump that cannot be read is the Symbolicator's to report.
        let Ok(Some(modules)) = modules else {
            return 0;
        };
        let this = &self;
        futures::stream::iter(modules)
            .map(|module| this.fetch_module(module))
            .buffer_unordered(MODULES_AT_ONCE)
            .fold(0, |total, added| async move { total + added })
            .await
    }

    /// Tries the sources for the files `module` still lacks; returns how many were added.
    async fn fetch_module(&self, module: ModuleRef) -> usize {
        let candidates = self.store.candidates(&module);
        let downloads_index = self.store.sources().len();
        let mut have_debug = candidates.iter().any(|(_, f)| f.features.has_debug_info);
        let mut have_unwind = candidates.iter().any(|(_, f)| f.features.has_unwind_info);
        // Fetched before (its files are in the store), or nothing missing.
        if candidates.iter().any(|(i, _)| *i == downloads_index) || (have_debug && have_unwind) {
            return 0;
        }
        let mut added = 0;
        for source in self.sources.iter() {
            for file in module.server_files(source.layout) {
                let have = match file.role {
                    FileRole::Debug => have_debug,
                    FileRole::Code => have_unwind,
                };
                if have {
                    continue;
                }
                if let Outcome::Found(files) = self.downloader.get(source, &file).await {
                    let downloads: &DownloadedFiles = self.store.downloads();
                    downloads.add_files(files.to_vec());
                    added += files.len();
                    match file.role {
                        FileRole::Debug => have_debug = true,
                        FileRole::Code => have_unwind = true,
                    }
                    have_debug |= files.iter().any(|f| f.features.has_debug_info);
                    have_unwind |= files.iter().any(|f| f.features.has_unwind_info);
                }
            }
        }
        if added > 0 {
            // The store may remember the module as missing from an earlier event.
            self.store.forget(&module);
        }
        added
    }
}

/// What asking for one file gave.
#[derive(Clone, Debug)]
enum Outcome {
    /// On disk; these are its objects.
    Found(Arc<[DebugFile]>),
    /// The server does not have it (or it is no debug file).
    Missing,
    /// Timeout, server error, network error: try again later.
    Failed,
}

type Key = (Rc<str>, String);
type SharedDownload = Shared<Pin<Box<dyn Future<Output = Outcome>>>>;

fn shared(outcome: impl Future<Output = Outcome> + 'static) -> SharedDownload {
    let boxed: Pin<Box<dyn Future<Output = Outcome>>> = Box::pin(outcome);
    boxed.shared()
}

/// The download cache, the negative cache and the HTTP client, shared by this actor's jobs.
struct Downloader {
    client: reqwest::Client,
    cache_dir: PathBuf,
    max_cache_bytes: u64,
    negative_ttl: Duration,
    permits: Arc<Semaphore>,
    /// Files on disk and identified, by (source dir, server path).
    known: RefCell<HashMap<Key, Arc<[DebugFile]>>>,
    /// Misses and failures, until the instant they may be asked for again.
    negative: RefCell<HashMap<Key, Instant>>,
    in_flight: RefCell<HashMap<Key, SharedDownload>>,
    bytes_since_evict: Cell<u64>,
    tmp_counter: Cell<u64>,
}

impl Downloader {
    fn new(cache_dir: PathBuf, max_cache_bytes: u64, negative_ttl: Duration) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initializes");
        Downloader {
            client,
            cache_dir,
            max_cache_bytes,
            negative_ttl,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DOWNLOADS)),
            known: RefCell::default(),
            negative: RefCell::default(),
            in_flight: RefCell::default(),
            bytes_since_evict: Cell::new(0),
            tmp_counter: Cell::new(0),
        }
    }

    /// The directories the cache size bound covers.
    fn cache_roots(&self) -> Vec<PathBuf> {
        ["symcache", "cfi", "downloads"]
            .iter()
            .map(|d| self.cache_dir.join(d))
            .collect()
    }

    fn local_path(&self, source: &Source, file: &ServerFile) -> PathBuf {
        let mut path = self.cache_dir.join("downloads").join(&source.dir);
        path.extend(file.path.split('/'));
        path
    }

    /// Forgets files deleted by eviction.
    fn forget_paths(&self, removed: &[PathBuf]) {
        self.known
            .borrow_mut()
            .retain(|_, files| !files.iter().any(|f| removed.contains(&f.path)));
    }

    /// The file from the cache, or downloaded (once, however many events wait for it).
    fn get(self: &Rc<Self>, source: &Rc<Source>, file: &ServerFile) -> SharedDownload {
        let key: Key = (source.dir.as_str().into(), file.path.clone());
        if let Some(files) = self.known.borrow().get(&key) {
            return shared(futures::future::ready(Outcome::Found(files.clone())));
        }
        if let Some(until) = self.negative.borrow().get(&key) {
            if Instant::now() < *until {
                return shared(futures::future::ready(Outcome::Missing));
            }
        }
        if let Some(running) = self.in_flight.borrow().get(&key) {
            return running.clone();
        }
        let this = self.clone();
        let task_key = key.clone();
        let (source, file) = (source.clone(), file.clone());
        // A task of its own: it finishes (and fills the cache) even when the event that
        // started it has stopped waiting.
        let handle = actix::spawn(async move {
            let outcome = this.load(&source, &file).await;
            this.in_flight.borrow_mut().remove(&task_key);
            match &outcome {
                Outcome::Found(files) => {
                    this.known.borrow_mut().insert(task_key, files.clone());
                }
                Outcome::Missing => this.remember_miss(task_key, this.negative_ttl),
                Outcome::Failed => this.remember_miss(task_key, this.negative_ttl.min(FAILURE_TTL)),
            }
            outcome
        });
        let download = shared(async move { handle.await.unwrap_or(Outcome::Failed) });
        self.in_flight.borrow_mut().insert(key, download.clone());
        download
    }

    fn remember_miss(&self, key: Key, ttl: Duration) {
        let mut negative = self.negative.borrow_mut();
        if negative.len() >= MAX_NEGATIVE_ENTRIES {
            let now = Instant::now();
            negative.retain(|_, until| *until > now);
            if negative.len() >= MAX_NEGATIVE_ENTRIES {
                negative.clear();
            }
        }
        negative.insert(key, Instant::now() + ttl);
    }

    /// From the disk cache, or from the server.
    async fn load(self: &Rc<Self>, source: &Source, file: &ServerFile) -> Outcome {
        let local = self.local_path(source, file);
        let marker = missing_marker(&local);
        let cached = {
            let (local, marker, ttl) = (local.clone(), marker.clone(), self.negative_ttl);
            tokio::task::spawn_blocking(move || from_disk(&local, &marker, ttl)).await
        };
        match cached {
            Ok(Some(outcome)) => {
                metrics::count_symbol_download("cached");
                return outcome;
            }
            Ok(None) => {}
            Err(_) => return Outcome::Failed,
        }
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return Outcome::Failed;
        };
        let url = match source.url_of(file) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(url = source.url, %error, "bad symbol source URL");
                return Outcome::Failed;
            }
        };
        let started = Instant::now();
        let result = tokio::time::timeout(
            MAX_DOWNLOAD_TIME,
            self.download(&url, source.timeout, &local, file.compressed),
        )
        .await
        .unwrap_or(Err(Failure::Timeout));
        match result {
            Ok(files) => {
                metrics::count_symbol_download("found");
                tracing::debug!(%url, elapsed = ?started.elapsed(), "debug file downloaded");
                Outcome::Found(files.into())
            }
            Err(Failure::NotFound) => {
                metrics::count_symbol_download("missing");
                tracing::debug!(%url, "not on the symbol server");
                // On disk too, so a restart does not ask again; losing it costs one request.
                let _ = tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(marker.parent()?).ok()?;
                    std::fs::write(&marker, b"").ok()
                })
                .await;
                Outcome::Missing
            }
            Err(Failure::NotDebugFile) => {
                metrics::count_symbol_download("missing");
                tracing::info!(%url, "the symbol server's answer is no debug file");
                Outcome::Missing
            }
            Err(failure) => {
                metrics::count_symbol_download("failed");
                tracing::info!(%url, %failure, "symbol download failed");
                Outcome::Failed
            }
        }
    }

    /// Downloads `url` into `local` (through a temporary file, unpacking a cabinet) and
    /// identifies it.
    async fn download(
        &self,
        url: &reqwest::Url,
        timeout: Duration,
        local: &Path,
        compressed: bool,
    ) -> Result<Vec<DebugFile>, Failure> {
        let request = self.client.get(url.clone()).send();
        let mut response = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| Failure::Timeout)??;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(Failure::NotFound);
        }
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let max_bytes = self.max_cache_bytes / 2;
        if response.content_length().is_some_and(|len| len > max_bytes) {
            return Err(Failure::TooLarge);
        }
        let dir = local.parent().ok_or(Failure::Io("no parent".into()))?;
        tokio::fs::create_dir_all(dir).await?;
        let n = self.tmp_counter.get();
        self.tmp_counter.set(n + 1);
        let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        let written = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            let mut size = 0u64;
            while let Some(chunk) = tokio::time::timeout(timeout, response.chunk())
                .await
                .map_err(|_| Failure::Timeout)??
            {
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(Failure::TooLarge);
                }
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
            Ok(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(failure) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(failure);
            }
        };
        self.bytes_since_evict
            .set(self.bytes_since_evict.get() + size);
        let local = local.to_owned();
        tokio::task::spawn_blocking(move || finish_download(&tmp, &local, compressed, max_bytes))
            .await
            .map_err(|e| Failure::Io(e.to_string()))?
    }
}

/// Moves (or unpacks) the finished download into place and identifies it.
fn finish_download(
    tmp: &Path,
    local: &Path,
    compressed: bool,
    max_bytes: u64,
) -> Result<Vec<DebugFile>, Failure> {
    let mut head = [0u8; 4];
    let is_cabinet = compressed
        && std::fs::File::open(tmp)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
        && is_cab(&head);
    let result = if is_cabinet {
        let unpacked = tmp.with_extension("unpacked");
        unpack_cab(tmp, &unpacked, max_bytes)
            .map_err(|e| Failure::Io(e.to_string()))
            .and_then(|()| std::fs::rename(&unpacked, local).map_err(Failure::from))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&unpacked);
            })
    } else {
        std::fs::rename(tmp, local).map_err(Failure::from)
    };
    let _ = std::fs::remove_file(tmp);
    result?;
    let files = identify(local);
    if files.is_empty() {
        let _ = std::fs::remove_file(local);
        return Err(Failure::NotDebugFile);
    }
    let _ = std::fs::remove_file(missing_marker(local));
    Ok(files)
}

/// A download cache hit (`Found`), a fresh miss marker (`Missing`), or `None`: ask the server.
fn from_disk(local: &Path, marker: &Path, ttl: Duration) -> Option<Outcome> {
    if local.is_file() {
        let files = identify(local);
        if !files.is_empty() {
            return Some(Outcome::Found(files.into()));
        }
        let _ = std::fs::remove_file(local);
    }
    let age = std::fs::metadata(marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())?;
    (age < ttl).then_some(Outcome::Missing)
}

fn missing_marker(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_owned();
    name.push(".missing");
    local.with_file_name(name)
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("not found")]
    NotFound,
    #[error("the answer is no debug file")]
    NotDebugFile,
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("larger than the cache allows")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Io(error.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests;
