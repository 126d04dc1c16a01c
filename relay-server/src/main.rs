//! The `relay` binary: parses the command line and runs the chosen command.

mod actors;
mod cli;
mod commands;
mod config;
mod endpoints;
mod kafka;
mod managed;
mod metrics;
mod processing;
mod projects;
mod service;
mod spool;

/// mimalloc rather than glibc's malloc: see the note on the dependency in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
