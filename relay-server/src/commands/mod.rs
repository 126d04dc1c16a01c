//! Offline subcommands that use the processing library without running the server.

pub mod sourcemap;
pub mod symbolicate;
