//! The EventProcessor: the last step before Kafka. It scrubs PII, groups events into issues
//! and publishes windowed issue counts.
//!
//! It runs after the Symbolicator, so scrubbing sees the final frames and grouping uses
//! symbolicated function names. Each event gets its fingerprint hash as `group_id` (carried on
//! its Kafka message); events (not transactions) are counted per (project, group) in windows of
//! `processing.aggregator.window_secs`, published to the issues topic when a window closes (a
//! timer checks every second) or when a window reaches its cap of groups.
//!
//! Each pipeline lane has its own EventProcessor; they count into one set of windows
//! ([`SharedWindows`]), so an issue's window is published once whatever lane its events took.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use relay_core::ItemType;
use relay_processing::aggregate::{Aggregator as IssueWindows, IssueAggregate, IssueEvent};
use relay_processing::grouping::fingerprint;
use relay_processing::normalize::unix_seconds;

use super::kafka_producer::{KafkaProducer, ProduceEnvelope, ProduceRecords};
use super::{envelope_message, Mailbox, MailboxDepth};
use crate::kafka::messages::issues::issue_message;
use crate::kafka::messages::Topic;
use crate::managed::ManagedEnvelope;
use crate::processing::{LiveProcessing, ProcessingSettings};

envelope_message!(
    /// Scrubs, groups and counts the envelope's event.
    ProcessEvent
);

/// Publishes every open issue window now: sent at shutdown while the producer still runs.
/// The windows are shared, so one lane's EventProcessor flushes them for all lanes.
#[derive(Debug)]
pub struct FlushWindows;

impl Message for FlushWindows {
    type Result = ();
}

/// The issue windows every lane's EventProcessor counts into. The lock is held only to add one
/// event or to take the closed windows out.
#[derive(Clone)]
pub struct SharedWindows(Arc<Mutex<IssueWindows>>);

impl SharedWindows {
    /// Empty windows with the configured length and cap.
    pub fn new(settings: &ProcessingSettings) -> Self {
        SharedWindows(Arc::new(Mutex::new(IssueWindows::new(settings.aggregator))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IssueWindows> {
        // Adding and flushing leave the windows consistent even if a holder panicked.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Scrubs PII, groups and counts events; see the module docs.
pub struct EventProcessor {
    depth: MailboxDepth,
    settings: LiveProcessing,
    windows: SharedWindows,
    next: Mailbox<KafkaProducer>,
    /// This relay's name on the issue messages.
    instance_id: Arc<str>,
}

impl EventProcessor {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "event_processor";

    /// A processor counting into `windows` and forwarding to the producer; its issue
    /// messages carry `instance_id`.
    pub fn new(
        settings: LiveProcessing,
        windows: SharedWindows,
        next: Mailbox<KafkaProducer>,
        instance_id: Arc<str>,
    ) -> Self {
        EventProcessor {
            depth: MailboxDepth::new(Self::MAILBOX),
            settings,
            windows,
            next,
            instance_id,
        }
    }

    /// Scrubs and groups the event; returns issue windows closed by adding it.
    fn process(&mut self, envelope: &mut ManagedEnvelope) -> Vec<IssueAggregate> {
        let project_id = envelope.meta.project_id;
        let Some(event) = envelope.event.as_mut() else {
            return Vec::new();
        };
        let scrubbed = self.settings.current().project(project_id).pii.scrub(event);
        if scrubbed > 0 {
            crate::metrics::count_pii_scrubbed(scrubbed);
        }
        let is_transaction = envelope
            .envelope
            .event_item()
            .is_some_and(|item| item.ty() == &ItemType::Transaction);
        let (Some(event_id), false) = (envelope.event_id, is_transaction) else {
            return Vec::new();
        };
        let fingerprint = fingerprint(event);
        let issue = IssueEvent::from_event(project_id, event_id, event, &fingerprint);
        envelope.group_id = Some(fingerprint.hash);
        self.windows.lock().add(issue, now())
    }

    fn publish(&self, issues: Vec<IssueAggregate>) {
        if issues.is_empty() {
            return;
        }
        let records = issues
            .iter()
            .map(|issue| {
                let message = issue_message(issue, &self.instance_id);
                (message.key, message.payload)
            })
            .collect();
        let records = ProduceRecords {
            topic: Topic::Issues,
            records,
        };
        if self.next.try_send(records).is_err() {
            // Aggregates are statistics: a full producer loses this window's counts, counted.
            crate::metrics::count_rejection("issues_dropped");
            tracing::warn!(
                count = issues.len(),
                "producer busy: issue aggregates dropped"
            );
        }
    }
}

fn now() -> f64 {
    unix_seconds(chrono::Utc::now())
}

impl Actor for EventProcessor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_secs(1), |this, _| {
            let closed = this.windows.lock().flush(now());
            this.publish(closed);
        });
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        // Normally empty: the shutdown sent FlushWindows before stopping the producer.
        let open = self.windows.lock().flush_all();
        self.publish(open);
        Running::Stop
    }
}

impl Handler<FlushWindows> for EventProcessor {
    type Result = ();

    fn handle(&mut self, _: FlushWindows, _ctx: &mut Self::Context) {
        self.depth.received();
        let open = self.windows.lock().flush_all();
        self.publish(open);
    }
}

impl Handler<ProcessEvent> for EventProcessor {
    type Result = ();

    fn handle(&mut self, ProcessEvent(mut envelope): ProcessEvent, _ctx: &mut Self::Context) {
        self.depth.received();
        let closed = self.process(&mut envelope);
        self.publish(closed);
        self.next.forward(ProduceEnvelope(envelope));
    }
}
