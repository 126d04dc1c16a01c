//! Limits of normalization, as an operator configures them: part of the configuration
//! schema, in relay-core.

pub use relay_core::config::NormalizeConfig;
