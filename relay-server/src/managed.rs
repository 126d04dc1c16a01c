//! [`ManagedEnvelope`]: an accepted request travelling through the pipeline.
//!
//! It carries the parsed envelope, the request's metadata and the channel on which the spool
//! reader learns the verdict. Whoever ends its journey calls [`ManagedEnvelope::accept`] or
//! [`ManagedEnvelope::reject`]; if it is dropped without either, the verdict is an internal
//! failure instead of silence. It may also hold the spool reader's in-flight slot
//! ([`ManagedEnvelope::hold_slot`]), given back once its messages are queued in librdkafka or
//! its journey ends.
//!
//! Its [`Route`] is decided once, when it enters the pipeline: the lane it belongs to and
//! whether it goes through native symbolication. The stages read the route; none decides it
//! again.
//!
//! [`Scoping`] says who a request counts against (project, key, organization), for quotas and
//! outcomes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use relay_core::{Envelope, EventId};
use serde_json::Value;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::spool::entry::SdkHeaders;
use crate::symbols::minidump_item;

/// Who a request counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scoping {
    /// The project.
    pub project_id: u64,
    /// The public key used.
    pub public_key: String,
    /// The project's organization, if configured.
    pub organization: Option<u64>,
    /// The sender's address, when known (for IP filters and `{{auto}}` user IPs downstream).
    pub client_ip: Option<IpAddr>,
}

/// Who sent a request and when.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The project from the URL, authenticated by `public_key`.
    pub project_id: u64,
    /// The client's public key.
    pub public_key: String,
    /// When the request arrived.
    pub received: DateTime<Utc>,
    /// The client's address, when known.
    pub client_ip: Option<IpAddr>,
    /// The envelope's `sent_at` header, for clock-drift correction.
    pub sent_at: Option<DateTime<Utc>>,
    /// The SDK's request headers, kept in forward mode to go upstream with the envelope.
    pub sdk: SdkHeaders,
}

#[cfg(test)]
impl RequestMeta {
    /// A request for `project_id` received now, with no key, address or `sent_at`.
    pub fn for_test(project_id: u64) -> Self {
        RequestMeta {
            project_id,
            public_key: String::new(),
            received: Utc::now(),
            client_ip: None,
            sent_at: None,
            sdk: SdkHeaders::default(),
        }
    }
}

/// How the pipeline finished with an envelope.
#[derive(Debug)]
pub enum Verdict {
    /// Every message made from the envelope was delivered to Kafka (in forward mode: the
    /// upstream answered 2xx).
    Accepted,
    /// The envelope was refused.
    Rejected(Rejection),
}

/// Why the pipeline refused an envelope.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Rejection {
    /// A stage's mailbox or gate was full: back-pressure; retried from the spool.
    #[error("the {stage} stage is at capacity; retry later")]
    Overloaded {
        /// The stage that was full.
        stage: &'static str,
    },
    /// The event is invalid; dropped and counted.
    #[error("{0}")]
    Invalid(String),
    /// Kafka did not confirm delivery; retried from the spool.
    #[error("publishing to Kafka failed: {0}")]
    Delivery(String),
    /// An inbound filter dropped the event (the filter's name); counted as `filtered`.
    #[error("filtered by {0}")]
    Filtered(&'static str),
    /// The upstream could not be reached, timed out or answered 5xx; retried from the spool
    /// with backoff.
    #[error("forwarding upstream failed: {0}")]
    Upstream(String),
    /// The upstream refused the envelope for its content or its key (a 4xx other than 429):
    /// dropped, counted as `invalid`, with the upstream's reason.
    #[error("the upstream refused the envelope: {0}")]
    UpstreamRefused(String),
    /// The upstream answered 429: dropped, counted as `rate_limited` with the limit's reason
    /// (its limits are remembered and answered at the edge).
    #[error("rate limited by the upstream ({0})")]
    RateLimited(String),
    /// The envelope was dropped by a failing stage.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// An envelope's way through the pipeline, decided when it enters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The lane whose spool reader took the envelope. It finishes on that lane's EventProcessor
    /// and KafkaProducer, whichever shared stages (SymbolFetcher, Symbolicator) it visits.
    pub lane: usize,
    /// Whether it has an event and a minidump: it goes through the SymbolFetcher and the
    /// Symbolicator walks its crash.
    pub native: bool,
}

impl Route {
    /// The route of `envelope`, with `event` parsed from it, read by lane `lane`.
    fn decide(envelope: &Envelope, event: Option<&Value>, lane: usize) -> Self {
        Route {
            lane,
            native: event.is_some() && minidump_item(envelope).is_some(),
        }
    }
}

/// An envelope admitted into the pipeline. See the module docs.
#[derive(Debug)]
pub struct ManagedEnvelope {
    /// The envelope as received.
    pub envelope: Envelope,
    /// Who sent it and when.
    pub meta: RequestMeta,
    /// The event item's payload, parsed at intake and normalized by the Normalizer.
    pub event: Option<Value>,
    /// The event id, known after normalization.
    pub event_id: Option<EventId>,
    /// The event's issue (fingerprint hash), known after grouping.
    pub group_id: Option<String>,
    /// Its way through the pipeline, decided when it entered.
    pub route: Route,
    reply: Option<oneshot::Sender<Verdict>>,
    slot: Option<OwnedSemaphorePermit>,
}

impl ManagedEnvelope {
    /// Wraps an envelope read by lane `lane` and decides its [`Route`]; the receiver gets the
    /// verdict.
    pub fn new(
        envelope: Envelope,
        meta: RequestMeta,
        event: Option<Value>,
        lane: usize,
    ) -> (Self, oneshot::Receiver<Verdict>) {
        let (tx, rx) = oneshot::channel();
        let managed = ManagedEnvelope {
            event_id: envelope.headers.event_id,
            group_id: None,
            route: Route::decide(&envelope, event.as_ref(), lane),
            envelope,
            meta,
            event,
            reply: Some(tx),
            slot: None,
        };
        (managed, rx)
    }

    /// Holds the spool reader's in-flight slot for this envelope until
    /// [`ManagedEnvelope::handed_to_kafka`] or the end of its journey.
    pub fn hold_slot(&mut self, slot: OwnedSemaphorePermit) {
        self.slot = Some(slot);
    }

    /// Called once the envelope's Kafka messages are built and queued in librdkafka: only the
    /// delivery reports are still to come. Frees the event tree and the items (a tree just
    /// serialized is still in the CPU's caches; freeing it after the delivery wait cost more),
    /// and gives back the reader's slot, so that the wait for delivery does not hold back the
    /// processing of the next envelopes.
    pub fn handed_to_kafka(&mut self) {
        self.event = None;
        self.envelope.items = Vec::new();
        self.slot = None;
    }

    /// Ends the journey successfully.
    pub fn accept(mut self) {
        self.answer(Verdict::Accepted);
    }

    /// Ends the journey with a refusal.
    pub fn reject(mut self, rejection: Rejection) {
        tracing::debug!(project = self.meta.project_id, %rejection, "envelope rejected");
        self.answer(Verdict::Rejected(rejection));
    }

    fn answer(&mut self, verdict: Verdict) {
        if let Some(reply) = self.reply.take() {
            // The waiting side may have gone away (shutdown); nothing is left to tell then.
            let _ = reply.send(verdict);
        }
    }
}

/// Set once the relay stops its actors at shutdown. Envelopes dropped with them are expected
/// then (their spool entries are not released, so they are published after the next start)
/// and are not logged one by one: the shutdown logs how many entries wait in the spool.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Marks the pipeline as stopping: from now on a dropped envelope is not an error.
pub fn pipeline_stopping() {
    STOPPING.store(true, Ordering::Relaxed);
}

impl Drop for ManagedEnvelope {
    fn drop(&mut self) {
        if self.reply.is_some() {
            if STOPPING.load(Ordering::Relaxed) {
                tracing::debug!(
                    project = self.meta.project_id,
                    "envelope dropped at shutdown"
                );
            } else {
                tracing::error!(
                    project = self.meta.project_id,
                    "envelope dropped without a verdict"
                );
            }
            self.answer(Verdict::Rejected(Rejection::Internal(
                "envelope dropped by a pipeline stage",
            )));
        }
    }
}
