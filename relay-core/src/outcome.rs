//! Outcomes: what happened to each item a client sent.

use std::fmt;

use serde::{Serialize, Serializer};

/// The fate of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Published to Kafka.
    Accepted,
    /// Dropped by an inbound filter.
    Filtered,
    /// Dropped by a quota.
    RateLimited,
    /// Refused as malformed or too large.
    Invalid,
    /// Dropped by the client itself, as its client reports say.
    ClientDiscard,
}

impl Outcome {
    /// The name used on the outcomes topic and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Filtered => "filtered",
            Outcome::RateLimited => "rate_limited",
            Outcome::Invalid => "invalid",
            Outcome::ClientDiscard => "client_discard",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
