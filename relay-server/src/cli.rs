//! Command-line interface: `relay run` and `relay config check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Overrides};

/// Ingestion relay for Sentry SDK crash and error reports, publishing to Kafka.
#[derive(Debug, Parser)]
#[command(name = "relay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(long, global = true, env = "RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay. Without a config file it uses the embedded defaults.
    Run(ConfigArgs),
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Walk and symbolicate a minidump offline; print the crashing thread first.
    Symbolicate(crate::commands::symbolicate::SymbolicateArgs),
    /// Resolve minified JavaScript positions (1-based LINE:COL) through a source map.
    Sourcemap(crate::commands::sourcemap::SourcemapArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and validate a configuration; report the offending key on error.
    Check(ConfigArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// YAML configuration file.
    #[arg(long, short, env = "RELAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

/// Runs the command line and maps failures to exit code 1 with a message on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => load(&args).and_then(|config| {
            let source = crate::reload::ConfigSource {
                path: args.config.clone(),
                overrides: args.overrides.clone(),
            };
            crate::service::run(config, source)
        }),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => load(&args).map(|_| println!("configuration is valid")),
        Command::Symbolicate(args) => {
            crate::commands::symbolicate::run(args).map(|()| exit_at_once())
        }
        Command::Sourcemap(args) => crate::commands::sourcemap::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ends a one-shot command that succeeded: flushes stdout and exits without running the
/// process's exit handlers. The one that would do work is mimalloc's, which hands its memory
/// back to the kernel range by range just before the kernel frees it all anyway: about 0.1 ms
/// of a 2 ms `relay symbolicate` run (`docs/benchmarks.md`, "Minidumps").
fn exit_at_once() -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: `_exit` ends the process; nothing runs after it that could see a broken state.
    // Output is flushed above, and stderr is unbuffered.
    unsafe { libc::_exit(0) }
}

fn load(args: &ConfigArgs) -> anyhow::Result<relay_core::Config> {
    Ok(config::load(args.config.as_deref(), &args.overrides)?)
}

fn init_logging(format: LogFormat) {
    // actix-http's HTTP/1 dispatcher logs every request it cannot parse (a malformed or
    // oversized head, a bad chunk) as an ERROR, before any handler or limit runs: any client
    // could write to the log at will. The client gets its 400/431; the log stays quiet.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,librdkafka=warn,minidump_processor=error,minidump=error,\
             actix_http::h1::dispatcher=off",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_wanted())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Colour codes only for a person at a terminal: a log redirected to a file or a collector
/// would otherwise carry escape bytes. `NO_COLOR` (any non-empty value) turns them off too.
fn colour_wanted() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}
