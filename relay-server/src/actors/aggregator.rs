//! The Aggregator: groups events into issues and keeps windowed counts.
//!
//! Grouping arrives with its issue; today envelopes pass on to the Kafka producer.

use actix::prelude::*;

use super::kafka_producer::{KafkaProducer, ProduceEnvelope};
use super::{envelope_message, Mailbox, MailboxDepth};

envelope_message!(
    /// Counts the envelope's event towards its issue.
    AggregateEnvelope
);

/// Groups and counts events (pass-through until grouping lands).
pub struct Aggregator {
    depth: MailboxDepth,
    next: Mailbox<KafkaProducer>,
}

impl Aggregator {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "aggregator";

    /// An aggregator forwarding to the producer.
    pub fn new(next: Mailbox<KafkaProducer>) -> Self {
        Aggregator {
            depth: MailboxDepth::new(Self::MAILBOX),
            next,
        }
    }
}

impl Actor for Aggregator {
    type Context = Context<Self>;
}

impl Handler<AggregateEnvelope> for Aggregator {
    type Result = ();

    fn handle(&mut self, AggregateEnvelope(envelope): AggregateEnvelope, _ctx: &mut Self::Context) {
        self.depth.received();
        self.next.forward(ProduceEnvelope(envelope));
    }
}
