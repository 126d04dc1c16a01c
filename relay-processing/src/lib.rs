//! CPU-bound, pure logic of the relay: no actors, no network.
//!
//! - [`aggregate`]: windowed per-(project, fingerprint) issue counts.
//! - [`decode`]: bounded decompression of request bodies and compressed containers.
//! - [`filter`]: inbound filters (localhost, browser extensions, crawlers, globs, IP lists).
//! - [`grouping`]: the stable fingerprint that groups events into issues; titles, culprits.
//! - [`minidump`]: recognising minidumps inside their optional compression wrapper.
//! - [`normalize`]: event normalization: ids, timestamps, tags, stack traces, trimming.
//! - [`pii`]: PII scrubbing (secrets by key name, card numbers, tokens, URL passwords).
//! - [`sourcemap`]: JavaScript frames resolved through source maps (artifact dirs, debug ids).
//! - [`symbolicate`]: native crashes: minidump stack walking and symbolication with debug files.
//! - [`uploads`]: the upload API's input: chunk forms, assemble requests, uploaded file kinds.
#![warn(missing_docs)]

pub mod aggregate;
pub mod decode;
pub mod filter;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod grouping;
pub mod intake;
pub mod minidump;
pub mod normalize;
pub mod pii;
pub mod sourcemap;
pub mod symbolicate;
#[cfg(test)]
mod test_rng;
#[cfg(test)]
mod test_support;
pub mod uploads;
