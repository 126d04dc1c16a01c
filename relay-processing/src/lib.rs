//! CPU-bound, pure logic of the relay: no actors, no network.
//!
//! - [`decode`]: bounded decompression of request bodies and compressed containers.
//! - [`minidump`]: recognising minidumps inside their optional compression wrapper.
//! - [`normalize`]: the minimal event normalization every event gets.
//! - [`sourcemap`]: JavaScript frames resolved through source maps (artifact dirs, debug ids).
//! - [`symbolicate`]: native crashes: minidump stack walking and symbolication with debug files.
#![warn(missing_docs)]

pub mod decode;
pub mod minidump;
pub mod normalize;
pub mod sourcemap;
pub mod symbolicate;
