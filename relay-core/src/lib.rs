//! Protocol and domain types of the relay.
//!
//! This crate holds what the other crates agree on: Sentry envelopes and their items, event
//! ids, client authentication, data categories and outcomes, and the configuration schema. It performs no I/O.
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod data_category;
pub mod envelope;
pub mod event_id;
pub mod outcome;

pub use auth::{Auth, AuthError, Dsn};
pub use config::{Config, ConfigError};
pub use data_category::DataCategory;
pub use envelope::{Envelope, EnvelopeError, EnvelopeHeaders, Item, ItemHeaders, ItemType};
pub use event_id::EventId;
pub use outcome::Outcome;
