//! The Normalizer: makes every event well-formed before it is symbolicated and published.

use actix::prelude::*;
use relay_core::ItemType;
use relay_processing::normalize::{normalize_event, NormalizeContext};

use super::symbolicator::SymbolicatorGate;
use super::{envelope_message, MailboxDepth};
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;

envelope_message!(
    /// Normalizes the envelope's event, if it has one.
    NormalizeEnvelope
);

/// Runs [`normalize_event`] on each envelope's event.
pub struct Normalizer {
    depth: MailboxDepth,
    next: SymbolicatorGate,
}

impl Normalizer {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "normalizer";

    /// A normalizer forwarding to the symbolicator gate.
    pub fn new(next: SymbolicatorGate) -> Self {
        Normalizer {
            depth: MailboxDepth::new(Self::MAILBOX),
            next,
        }
    }
}

impl Actor for Normalizer {
    type Context = Context<Self>;
}

impl Handler<NormalizeEnvelope> for Normalizer {
    type Result = ();

    fn handle(
        &mut self,
        NormalizeEnvelope(mut envelope): NormalizeEnvelope,
        _ctx: &mut Self::Context,
    ) {
        self.depth.received();
        if let Err(rejection) = normalize(&mut envelope) {
            metrics::count_rejection("invalid_event");
            envelope.reject(rejection);
            return;
        }
        self.next.forward(envelope);
    }
}

fn normalize(envelope: &mut ManagedEnvelope) -> Result<(), Rejection> {
    let Some(event) = envelope.event.as_mut() else {
        return Ok(());
    };
    let is_transaction = envelope
        .envelope
        .event_item()
        .is_some_and(|item| item.ty() == &ItemType::Transaction);
    let ctx = NormalizeContext {
        received: envelope.meta.received,
        envelope_event_id: envelope.envelope.headers.event_id,
        is_transaction,
    };
    let event_id = normalize_event(event, &ctx)
        .map_err(|e| Rejection::Invalid(format!("invalid event: {e}")))?;
    envelope.event_id = Some(event_id);
    Ok(())
}
