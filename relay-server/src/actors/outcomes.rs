//! The OutcomeAggregator: counts what happened to every item and publishes the counts.
//!
//! Outcomes (accepted, filtered, rate limited, invalid, client discard) arrive as
//! [`TrackOutcome`] messages from the intake and the spool reader. They are summed per minute
//! and (project, key, category, outcome, reason), counted in `/metrics`, and published to the
//! outcomes topic every `outcomes.flush_interval_secs` (earlier when `outcomes.max_buckets`
//! distinct counters are open). Counts for one minute may arrive in several messages: sum them.
//! In forward mode there is no Kafka: the counts are in `/metrics` only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use relay_core::config::OutcomesConfig;
use relay_core::{DataCategory, Outcome};

use super::kafka_producer::{KafkaProducer, ProduceRecords};
use super::{Mailbox, MailboxDepth};
use crate::kafka::messages::outcomes::{outcome_message, OutcomeCount};
use crate::kafka::messages::Topic;
use crate::metrics;

/// One outcome for `quantity` units of `category`.
#[derive(Debug, Clone)]
pub struct TrackOutcome {
    /// The project.
    pub project_id: u64,
    /// The public key, when known.
    pub key: Option<String>,
    /// What was counted.
    pub category: DataCategory,
    /// What happened.
    pub outcome: Outcome,
    /// Why (for all but `accepted`).
    pub reason: Option<String>,
    /// Units: items, or bytes for `attachment`.
    pub quantity: u64,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
}

impl Message for TrackOutcome {
    type Result = ();
}

/// Publishes the counts summed so far: sent at shutdown while the producer still runs.
#[derive(Debug)]
pub struct FlushOutcomes;

impl Message for FlushOutcomes {
    type Result = ();
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BucketKey {
    minute: DateTime<Utc>,
    project_id: u64,
    key: Option<String>,
    category: DataCategory,
    outcome: Outcome,
    reason: Option<String>,
}

/// Sums outcomes and publishes them; see the module docs.
pub struct OutcomeAggregator {
    depth: MailboxDepth,
    buckets: BTreeMap<BucketKey, u64>,
    config: OutcomesConfig,
    /// None in forward mode.
    producer: Option<Mailbox<KafkaProducer>>,
    /// This relay's name on the outcome messages.
    instance_id: Arc<str>,
}

impl OutcomeAggregator {
    /// Name of this actor's mailbox in metrics.
    pub const MAILBOX: &'static str = "outcomes";

    /// An aggregator publishing through `producer` (counting in `/metrics` only without one),
    /// as `instance_id`.
    pub fn new(
        config: OutcomesConfig,
        producer: Option<Mailbox<KafkaProducer>>,
        instance_id: Arc<str>,
    ) -> Self {
        OutcomeAggregator {
            depth: MailboxDepth::new(Self::MAILBOX),
            buckets: BTreeMap::new(),
            config,
            producer,
            instance_id,
        }
    }

    fn flush(&mut self) {
        if self.buckets.is_empty() {
            return;
        }
        let buckets = std::mem::take(&mut self.buckets);
        let Some(producer) = &self.producer else {
            return;
        };
        let messages = buckets
            .iter()
            .map(|(key, quantity)| {
                let message = outcome_message(&OutcomeCount {
                    minute: key.minute,
                    project_id: key.project_id,
                    key: key.key.as_deref(),
                    category: key.category,
                    outcome: key.outcome,
                    reason: key.reason.as_deref(),
                    quantity: *quantity,
                    instance_id: &self.instance_id,
                });
                (message.key, message.payload)
            })
            .collect();
        let records = ProduceRecords {
            topic: Topic::Outcomes,
            records: messages,
        };
        if producer.try_send(records).is_err() {
            // The producer is busy: keep the counts and try again at the next flush.
            tracing::debug!("outcomes: producer busy; keeping counts for the next flush");
            self.buckets = buckets;
        }
    }
}

impl Actor for OutcomeAggregator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = Duration::from_secs(self.config.flush_interval_secs);
        ctx.run_interval(interval, |this, _| this.flush());
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        self.flush();
        Running::Stop
    }
}

impl Handler<TrackOutcome> for OutcomeAggregator {
    type Result = ();

    fn handle(&mut self, outcome: TrackOutcome, _ctx: &mut Self::Context) {
        self.depth.received();
        metrics::count_outcome(
            outcome.outcome,
            outcome.category,
            outcome.reason.as_deref(),
            outcome.quantity,
        );
        let minute = outcome
            .timestamp
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(outcome.timestamp);
        let key = BucketKey {
            minute,
            project_id: outcome.project_id,
            key: outcome.key,
            category: outcome.category,
            outcome: outcome.outcome,
            reason: outcome.reason,
        };
        *self.buckets.entry(key).or_default() += outcome.quantity;
        if self.buckets.len() >= self.config.max_buckets {
            self.flush();
        }
    }
}

impl Handler<FlushOutcomes> for OutcomeAggregator {
    type Result = ();

    fn handle(&mut self, _: FlushOutcomes, _ctx: &mut Self::Context) {
        self.depth.received();
        self.flush();
    }
}

/// The sending side, cloned into every place that produces outcomes.
#[derive(Clone)]
pub struct Outcomes {
    mailbox: Mailbox<OutcomeAggregator>,
}

impl Outcomes {
    /// Wraps the aggregator's mailbox.
    pub fn new(mailbox: Mailbox<OutcomeAggregator>) -> Self {
        Outcomes { mailbox }
    }

    /// Publishes the counts summed so far and waits until the aggregator has handed them to
    /// the producer's mailbox.
    pub async fn flush(&self) {
        if self.mailbox.send(FlushOutcomes).await.is_err() {
            tracing::debug!("outcomes: the aggregator stopped before the final flush");
        }
    }

    /// Records an outcome; when the aggregator is overwhelmed the outcome is counted in
    /// `relay_outcomes_dropped_total` instead (the data itself is unaffected).
    pub fn track(&self, outcome: TrackOutcome) {
        if self.mailbox.try_send(outcome).is_err() {
            metrics::count_outcome_dropped();
        }
    }

    /// Records the same outcome for every category an item counts towards.
    pub fn track_item(
        &self,
        scope: (u64, Option<&str>),
        categories: &[(DataCategory, u64)],
        outcome: Outcome,
        reason: Option<&str>,
    ) {
        let timestamp = Utc::now();
        for &(category, quantity) in categories {
            self.track(TrackOutcome {
                project_id: scope.0,
                key: scope.1.map(str::to_owned),
                category,
                outcome,
                reason: reason.map(str::to_owned),
                quantity,
                timestamp,
            });
        }
    }
}
