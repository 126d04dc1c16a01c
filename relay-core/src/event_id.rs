//! Event identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The id of an event: a UUID, written on the wire as 32 lowercase hex digits.
///
/// SDKs send either the simple form or, like sentry-cli and the Rust SDK, the hyphenated form;
/// both parse to the same id. It is always written back in the simple form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

/// The string was not a UUID in simple or hyphenated form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid event id {0:?}: expected 32 hex digits or a hyphenated UUID")]
pub struct InvalidEventId(pub String);

impl EventId {
    /// A new random event id.
    pub fn new() -> Self {
        EventId(Uuid::new_v4())
    }

    /// The hyphenated form, which Breakpad and Crashpad uploaders expect in responses.
    pub fn hyphenated(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `Uuid::parse_str` also accepts braced and URN forms; only the two SDK forms are valid.
        let well_formed = match s.len() {
            32 => s.bytes().all(|b| b.is_ascii_hexdigit()),
            36 => s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            }),
            _ => false,
        };
        if !well_formed {
            return Err(InvalidEventId(s.to_owned()));
        }
        Uuid::parse_str(s)
            .map(EventId)
            .map_err(|_| InvalidEventId(s.to_owned()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_hyphenated_forms_are_the_same_id() {
        let simple: EventId = "8be12c149f1d40de8c80ed204da87a62".parse().unwrap();
        let hyphenated: EventId = "8be12c14-9f1d-40de-8c80-ed204da87a62".parse().unwrap();
        assert_eq!(simple, hyphenated);
        assert_eq!(hyphenated.to_string(), "8be12c149f1d40de8c80ed204da87a62");
        assert_eq!(simple.hyphenated(), "8be12c14-9f1d-40de-8c80-ed204da87a62");
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "",
            "xyz",
            "8be12c149f1d40de8c80ed204da87a6",
            "{8be12c14-9f1d-40de-8c80-ed204da87a62}",
            "8be12c14-9f1d-40de-8c80ed204da87a62x",
            "zbe12c149f1d40de8c80ed204da87a62",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad} should be rejected");
        }
    }
}
