//! The actor pipeline. Each stage is one actor, in its own file with its messages.
//!
//! ```text
//! Intake (HTTP handlers, endpoints/) --CheckRateLimits--> RateLimiter   own arbiter
//!   --NormalizeEnvelope--> Normalizer                                    own arbiter
//!   --SymbolicateEnvelope (through SymbolicatorGate)--> Symbolicator     SyncArbiter, N threads
//!   --AggregateEnvelope--> Aggregator                                    own arbiter
//!   --ProduceEnvelope--> KafkaProducer --delivery reports--> verdict     own arbiter
//! ```
//!
//! Every message carries a [`ManagedEnvelope`]. Senders use `try_send`; a full mailbox turns
//! the envelope into a [`Rejection::Overloaded`], which the waiting request answers with 503
//! and `Retry-After`. Nothing queues without bound: async actors have a mailbox capacity, and
//! the Symbolicator's unbounded `SyncArbiter` queue sits behind a permit gate.

pub mod aggregator;
pub mod kafka_producer;
pub mod normalizer;
pub mod rate_limiter;
pub mod symbolicator;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use prometheus::IntGauge;

use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;

/// A pipeline message: one [`ManagedEnvelope`] on its way to the next stage.
pub trait EnvelopeMessage: Message<Result = ()> + Send + 'static {
    /// Takes the envelope back out, e.g. to reject it when the mailbox is full.
    fn into_envelope(self) -> ManagedEnvelope;
}

/// Defines a pipeline message type wrapping a [`ManagedEnvelope`].
macro_rules! envelope_message {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub crate::managed::ManagedEnvelope);

        impl actix::Message for $name {
            type Result = ();
        }

        impl crate::actors::EnvelopeMessage for $name {
            fn into_envelope(self) -> crate::managed::ManagedEnvelope {
                self.0
            }
        }
    };
}
pub(crate) use envelope_message;

/// The address of a bounded actor, with its depth gauge.
///
/// Depth counts messages sent and not yet picked up by the handler; the receiving actor calls
/// [`MailboxDepth::received`] first thing in its handler.
pub struct Mailbox<A: Actor> {
    name: &'static str,
    addr: Addr<A>,
    depth: IntGauge,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Mailbox {
            name: self.name,
            addr: self.addr.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<A: Actor> Mailbox<A> {
    /// Wraps `addr` and records the mailbox `capacity` in the metrics.
    pub fn new(name: &'static str, addr: Addr<A>, capacity: usize) -> Self {
        metrics::set_mailbox_capacity(name, capacity);
        Mailbox {
            name,
            addr,
            depth: metrics::mailbox_depth(name),
        }
    }

    /// Sends without waiting; a full or closed mailbox rejects the envelope (back-pressure).
    pub fn forward<M>(&self, message: M)
    where
        M: EnvelopeMessage,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.depth.inc();
        match self.addr.try_send(message) {
            Ok(()) => {}
            Err(SendError::Full(message)) => {
                self.depth.dec();
                metrics::count_rejection("overloaded");
                message
                    .into_envelope()
                    .reject(Rejection::Overloaded { stage: self.name });
            }
            Err(SendError::Closed(message)) => {
                self.depth.dec();
                message
                    .into_envelope()
                    .reject(Rejection::Internal("pipeline stage stopped"));
            }
        }
    }
}

/// The receiving side of a [`Mailbox`]'s depth gauge, held by the actor.
#[derive(Clone)]
pub struct MailboxDepth(IntGauge);

impl MailboxDepth {
    /// The depth gauge of the mailbox called `name`.
    pub fn new(name: &'static str) -> Self {
        MailboxDepth(metrics::mailbox_depth(name))
    }

    /// Marks one message as taken out of the mailbox.
    pub fn received(&self) {
        self.0.dec();
    }
}
