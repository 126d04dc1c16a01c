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
//!
//! The threads serve every pipeline lane; each envelope goes back to the EventProcessor of the lane
//! that read it ([`LaneExits`], by the lane recorded in its route), so that it is grouped and
//! published on its own lane.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use relay_processing::minidump::unwrap_minidump;
use relay_processing::sourcemap::{is_javascript_event, symbolicate_js_event_within};
use relay_processing::symbolicate::{apply_to_event_within, symbolicate_minidump_within};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::event_processor::{EventProcessor, ProcessEvent};
use super::Mailbox;
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;
use crate::symbols::{minidump_item, LiveSymbols, ProjectSymbolStores};

/// One symbolication job, holding its admission permit until the job is done.
pub struct SymbolicateEnvelope {
    envelope: ManagedEnvelope,
    _permit: OwnedSemaphorePermit,
}

impl Message for SymbolicateEnvelope {
    type Result = ();
}

/// Where an envelope goes on from the gate: the next stage of one lane.
pub type Exit = Box<dyn Fn(ManagedEnvelope) + Send + Sync>;

/// The next stage of every lane, by lane: each envelope leaves the Symbolicator for the lane
/// that read it.
#[derive(Clone)]
pub struct LaneExits(Arc<[Exit]>);

impl LaneExits {
    /// `exits[lane]` takes lane `lane`'s envelopes.
    pub fn new(exits: Vec<Exit>) -> Self {
        LaneExits(exits.into())
    }

    /// The lanes' EventProcessors, in lane order.
    pub fn event_processors(processors: impl IntoIterator<Item = Mailbox<EventProcessor>>) -> Self {
        let exits = processors.into_iter().map(|processor| {
            Box::new(move |envelope: ManagedEnvelope| processor.forward(ProcessEvent(envelope)))
                as Exit
        });
        LaneExits::new(exits.collect())
    }

    /// Sends the envelope on to the next stage of its own lane.
    fn send(&self, envelope: ManagedEnvelope) {
        match self.0.get(envelope.route.lane) {
            Some(exit) => exit(envelope),
            None => envelope.reject(Rejection::Internal("the envelope's lane does not exist")),
        }
    }
}

/// Symbolicates events' native crashes.
pub struct Symbolicator {
    symbols: LiveSymbols,
    exits: LaneExits,
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
        // The stores in force now, for the whole envelope, whatever a reload does meanwhile.
        let symbols = self.symbols.current();
        symbolicate_native(&mut envelope, &symbols);
        symbolicate_javascript(&mut envelope, &symbols);
        // The permit is released when `_permit` goes out of scope, after forwarding.
        self.exits.send(envelope);
    }
}

/// Walks and symbolicates the envelope's minidump into its event, if its route says it has
/// both.
fn symbolicate_native(envelope: &mut ManagedEnvelope, symbols: &ProjectSymbolStores) {
    if !envelope.route.native {
        return;
    }
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
    // A dump cut off by a bound still gives what was walked; the event's `errors` say which
    // bound (`native_walk_cut_off`), and this thread is free for the next event.
    match symbolicate_minidump_within(dump, store, &symbols.walk_limits(started)) {
        Ok(crash) => {
            if !crash.cut_off.is_empty() {
                tracing::info!(cut_off = ?crash.cut_off, "minidump walk cut short by its bounds");
            }
            apply_to_event_within(&crash, event, symbols.max_event_frames())
        }
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
        // Frames past a bound keep their minified positions; the event's `errors` say which
        // bound (`js_symbolication_cut_off`), and this thread is free for the next event.
        let limits = symbols.js_limits(Instant::now());
        let stats = symbolicate_js_event_within(event, store, &limits);
        if stats.cut_off > 0 {
            tracing::info!(?stats, "JavaScript symbolication cut short by its bounds");
        }
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

/// Whether the envelope has a minidump (as its route says) or JavaScript frames to work on.
fn needs_symbolication(envelope: &ManagedEnvelope) -> bool {
    envelope.route.native || envelope.event.as_ref().is_some_and(is_javascript_event)
}

/// Admission in front of the Symbolicator's unbounded `SyncArbiter` queue.
#[derive(Clone)]
pub struct SymbolicatorGate {
    addr: Addr<Symbolicator>,
    permits: Arc<Semaphore>,
    capacity: usize,
    exits: LaneExits,
}

impl SymbolicatorGate {
    /// Starts `threads` symbolicator threads behind a gate of `capacity` jobs; every envelope
    /// leaves through `exits`, to its own lane.
    pub fn start(threads: usize, capacity: usize, symbols: LiveSymbols, exits: LaneExits) -> Self {
        let bypass = exits.clone();
        // Its dispatcher (channel -> thread queue) runs on the System arbiter, the main thread,
        // which only awaits the HTTP server; nothing may block that thread.
        let addr = SyncArbiter::start(threads, move || Symbolicator {
            symbols: symbols.clone(),
            exits: exits.clone(),
        });
        metrics::set_mailbox_capacity(Symbolicator::MAILBOX, capacity);
        SymbolicatorGate {
            addr,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            exits: bypass,
        }
    }

    /// Admits the envelope if a permit is free; otherwise rejects it as overload. An envelope
    /// with nothing to symbolicate skips the threads and goes straight to its lane's EventProcessor.
    pub fn forward(&self, envelope: ManagedEnvelope) {
        if !needs_symbolication(&envelope) {
            self.exits.send(envelope);
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

#[cfg(test)]
mod tests {
    use relay_core::envelope::{Item, ItemHeaders};
    use relay_core::{Config, Envelope, ItemType};
    use serde_json::json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::managed::RequestMeta;

    /// Exits that report which lane each envelope left on, in place of the lanes' Aggregators.
    fn observed_exits(
        lanes: usize,
    ) -> (LaneExits, mpsc::UnboundedReceiver<(usize, ManagedEnvelope)>) {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let exits = (0..lanes)
            .map(|lane| {
                let tx = tx.clone();
                Box::new(move |envelope: ManagedEnvelope| {
                    let _ = tx.send((lane, envelope));
                }) as Exit
            })
            .collect();
        (LaneExits::new(exits), arrivals)
    }

    /// An event read by lane `lane`, with a minidump attachment (not a valid dump) if `minidump`.
    fn event_on_lane(lane: usize, minidump: bool) -> ManagedEnvelope {
        let mut headers = ItemHeaders::new(ItemType::Attachment);
        headers.attachment_type = Some("event.minidump".into());
        let items = match minidump {
            true => vec![Item::new(headers, b"not a minidump".to_vec())],
            false => Vec::new(),
        };
        let envelope = Envelope {
            items,
            ..Envelope::default()
        };
        let meta = RequestMeta::for_test(1);
        ManagedEnvelope::new(envelope, meta, Some(json!({})), lane).0
    }

    #[actix_web::test]
    async fn envelopes_leave_on_the_lane_that_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let symbols = LiveSymbols::new(ProjectSymbolStores::load(&config).unwrap());
        let (exits, mut arrivals) = observed_exits(2);
        let gate = SymbolicatorGate::start(1, 4, symbols, exits);

        for (lane, minidump) in [(1, true), (0, true), (1, false)] {
            gate.forward(event_on_lane(lane, minidump));
            let (left_on, envelope) = arrivals.recv().await.unwrap();
            assert_eq!(
                left_on, lane,
                "read on lane {lane} (minidump: {minidump}), left on lane {left_on}"
            );
            // Only the minidump events went through the symbolicator's threads, which note the
            // dump they could not read on the event.
            let noted = &envelope.event.as_ref().unwrap()["errors"][0]["type"];
            assert_eq!(noted == "native_bad_dump", minidump, "{noted}");
            envelope.accept();
        }
    }
}
