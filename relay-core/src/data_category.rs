//! Data categories: what quotas count and what outcomes are counted in.
//!
//! Names follow the Sentry protocol, so the `X-Sentry-Rate-Limits` header speaks the SDKs'
//! language (sentry-python calls log items `log_item`, for example).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::ItemType;

/// A data category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataCategory {
    /// Events without a more specific category.
    Default,
    /// Error and message events.
    Error,
    /// Transactions.
    Transaction,
    /// Browser security reports.
    Security,
    /// Attachment bytes.
    Attachment,
    /// Attachment count.
    AttachmentItem,
    /// Release-health sessions.
    Session,
    /// Log records.
    LogItem,
    /// Log bytes (counted by SDKs in client reports).
    LogByte,
    /// Cron check-ins.
    Monitor,
    /// Spans.
    Span,
    /// Profiles.
    Profile,
    /// Continuous-profiling chunks.
    ProfileChunk,
    /// Trace metrics (counted by SDKs in client reports).
    TraceMetric,
    /// Trace metric bytes (counted by SDKs in client reports).
    TraceMetricByte,
    /// Session replays.
    Replay,
    /// User feedback.
    Feedback,
    /// SDK-internal data (client reports).
    Internal,
}

const ALL: [(DataCategory, &str); 18] = [
    (DataCategory::Default, "default"),
    (DataCategory::Error, "error"),
    (DataCategory::Transaction, "transaction"),
    (DataCategory::Security, "security"),
    (DataCategory::Attachment, "attachment"),
    (DataCategory::AttachmentItem, "attachment_item"),
    (DataCategory::Session, "session"),
    (DataCategory::LogItem, "log_item"),
    (DataCategory::LogByte, "log_byte"),
    (DataCategory::Monitor, "monitor"),
    (DataCategory::Span, "span"),
    (DataCategory::Profile, "profile"),
    (DataCategory::ProfileChunk, "profile_chunk"),
    (DataCategory::TraceMetric, "trace_metric"),
    (DataCategory::TraceMetricByte, "trace_metric_byte"),
    (DataCategory::Replay, "replay"),
    (DataCategory::Feedback, "feedback"),
    (DataCategory::Internal, "internal"),
];

impl DataCategory {
    /// The protocol name.
    pub fn as_str(self) -> &'static str {
        ALL.iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .expect("every category is named")
    }

    /// The categories an item counts towards, with the quantity for each.
    ///
    /// Attachments count twice: their bytes (`attachment`) and once as an item
    /// (`attachment_item`). Unknown item types count towards nothing and are never limited.
    pub fn for_item(ty: &ItemType, payload_len: usize) -> Vec<(DataCategory, u64)> {
        let one = |category| vec![(category, 1)];
        match ty {
            ItemType::Event => one(DataCategory::Error),
            ItemType::Transaction => one(DataCategory::Transaction),
            ItemType::Security => one(DataCategory::Security),
            ItemType::Attachment => vec![
                (DataCategory::Attachment, payload_len as u64),
                (DataCategory::AttachmentItem, 1),
            ],
            ItemType::Session | ItemType::Sessions => one(DataCategory::Session),
            ItemType::Log => one(DataCategory::LogItem),
            ItemType::CheckIn => one(DataCategory::Monitor),
            ItemType::Span => one(DataCategory::Span),
            ItemType::Profile => one(DataCategory::Profile),
            ItemType::ReplayEvent | ItemType::ReplayRecording => one(DataCategory::Replay),
            // SDKs count legacy user reports as `default`.
            ItemType::UserReport => one(DataCategory::Default),
            ItemType::Feedback => one(DataCategory::Feedback),
            ItemType::ClientReport => one(DataCategory::Internal),
            ItemType::FormData | ItemType::Unknown(_) => Vec::new(),
        }
    }
}

/// A name that is not a data category.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown data category {0:?}")]
pub struct UnknownCategory(pub String);

impl FromStr for DataCategory {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept the item-type spellings people write in configs, too.
        let name = match s {
            "log" => "log_item",
            "check_in" => "monitor",
            "user_report_v2" => "feedback",
            "client_report" => "internal",
            other => other,
        };
        ALL.iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DataCategory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DataCategory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for (category, name) in ALL {
            assert_eq!(category.as_str(), name);
            assert_eq!(name.parse::<DataCategory>(), Ok(category));
        }
        assert_eq!("log".parse(), Ok(DataCategory::LogItem));
        assert_eq!("check_in".parse(), Ok(DataCategory::Monitor));
        assert!("errors".parse::<DataCategory>().is_err());
    }

    #[test]
    fn item_categories() {
        assert_eq!(
            DataCategory::for_item(&ItemType::Event, 10),
            vec![(DataCategory::Error, 1)]
        );
        assert_eq!(
            DataCategory::for_item(&ItemType::Attachment, 300),
            vec![
                (DataCategory::Attachment, 300),
                (DataCategory::AttachmentItem, 1)
            ]
        );
        assert_eq!(
            DataCategory::for_item(&ItemType::CheckIn, 1),
            vec![(DataCategory::Monitor, 1)]
        );
        assert!(DataCategory::for_item(&ItemType::Unknown("x".into()), 1).is_empty());
    }
}
