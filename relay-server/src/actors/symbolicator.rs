//! The Symbolicator: CPU-bound stack walking and symbolication on its own `SyncArbiter`.
//!
//! An event with a minidump attachment (`attachment_type: event.minidump`) gets its crash
//! walked and symbolicated with the project's debug files; the result becomes the event's
//! exception, threads and `debug_meta.images`. A JavaScript event gets its minified frames
//! resolved through the project's source maps. A missing debug file or source map, a corrupt
//! dump or the per-event deadline never stop the event: frames carry a status saying why they
//! are bare.
//! The work runs on a pool of dedicated threads, never on the HTTP workers or async arbiters.
//!
//! A `SyncArbiter`'s queue is unbounded (actix drains its channel into an unbounded queue), so
//! the bound sits in front of it: [`SymbolicatorGate`] admits at most `capacity` jobs (queued
//! plus running) and rejects the rest as overload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use relay_core::{Config, ItemType};
use relay_processing::minidump::unwrap_minidump;
use relay_processing::sourcemap::{is_javascript_event, symbolicate_js_event, SourceMapStore};
use relay_processing::symbolicate::{
    apply_to_event, symbolicate_minidump, LocalDirectory, SymbolSource, SymbolStore,
};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::aggregator::{AggregateEnvelope, Aggregator};
use super::Mailbox;
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;

/// One symbolication job, holding its admission permit until the job is done.
pub struct SymbolicateEnvelope {
    envelope: ManagedEnvelope,
    _permit: OwnedSemaphorePermit,
}

impl Message for SymbolicateEnvelope {
    type Result = ();
}

/// Size bound of the built source map caches on disk.
const SOURCEMAP_CACHE_BYTES: u64 = 1 << 30;

/// Debug files and source maps per project, shared by all symbolicator threads.
pub struct Symbols {
    per_project: HashMap<u64, Arc<SymbolStore>>,
    shared: Arc<SymbolStore>,
    js_per_project: HashMap<u64, Arc<SourceMapStore>>,
    js_shared: Option<Arc<SourceMapStore>>,
    timeout: Duration,
    max_minidump_size: usize,
}

impl Symbols {
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
        let sourcemaps = |dir: &PathBuf| -> anyhow::Result<Arc<SourceMapStore>> {
            let store =
                SourceMapStore::open(dir, cache_dir.join("sourcemaps"), SOURCEMAP_CACHE_BYTES)
                    .map_err(|e| {
                        anyhow::anyhow!("cannot open JavaScript artifacts {}: {e}", dir.display())
                    })?;
            Ok(Arc::new(store))
        };
        let mut js_per_project = HashMap::new();
        for project in &config.projects {
            if let Some(dir) = &project.js_artifacts {
                js_per_project.insert(project.id, sourcemaps(dir)?);
            }
        }
        let js_shared = config
            .symbolication
            .js_artifacts
            .as_ref()
            .map(sourcemaps)
            .transpose()?;
        let mut per_project = HashMap::new();
        for project in config
            .projects
            .iter()
            .filter(|p| !p.native_symbols.is_empty() || !p.http_sources.is_empty())
        {
            let dirs: Vec<&PathBuf> = project.native_symbols.iter().chain(global).collect();
            per_project.insert(project.id, store(&dirs)?);
        }
        Ok(Symbols {
            per_project,
            shared: store(&global.iter().collect::<Vec<_>>())?,
            js_per_project,
            js_shared,
            timeout: Duration::from_secs(config.symbolication.timeout_secs),
            max_minidump_size: config.limits.max_attachment_size,
        })
    }

    fn for_project(&self, project_id: u64) -> &SymbolStore {
        self.per_project.get(&project_id).unwrap_or(&self.shared)
    }

    fn sourcemaps_for_project(&self, project_id: u64) -> Option<&SourceMapStore> {
        self.js_per_project
            .get(&project_id)
            .or(self.js_shared.as_ref())
            .map(Arc::as_ref)
    }
}

/// Symbolicates events' native crashes.
pub struct Symbolicator {
    symbols: Arc<Symbols>,
    next: Mailbox<Aggregator>,
}

impl Symbolicator {
    /// Name of this stage's gate in metrics and errors.
    pub const MAILBOX: &'static str = "symbolicator";
}

impl Actor for Symbolicator {
    type Context = SyncContext<Self>;
}

impl Handler<SymbolicateEnvelope> for Symbolicator {
    type Result = ();

    fn handle(&mut self, job: SymbolicateEnvelope, _ctx: &mut Self::Context) {
        let SymbolicateEnvelope {
            mut envelope,
            _permit,
        } = job;
        symbolicate_native(&mut envelope, &self.symbols);
        symbolicate_javascript(&mut envelope, &self.symbols);
        // The permit is released when `_permit` goes out of scope, after forwarding.
        self.next.forward(AggregateEnvelope(envelope));
    }
}

/// Walks and symbolicates the envelope's minidump into its event, if it has both.
fn symbolicate_native(envelope: &mut ManagedEnvelope, symbols: &Symbols) {
    let ManagedEnvelope {
        envelope: inner,
        event: Some(event),
        meta,
        ..
    } = envelope
    else {
        return;
    };
    let Some(minidump) = minidump_item(inner) else {
        return;
    };
    let started = Instant::now();
    let unwrapped = match unwrap_minidump(&minidump.payload, symbols.max_minidump_size) {
        Ok(unwrapped) => unwrapped,
        Err(error) => return note_error(event, "native_bad_dump", &error.to_string()),
    };
    let dump = unwrapped.as_deref().unwrap_or(&minidump.payload);
    let store = symbols.for_project(meta.project_id);
    match symbolicate_minidump(dump, store, Some(started + symbols.timeout)) {
        Ok(crash) => apply_to_event(&crash, event),
        Err(error) => note_error(event, "native_bad_dump", &error.to_string()),
    }
    tracing::debug!(elapsed = ?started.elapsed(), "minidump symbolicated");
}

/// Resolves a JavaScript event's minified frames through the project's source maps.
fn symbolicate_javascript(envelope: &mut ManagedEnvelope, symbols: &Symbols) {
    let project_id = envelope.meta.project_id;
    let Some(event) = envelope.event.as_mut() else {
        return;
    };
    let Some(store) = symbols.sourcemaps_for_project(project_id) else {
        return;
    };
    if is_javascript_event(event) {
        let stats = symbolicate_js_event(event, store);
        tracing::debug!(?stats, "JavaScript frames resolved");
    }
}

/// Records a processing problem in the event's `errors`, where Sentry's protocol keeps them.
fn note_error(event: &mut Value, ty: &str, details: &str) {
    tracing::info!(ty, details, "symbolication problem recorded on the event");
    let note = json!({ "type": ty, "details": details });
    match event.get_mut("errors").and_then(Value::as_array_mut) {
        Some(errors) => errors.push(note),
        None => event["errors"] = json!([note]),
    }
}

/// Whether the envelope has a minidump or JavaScript frames to work on.
fn needs_symbolication(envelope: &ManagedEnvelope) -> bool {
    let Some(event) = &envelope.event else {
        return false;
    };
    minidump_item(&envelope.envelope).is_some() || is_javascript_event(event)
}

/// The envelope's minidump attachment, if any.
pub(crate) fn minidump_item(envelope: &relay_core::Envelope) -> Option<&relay_core::Item> {
    envelope.items.iter().find(|item| {
        item.ty() == &ItemType::Attachment
            && item.headers.attachment_type.as_deref() == Some("event.minidump")
    })
}

/// Admission in front of the Symbolicator's unbounded `SyncArbiter` queue.
#[derive(Clone)]
pub struct SymbolicatorGate {
    addr: Addr<Symbolicator>,
    permits: Arc<Semaphore>,
    capacity: usize,
    next: Mailbox<Aggregator>,
}

impl SymbolicatorGate {
    /// Starts `threads` symbolicator threads behind a gate of `capacity` jobs.
    pub fn start(
        threads: usize,
        capacity: usize,
        symbols: Arc<Symbols>,
        next: Mailbox<Aggregator>,
    ) -> Self {
        let bypass = next.clone();
        // Its dispatcher (channel -> thread queue) runs on the System arbiter, the main thread,
        // which only awaits the HTTP server; nothing may block that thread.
        let addr = SyncArbiter::start(threads, move || Symbolicator {
            symbols: symbols.clone(),
            next: next.clone(),
        });
        metrics::set_mailbox_capacity(Symbolicator::MAILBOX, capacity);
        SymbolicatorGate {
            addr,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            next: bypass,
        }
    }

    /// This gate (same threads, same permits) with envelopes that need no symbolication going
    /// straight to `next`: each lane's own Aggregator. Symbolicated envelopes go on to the
    /// Aggregator the gate was started with.
    pub fn bypassing_to(&self, next: Mailbox<Aggregator>) -> Self {
        SymbolicatorGate {
            next,
            ..self.clone()
        }
    }

    /// Admits the envelope if a permit is free; otherwise rejects it as overload. An envelope
    /// with nothing to symbolicate skips the threads and goes straight to the Aggregator.
    pub fn forward(&self, envelope: ManagedEnvelope) {
        if !needs_symbolication(&envelope) {
            self.next.forward(AggregateEnvelope(envelope));
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::count_rejection("overloaded");
            envelope.reject(Rejection::Overloaded {
                stage: Symbolicator::MAILBOX,
            });
            return;
        };
        let job = SymbolicateEnvelope {
            envelope,
            _permit: permit,
        };
        // The SyncArbiter channel never reports "full"; the permit above is the bound.
        if let Err(error) = self.addr.try_send(job) {
            let job = match error {
                SendError::Full(job) | SendError::Closed(job) => job,
            };
            job.envelope
                .reject(Rejection::Internal("symbolicator stopped"));
        }
    }

    /// Records jobs admitted and not finished as this gate's depth.
    pub fn publish_depth(&self) {
        let in_use = self.capacity - self.permits.available_permits();
        metrics::mailbox_depth(Symbolicator::MAILBOX).set(in_use as i64);
    }
}

// ---------------------------------------------------------------------------------------------
// Accessors for the SymbolFetcher (actors/symbol_fetcher.rs), which adds downloaded debug files
// to these stores before the event reaches the Symbolicator.

impl Symbols {
    /// The native symbol store used for `project_id`'s crashes.
    pub fn native_store(&self, project_id: u64) -> &Arc<SymbolStore> {
        self.per_project.get(&project_id).unwrap_or(&self.shared)
    }

    /// Every native symbol store (per project and shared), e.g. to drop evicted downloads.
    pub fn native_stores(&self) -> impl Iterator<Item = &Arc<SymbolStore>> {
        self.per_project.values().chain([&self.shared])
    }
}
