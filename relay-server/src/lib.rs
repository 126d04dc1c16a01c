//! The relay server: actors, HTTP endpoints, Kafka output, the spool and the CLI.
//!
//! The `relay` binary (`main.rs`) only calls [`cli::main`]. The modules are public so that
//! benchmarks (`benches/`) can drive single stages, such as the Kafka producer, on their own.

pub mod actors;
pub mod cli;
pub mod commands;
pub mod config;
pub mod endpoints;
pub mod kafka;
pub mod managed;
pub mod metrics;
pub mod processing;
pub mod projects;
pub mod ratelimit;
pub mod reload;
pub mod service;
pub mod spool;
pub mod state;
pub mod symbols;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod uploads;
pub mod upstream;

/// mimalloc rather than glibc's malloc, for the binary and everything else linking this crate
/// (its tests and benchmarks measure what the binary runs): see the note on the dependency in
/// Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
