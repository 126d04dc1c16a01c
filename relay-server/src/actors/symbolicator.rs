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

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use relay_processing::minidump::unwrap_minidump;
use relay_processing::sourcemap::{is_javascript_event, symbolicate_js_event};
use relay_processing::symbolicate::{apply_to_event, symbolicate_minidump};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::aggregator::{AggregateEnvelope, Aggregator};
use super::Mailbox;
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;
use crate::symbols::{minidump_item, ProjectSymbolStores};

/// One symbolication job, holding its admission permit until the job is done.
pub struct SymbolicateEnvelope {
    envelope: ManagedEnvelope,
    _permit: OwnedSemaphorePermit,
}

impl Message for SymbolicateEnvelope {
    type Result = ();
}

/// Symbolicates events' native crashes.
pub struct Symbolicator {
    symbols: Arc<ProjectSymbolStores>,
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
fn symbolicate_native(envelope: &mut ManagedEnvelope, symbols: &ProjectSymbolStores) {
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
    let unwrapped = match unwrap_minidump(&minidump.payload, symbols.max_minidump_size()) {
        Ok(unwrapped) => unwrapped,
        Err(error) => return note_error(event, "native_bad_dump", &error.to_string()),
    };
    let dump = unwrapped.as_deref().unwrap_or(&minidump.payload);
    let store = symbols.native_store(meta.project_id);
    match symbolicate_minidump(dump, store, Some(started + symbols.timeout())) {
        Ok(crash) => apply_to_event(&crash, event),
        Err(error) => note_error(event, "native_bad_dump", &error.to_string()),
    }
    tracing::debug!(elapsed = ?started.elapsed(), "minidump symbolicated");
}

/// Resolves a JavaScript event's minified frames through the project's source maps.
fn symbolicate_javascript(envelope: &mut ManagedEnvelope, symbols: &ProjectSymbolStores) {
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
        symbols: Arc<ProjectSymbolStores>,
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
