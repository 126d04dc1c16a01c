//! The Symbolicator: CPU-bound stack walking and symbolication on its own `SyncArbiter`.
//!
//! Native and JavaScript symbolication arrive with their issues; today events pass through.
//! The actor already runs where that work will run: on a pool of dedicated threads, never on
//! the HTTP workers or the async arbiters.
//!
//! A `SyncArbiter`'s queue is unbounded (actix drains its channel into an unbounded queue), so
//! the bound sits in front of it: [`SymbolicatorGate`] admits at most `capacity` jobs (queued
//! plus running) and rejects the rest as overload.

use std::sync::Arc;

use actix::prelude::*;
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

/// Symbolicates events' stack traces (pass-through until symbolication lands).
pub struct Symbolicator {
    next: Mailbox<Aggregator>,
}

impl Symbolicator {
    /// Name of this stage's gate in metrics and errors.
    pub const MAILBOX: &'static str = "symbolicator";

    /// A symbolicator forwarding to the aggregator.
    pub fn new(next: Mailbox<Aggregator>) -> Self {
        Symbolicator { next }
    }
}

impl Actor for Symbolicator {
    type Context = SyncContext<Self>;
}

impl Handler<SymbolicateEnvelope> for Symbolicator {
    type Result = ();

    fn handle(&mut self, job: SymbolicateEnvelope, _ctx: &mut Self::Context) {
        // The permit is released when `job` goes out of scope, after forwarding.
        self.next.forward(AggregateEnvelope(job.envelope));
    }
}

/// Admission in front of the Symbolicator's unbounded `SyncArbiter` queue.
#[derive(Clone)]
pub struct SymbolicatorGate {
    addr: Addr<Symbolicator>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl SymbolicatorGate {
    /// Starts `threads` symbolicator threads behind a gate of `capacity` jobs.
    pub fn start(threads: usize, capacity: usize, next: Mailbox<Aggregator>) -> Self {
        // Its dispatcher (channel -> thread queue) runs on the System arbiter, the main thread,
        // which only awaits the HTTP server; nothing may block that thread.
        let addr = SyncArbiter::start(threads, move || Symbolicator::new(next.clone()));
        metrics::set_mailbox_capacity(Symbolicator::MAILBOX, capacity);
        SymbolicatorGate {
            addr,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Admits the envelope if a permit is free; otherwise rejects it as overload.
    pub fn forward(&self, envelope: ManagedEnvelope) {
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
        self.publish_depth();
    }

    /// Records jobs admitted and not finished as this gate's depth.
    pub fn publish_depth(&self) {
        let in_use = self.capacity - self.permits.available_permits();
        metrics::mailbox_depth(Symbolicator::MAILBOX).set(in_use as i64);
    }
}
