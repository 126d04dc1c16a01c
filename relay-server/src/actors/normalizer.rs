//! The Normalizer: drops filtered events and makes every other event well-formed before it is
//! symbolicated and published.
//!
//! Inbound filters run first, on the event as sent (a filtered event is answered as usual at
//! intake, counted as `filtered` with the filter's name, and never published); then the
//! normalization rules of `relay_processing::normalize`.

use actix::prelude::*;
use relay_core::ItemType;
use relay_processing::filter::{should_filter, FilterContext};
use relay_processing::normalize::{normalize_event_full, NormalizeContext, NormalizeOptions};

use super::symbol_fetcher::{FetchSymbols, SymbolFetcher};
use super::symbolicator::SymbolicatorGate;
use super::Mailbox;
use super::{envelope_message, MailboxDepth};
use crate::managed::{ManagedEnvelope, Rejection};
use crate::metrics;
use crate::processing::{LiveProcessing, ProcessingSettings};

envelope_message!(
    /// Filters and normalizes the envelope's event, if it has one.
    NormalizeEnvelope
);

/// Runs the inbound filters and normalization on each envelope's event.
///
/// Envelopes routed through native symbolication (those with a minidump) go on to the one
/// SymbolFetcher (shared by the lanes, so that a debug file is downloaded once); every other
/// envelope goes straight to the Symbolicator's gate. Either way it comes back to its own
/// lane's EventProcessor.
pub struct Normalizer {
    depth: MailboxDepth,
    settings: LiveProcessing,
    fetcher: Mailbox<SymbolFetcher>,
    gate: SymbolicatorGate,
}

impl Normalizer {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "normalizer";

    /// A normalizer forwarding minidumps to `fetcher` and everything else to `gate`.
    pub fn new(
        settings: LiveProcessing,
        fetcher: Mailbox<SymbolFetcher>,
        gate: SymbolicatorGate,
    ) -> Self {
        Normalizer {
            depth: MailboxDepth::new(Self::MAILBOX),
            settings,
            fetcher,
            gate,
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
        if let Err(rejection) = process(&mut envelope, &self.settings.current()) {
            let reason = match rejection {
                Rejection::Filtered(_) => "filtered",
                _ => "invalid_event",
            };
            metrics::count_rejection(reason);
            envelope.reject(rejection);
            return;
        }
        if envelope.route.native {
            self.fetcher.forward(FetchSymbols(envelope));
        } else {
            self.gate.forward(envelope);
        }
    }
}

fn process(envelope: &mut ManagedEnvelope, settings: &ProcessingSettings) -> Result<(), Rejection> {
    let Some(event) = envelope.event.as_mut() else {
        return Ok(());
    };
    let meta = &envelope.meta;
    let filters = &settings.project(meta.project_id).filters;
    let filter_context = FilterContext {
        client_ip: meta.client_ip,
    };
    should_filter(event, &filter_context, filters)
        .map_err(|reason| Rejection::Filtered(reason.name()))?;

    let is_transaction = envelope
        .envelope
        .event_item()
        .is_some_and(|item| item.ty() == &ItemType::Transaction);
    let ctx = NormalizeContext {
        received: meta.received,
        envelope_event_id: envelope.envelope.headers.event_id,
        is_transaction,
    };
    let options = NormalizeOptions {
        sent_at: meta.sent_at,
        client_ip: meta.client_ip,
        config: settings.normalize,
    };
    let event_id = normalize_event_full(event, &ctx, &options)
        .map_err(|e| Rejection::Invalid(format!("invalid event: {e}")))?;
    envelope.event_id = Some(event_id);
    Ok(())
}
