//! The `relay` binary: parses the command line and runs the chosen command.

fn main() -> std::process::ExitCode {
    relay_server::cli::main()
}
