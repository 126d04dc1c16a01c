//! PII scrubbing options of a project, as an operator configures them: part of the
//! configuration schema, in relay-core.

pub use relay_core::config::PiiConfig;
