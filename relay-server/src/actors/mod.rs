//! The actor pipeline. Each stage is one actor, in its own file with its messages.
//!
//! ```text
//! Intake (HTTP handlers, endpoints/) --append--> Spool (disk) ; 200 once written
//! SpoolReader (its lane's share of max_in_flight slots; decides the route) lane arbiter
//!   --NormalizeEnvelope--> Normalizer                                    lane arbiter
//!   --FetchSymbols--> SymbolFetcher: HTTP symbol downloads for minidumps first lane's arbiter
//!   --SymbolicateEnvelope (through SymbolicatorGate)--> Symbolicator     SyncArbiter, N threads
//!   --ProcessEvent--> EventProcessor (scrub, group, count) of the envelope's own lane
//!                                                                        lane arbiter
//!   --ProduceEnvelope--> KafkaProducer --delivery reports--> verdict     lane arbiter
//!   verdict --> SpoolReader: release the entry, or retry it with backoff
//! EventProcessor --ProduceRecords (issue aggregates)--> KafkaProducer
//! Intake, SpoolReader --TrackOutcome--> OutcomeAggregator
//!   --ProduceRecords (outcomes)--> KafkaProducer
//! ```
//!
//! In forward mode (`upstream`, `docs/edge.md`) there is no processing pipeline and no Kafka:
//!
//! ```text
//! Intake --append--> Spool ; 200 once written
//! SpoolReader --ForwardEnvelope--> UpstreamForwarder --HTTP--> upstream --> verdict
//!   verdict --> SpoolReader: release on 2xx, retry with backoff, or drop and count
//! Intake, SpoolReader --TrackOutcome--> OutcomeAggregator (counted in /metrics only)
//! ```
//!
//! The pipeline runs in lanes (`pipeline.lanes`, one per core by default): each lane is one
//! thread (arbiter) with its own SpoolReader, Normalizer, EventProcessor and KafkaProducer, and
//! an envelope finishes on the lane that read it (see `service.rs` for why): the reader records
//! its [`Route`](crate::managed::Route) (lane, minidump or not) and the later stages read it,
//! the Symbolicator to send it back to its lane's EventProcessor. The lanes share the
//! spool cursor, the delivery window and the issue windows; the SymbolFetcher, the
//! OutcomeAggregator and the Symbolicator's threads serve all of them. Each stage is still its
//! own actor with its own bounded mailbox.

//! Every message carries a [`ManagedEnvelope`]. Senders use `try_send`; a full mailbox turns
//! the envelope into a [`Rejection::Overloaded`], which the spool reader retries with backoff
//! (the entry stays on disk meanwhile). Nothing queues without bound: async actors have a mailbox capacity (set before they start, see [`start_bounded_in`]), and
//! the Symbolicator's unbounded `SyncArbiter` queue sits behind a permit gate.

pub mod event_processor;
pub mod kafka_producer;
pub mod normalizer;
pub mod outcomes;
pub mod spool_reader;
pub mod symbol_fetcher;
pub mod symbolicator;
pub mod upstream_forwarder;

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

    /// Sends without waiting; a full or closed mailbox hands the message back.
    pub fn try_send<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.depth.inc();
        self.addr
            .try_send(message)
            .inspect_err(|_| self.depth.dec())
    }

    /// Sends and waits for the handler's answer (and for room in the mailbox): for control
    /// messages off the data path, such as the flushes at shutdown.
    pub async fn send<M>(&self, message: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.depth.inc();
        let sent = self.addr.send(message);
        sent.await.inspect_err(|_| self.depth.dec())
    }

    /// Sends without waiting; a full or closed mailbox rejects the envelope (back-pressure).
    pub fn forward<M>(&self, message: M)
    where
        M: EnvelopeMessage,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.try_send(message) {
            Ok(()) => {}
            Err(SendError::Full(message)) => {
                metrics::count_rejection("overloaded");
                message
                    .into_envelope()
                    .reject(Rejection::Overloaded { stage: self.name });
            }
            Err(SendError::Closed(message)) => {
                message
                    .into_envelope()
                    .reject(Rejection::Internal("pipeline stage stopped"));
            }
        }
    }
}

/// Like [`start_bounded_in`], on a new arbiter (thread): for tests that run one actor alone
/// (the relay starts its actors on the lanes' arbiters).
#[cfg(test)]
pub fn start_bounded<A, F>(name: &'static str, capacity: usize, make: F) -> Mailbox<A>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A + Send + 'static,
{
    start_bounded_in(&Arbiter::new().handle(), name, capacity, make)
}

/// Starts an actor on `arbiter` with a mailbox of `capacity` messages. Actors that hand every
/// message to each other share one thread (a lane's arbiter), so passing a message wakes no
/// other thread.
///
/// The mailbox is created here, before the actor runs, so the bound holds from the first
/// message on (`set_mailbox_capacity` in `started` would leave actix's default of 16 in place
/// until the actor has started).
pub fn start_bounded_in<A, F>(
    arbiter: &ArbiterHandle,
    name: &'static str,
    capacity: usize,
    make: F,
) -> Mailbox<A>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A + Send + 'static,
{
    let (sender, receiver) = actix::dev::channel::channel(capacity);
    arbiter.spawn_fn(move || {
        Context::with_receiver(receiver).run(make());
    });
    Mailbox::new(name, Addr::new(sender), capacity)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use relay_core::Envelope;

    use super::*;
    use crate::managed::{RequestMeta, Verdict};

    envelope_message!(
        /// A job for the slow test actor.
        SlowJob
    );

    /// A consumer that takes 50 ms per message.
    struct SlowActor {
        depth: MailboxDepth,
    }

    impl Actor for SlowActor {
        type Context = Context<Self>;
    }

    impl Handler<SlowJob> for SlowActor {
        type Result = ();

        fn handle(&mut self, SlowJob(envelope): SlowJob, _ctx: &mut Self::Context) {
            self.depth.received();
            std::thread::sleep(Duration::from_millis(50));
            envelope.accept();
        }
    }

    #[actix_web::test]
    async fn full_mailbox_rejects_instead_of_growing() {
        let mailbox = start_bounded("slow_test", 2, || SlowActor {
            depth: MailboxDepth::new("slow_test"),
        });
        let mut verdicts = Vec::new();
        for _ in 0..20 {
            let meta = RequestMeta::for_test(1);
            let (managed, verdict) = ManagedEnvelope::new(Envelope::default(), meta, None, 0);
            mailbox.forward(SlowJob(managed));
            verdicts.push(verdict);
            assert!(
                mailbox.depth.get() <= 3,
                "depth {} beyond capacity + one sender slot",
                mailbox.depth.get()
            );
        }
        let mut accepted = 0;
        let mut overloaded = 0;
        for verdict in verdicts {
            match verdict.await.unwrap() {
                Verdict::Accepted => accepted += 1,
                Verdict::Rejected(Rejection::Overloaded { stage: "slow_test" }) => overloaded += 1,
                other => panic!("unexpected verdict {other:?}"),
            }
        }
        assert_eq!(accepted + overloaded, 20);
        assert!(
            overloaded >= 15,
            "a 50 ms consumer cannot take 20 instant sends: {accepted} accepted"
        );
        assert_eq!(mailbox.depth.get(), 0);
    }
}
