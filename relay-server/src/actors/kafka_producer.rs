//! The KafkaProducer: publishes each envelope's messages and answers the request once Kafka
//! has confirmed delivery of all of them.

use actix::prelude::*;
use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use relay_core::config::{KafkaConfig, Topics};
use relay_core::EventId;

use super::{envelope_message, MailboxDepth};
use crate::kafka::messages::events::build_messages;
use crate::kafka::messages::Topic;
use crate::kafka::Producer;
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;

envelope_message!(
    /// Publishes the envelope's messages.
    ProduceEnvelope
);

/// Publishes statistics (outcomes, issue aggregates): (key, JSON value) pairs for one topic.
///
/// Unlike envelopes these are not spooled: a failed delivery is counted, not retried.
pub struct ProduceRecords {
    /// The topic.
    pub topic: Topic,
    /// Key and value of each message.
    pub records: Vec<(String, Vec<u8>)>,
}

impl Message for ProduceRecords {
    type Result = ();
}

/// Answered once every message sent to the producer before it is handled, i.e. handed to
/// librdkafka: the shutdown sends it before it flushes librdkafka.
#[derive(Debug)]
pub struct Barrier;

impl Message for Barrier {
    type Result = ();
}

/// Owns the rdkafka producer. Delivery reports are awaited on this actor's arbiter.
pub struct KafkaProducer {
    depth: MailboxDepth,
    producer: Producer,
    topics: Topics,
    chunk_size: usize,
}

impl KafkaProducer {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "kafka_producer";

    /// A producer actor publishing with `producer`.
    pub fn new(producer: Producer, config: &KafkaConfig) -> Self {
        KafkaProducer {
            depth: MailboxDepth::new(Self::MAILBOX),
            producer,
            topics: config.topics.clone(),
            chunk_size: config.attachment_chunk_size,
        }
    }

    fn topic_name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Events => &self.topics.events,
            Topic::Attachments => &self.topics.attachments,
            Topic::Outcomes => &self.topics.outcomes,
            Topic::Issues => &self.topics.issues,
        }
    }
}

impl Actor for KafkaProducer {
    type Context = Context<Self>;
}

impl Handler<ProduceEnvelope> for KafkaProducer {
    type Result = ();

    fn handle(&mut self, ProduceEnvelope(mut envelope): ProduceEnvelope, _ctx: &mut Self::Context) {
        self.depth.received();
        let messages = build_messages(&envelope, self.chunk_size, EventId::new);
        let mut deliveries = Vec::with_capacity(messages.len());
        for message in &messages {
            let topic = self.topic_name(message.topic).to_owned();
            let record = FutureRecord::to(&topic)
                .key(&message.key)
                .payload(&message.payload);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push((topic, delivery)),
                Err((error, _)) => {
                    // Messages already queued for this envelope are still delivered; the client
                    // retries the whole envelope, and consumers drop duplicates by event id.
                    envelope.reject(enqueue_rejection(&error));
                    return;
                }
            }
        }
        envelope.handed_to_kafka();
        // A task of the arbiter, not of the actor's context: a context polls every future
        // spawned into it whenever it wakes, so hundreds of envelopes awaiting delivery made
        // each message cost hundreds of polls. The runtime polls only the tasks woken.
        actix::spawn(await_deliveries(envelope, deliveries));
    }
}

impl Handler<ProduceRecords> for KafkaProducer {
    type Result = ();

    fn handle(&mut self, message: ProduceRecords, _ctx: &mut Self::Context) {
        self.depth.received();
        let topic = self.topic_name(message.topic).to_owned();
        let messages = message.records;
        let mut deliveries = Vec::with_capacity(messages.len());
        for (key, payload) in &messages {
            match self
                .producer
                .send_result(FutureRecord::to(&topic).key(key).payload(payload))
            {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => {
                    // Statistics, not data: count the loss, never block on it.
                    tracing::warn!(%error, %topic, "cannot enqueue a statistics message");
                    metrics::count_kafka_delivery(&topic, false);
                }
            }
        }
        let count = async move {
            for report in join_all(deliveries).await {
                metrics::count_kafka_delivery(&topic, matches!(report, Ok(Ok(_))));
            }
        };
        actix::spawn(count);
    }
}

impl Handler<Barrier> for KafkaProducer {
    type Result = ();

    fn handle(&mut self, _: Barrier, _ctx: &mut Self::Context) {
        self.depth.received();
    }
}

/// Waits for every delivery report, then answers the request.
async fn await_deliveries(
    envelope: ManagedEnvelope,
    deliveries: Vec<(String, rdkafka::producer::DeliveryFuture)>,
) {
    let (topics, futures): (Vec<_>, Vec<_>) = deliveries.into_iter().unzip();
    let mut failure = None;
    for (topic, report) in topics.iter().zip(join_all(futures).await) {
        let delivered = matches!(report, Ok(Ok(_)));
        metrics::count_kafka_delivery(topic, delivered);
        if !delivered && failure.is_none() {
            failure = Some(match report {
                Ok(Err((error, _))) => (error.to_string(), is_outage(&error)),
                _ => ("producer shut down before delivery".to_owned(), false),
            });
        }
    }
    match failure {
        None => envelope.accept(),
        Some((error, outage)) => {
            if outage {
                // The outage log (kafka/context.rs) reports the brokers being unreachable once;
                // a line per envelope would repeat it thousands of times in a long outage.
                tracing::debug!(%error, "Kafka delivery failed; the client is told to retry");
            } else {
                tracing::warn!(%error, "Kafka delivery failed; the client is told to retry");
            }
            metrics::count_rejection("kafka_delivery");
            envelope.reject(Rejection::Delivery(error));
        }
    }
}

/// A delivery that failed because the brokers could not be reached in time.
fn is_outage(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut)
        || crate::kafka::context::is_unreachable(error)
}

fn enqueue_rejection(error: &KafkaError) -> Rejection {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => {
            metrics::count_rejection("overloaded");
            Rejection::Overloaded {
                stage: "kafka producer queue",
            }
        }
        _ => {
            tracing::error!(%error, "cannot enqueue Kafka message");
            metrics::count_rejection("kafka_enqueue");
            Rejection::Delivery(error.to_string())
        }
    }
}
