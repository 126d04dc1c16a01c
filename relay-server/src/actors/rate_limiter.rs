//! The RateLimiter: first stage after intake.
//!
//! Quotas arrive with the rate-limit issue; today every envelope passes on to the Normalizer.
//! The stage exists so its place in the pipeline, its mailbox and its metrics are real.

use actix::prelude::*;

use super::normalizer::{NormalizeEnvelope, Normalizer};
use super::{envelope_message, Mailbox, MailboxDepth};

envelope_message!(
    /// Checks an envelope against the project's quotas.
    CheckRateLimits
);

/// Applies quotas (pass-through until quotas are configured).
pub struct RateLimiter {
    depth: MailboxDepth,
    next: Mailbox<Normalizer>,
}

impl RateLimiter {
    /// Name of this stage's mailbox in metrics and errors.
    pub const MAILBOX: &'static str = "rate_limiter";

    /// A rate limiter forwarding to `next`.
    pub fn new(next: Mailbox<Normalizer>) -> Self {
        RateLimiter {
            depth: MailboxDepth::new(Self::MAILBOX),
            next,
        }
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;
}

impl Handler<CheckRateLimits> for RateLimiter {
    type Result = ();

    fn handle(&mut self, CheckRateLimits(envelope): CheckRateLimits, _ctx: &mut Self::Context) {
        self.depth.received();
        self.next.forward(NormalizeEnvelope(envelope));
    }
}
