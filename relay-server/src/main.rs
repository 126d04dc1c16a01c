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

fn main() -> std::process::ExitCode {
    cli::main()
}
