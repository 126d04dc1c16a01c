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
//!   wait, and also each download's own run, so a download still running when its event goes
//!   on continues for later events at most that long.
//! - Size: each file is limited to `symbolication.max_download_bytes` as it streams, and its
//!   bytes count against `max_cache_bytes` as they arrive (`budget`); a file too large is not
//!   asked for again for `negative_cache_secs`.
//! - Each file is downloaded once at a time (concurrent events share the download), at most
//!   [`MAX_CONCURRENT_DOWNLOADS`] files at once.
//! - Negative caching: a 404/410 is remembered for `negative_cache_secs` in memory and as a
//!   `<file>.missing` marker on disk (so a restart does not ask again); other failures
//!   (timeouts, 5xx, connection errors) for at most [`FAILURE_TTL`], in memory.
//! - Download cache: `<cache_dir>/downloads/<source>/<server path>`, where `<source>` is the
//!   server's host and a hash of its URL and layout. Together with the SymCache and CFI caches
//!   it is kept under `symbolication.max_cache_bytes` by [`evict_to_size`]: at start, every
//!   [`EVICT_INTERVAL`], and early when downloads reserved a tenth of the bound or one was
//!   refused for lack of room (then down to where one more full-size download fits).
//! - At most `capacity` events are fetching at once; beyond, an event that needs downloads is
//!   refused as overload (the spool retries it); events that need none pass straight on.
//!
//! Files: this one holds the actor, its message and the work for one event; `sources` the
//! configured servers per project and their URLs; `downloads` the HTTP client, the download
//! cache and the download itself (streaming to disk, unpacking, identifying); `budget` the
//! disk space downloads may take; `negative_cache` what is not asked for again yet (in memory
//! and as `.missing` markers).

mod budget;
mod downloads;
mod negative_cache;
mod sources;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use futures::stream::StreamExt;
use relay_core::Config;
use relay_processing::minidump::unwrap_minidump;
use relay_processing::symbolicate::{
    evict_to_size, referenced_modules, DownloadedFiles, FileRole, ModuleRef, SymbolStore,
};

pub use self::downloads::MAX_CONCURRENT_DOWNLOADS;
use self::downloads::{DownloadResult, Downloader};
pub use self::negative_cache::FAILURE_TTL;
use self::sources::{ProjectSources, Source};
use super::symbolicator::SymbolicatorGate;
use super::{envelope_message, MailboxDepth};
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;
use crate::symbols::{minidump_item, LiveSymbols, ProjectSymbolStores};

envelope_message!(
    /// Fetches the debug files the envelope's minidump needs, then forwards the envelope.
    FetchSymbols
);

/// Modules of one event looked up at once.
const MODULES_AT_ONCE: usize = 8;

/// How often the cache size bound is checked.
pub const EVICT_INTERVAL: Duration = Duration::from_secs(60);

/// Where the fetcher sends envelopes on (the Symbolicator's gate).
type Next = Box<dyn Fn(ManagedEnvelope) + Send>;

/// Downloads debug files for minidumps; see the module docs.
pub struct SymbolFetcher {
    depth: MailboxDepth,
    next: Next,
    symbols: LiveSymbols,
    /// The HTTP sources of `sources_of`'s projects, built again when a reload replaced the
    /// stores.
    sources: ProjectSources,
    sources_of: Arc<ProjectSymbolStores>,
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
    pub fn new(config: &Config, symbols: LiveSymbols, next: SymbolicatorGate) -> Self {
        Self::forwarding_to(config, symbols, move |envelope| next.forward(envelope))
    }

    /// A fetcher handing each envelope to `next` when done with it.
    pub fn forwarding_to(
        config: &Config,
        symbols: LiveSymbols,
        next: impl Fn(ManagedEnvelope) + Send + 'static,
    ) -> Self {
        let stores = symbols.current();
        let symbolication = &config.symbolication;
        let cache_dir = symbolication
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("symbol-cache"));
        SymbolFetcher {
            depth: MailboxDepth::new(Self::MAILBOX),
            next: Box::new(next),
            symbols,
            sources: ProjectSources::new(stores.http_sources()),
            sources_of: stores,
            downloader: Rc::new(Downloader::new(cache_dir, symbolication)),
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
        let roots = self.downloader.cache_roots();
        let budget = self.downloader.budget().clone();
        let check = budget.check_started();
        let work =
            tokio::task::spawn_blocking(move || evict_to_size(&roots, check.trigger, check.target));
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
            budget.measured(check, eviction.bytes_after);
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
            for store in act.symbols.current().native_stores() {
                for path in &eviction.removed {
                    store.downloads().remove(path);
                }
            }
        }));
    }
}

impl SymbolFetcher {
    /// The stores in force, with their projects' HTTP sources in `self.sources`.
    fn current_stores(&mut self) -> Arc<ProjectSymbolStores> {
        let stores = self.symbols.current();
        if !Arc::ptr_eq(&stores, &self.sources_of) {
            self.sources = ProjectSources::new(stores.http_sources());
            self.sources_of = stores.clone();
        }
        stores
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
        let stores = self.current_stores();
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
            store: stores.native_store(envelope.meta.project_id).clone(),
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
            if act.downloader.budget().check_due() {
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
                if let DownloadResult::Found(files) = self.downloader.get(source, &file).await {
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

#[cfg(test)]
pub(crate) mod tests;
