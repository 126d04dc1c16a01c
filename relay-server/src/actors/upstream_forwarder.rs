//! The UpstreamForwarder (forward mode): sends each spooled envelope to the upstream.
//!
//! It takes the place of the whole processing pipeline: the spool reader hands it envelopes
//! ([`ForwardEnvelope`]) and waits for their verdicts, so an entry is released only once the
//! upstream answered 2xx. Each envelope is forwarded by a task of its own; at most
//! `upstream.max_concurrent` of them have a request open ([`UpstreamClient`]), and at most the
//! reader's `pipeline.max_in_flight` exist, since each holds a reader slot until its verdict.

use std::sync::Arc;

use actix::prelude::*;

use super::{envelope_message, MailboxDepth};
use crate::upstream::UpstreamClient;

envelope_message!(
    /// Forwards the envelope to the upstream.
    ForwardEnvelope
);

/// Forwards envelopes; see the module docs.
pub struct UpstreamForwarder {
    depth: MailboxDepth,
    client: Arc<UpstreamClient>,
}

impl UpstreamForwarder {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "upstream_forwarder";

    /// A forwarder sending through `client`.
    pub fn new(client: UpstreamClient) -> Self {
        UpstreamForwarder {
            depth: MailboxDepth::new(Self::MAILBOX),
            client: Arc::new(client),
        }
    }
}

impl Actor for UpstreamForwarder {
    type Context = Context<Self>;
}

impl Handler<ForwardEnvelope> for UpstreamForwarder {
    type Result = ();

    fn handle(&mut self, ForwardEnvelope(envelope): ForwardEnvelope, _ctx: &mut Self::Context) {
        self.depth.received();
        let client = self.client.clone();
        // A task of the arbiter, not of the actor's context (see the KafkaProducer): the
        // runtime polls only the requests whose answers arrived.
        actix::spawn(async move { client.forward(envelope).await });
    }
}
