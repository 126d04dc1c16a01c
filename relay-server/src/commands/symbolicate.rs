//! `relay symbolicate <minidump> --symbols <dir> [--json]`: walk and symbolicate a minidump
//! offline and print its stack traces, crashing thread first, frames innermost first.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relay_processing::symbolicate::{
    symbolicate_minidump, LocalDirectory, NativeCrash, NativeFrame, NativeThread, SymbolSource,
    SymbolStore,
};

/// Largest minidump accepted after unwrapping a compression container.
const MAX_MINIDUMP_BYTES: usize = 512 * 1024 * 1024;

/// Arguments of `relay symbolicate`.
#[derive(Debug, clap::Args)]
pub struct SymbolicateArgs {
    /// Minidump file, bare or gzip/zstd/xz/bzip2-compressed.
    pub minidump: PathBuf,
    /// Directory of debug files in any layout (PDB, ELF/DWARF, dSYM, Breakpad .sym, ...).
    /// Repeat to search several, in order.
    #[arg(long = "symbols", short = 's', value_name = "DIR")]
    pub symbols: Vec<PathBuf>,
    /// Keep SymCaches and CFI built from the debug files here, for faster later runs.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Stop loading debug files after this many seconds; frames keep their addresses.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print only the crashing thread (text output).
    #[arg(long)]
    pub crashed_only: bool,
}

/// Runs the command.
pub fn run(args: SymbolicateArgs) -> anyhow::Result<()> {
    let data = std::fs::read(&args.minidump)
        .with_context(|| format!("cannot read {}", args.minidump.display()))?;
    let unwrapped = relay_processing::minidump::unwrap_minidump(&data, MAX_MINIDUMP_BYTES)
        .with_context(|| format!("{}", args.minidump.display()))?;
    let dump = unwrapped.as_deref().unwrap_or(&data);

    let mut sources: Vec<Box<dyn SymbolSource>> = Vec::new();
    for dir in &args.symbols {
        if !dir.exists() {
            eprintln!("warning: symbol directory {} does not exist", dir.display());
        }
        let source = LocalDirectory::scan(dir)
            .with_context(|| format!("cannot scan symbol directory {}", dir.display()))?;
        sources.push(Box::new(source));
    }
    let store = SymbolStore::new(sources, args.cache_dir.clone());
    let deadline = match args.timeout {
        Some(secs) if secs.is_finite() && secs >= 0.0 => {
            Some(Instant::now() + Duration::from_secs_f64(secs))
        }
        Some(secs) => anyhow::bail!("--timeout must be a number of seconds, got {secs}"),
        None => None,
    };

    let crash = symbolicate_minidump(dump, &store, deadline)
        .with_context(|| format!("{}", args.minidump.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&crash.to_json())?);
    } else {
        print!("{}", render_text(&crash, args.crashed_only));
    }
    // The process ends now: freeing the loaded symbol tables (CFI parsed into trees) would
    // only cost time (a few percent of a warm run).
    std::mem::forget(store);
    Ok(())
}

/// The human-readable report.
fn render_text(crash: &NativeCrash, crashed_only: bool) -> String {
    let mut out = String::new();
    let system = &crash.system;
    let _ = writeln!(
        out,
        "Operating system: {} {} ({})",
        system.os_name,
        system.os_version.as_deref().unwrap_or(""),
        system.cpu_arch
    );
    match (&crash.crash_reason, crash.crash_address) {
        (Some(reason), Some(address)) => {
            let _ = writeln!(
                out,
                "Crash reason:     {reason}\nCrash address:    {address:#x}"
            );
        }
        (Some(reason), None) => {
            let _ = writeln!(out, "Crash reason:     {reason}");
        }
        _ => {
            let _ = writeln!(out, "No crash: the minidump was requested");
        }
    }
    if let Some(assertion) = &crash.assertion {
        let _ = writeln!(out, "Assertion:        {assertion}");
    }

    let mut threads = crash.threads.iter().collect::<Vec<_>>();
    threads.sort_by_key(|t| !t.crashed);
    for thread in threads {
        if crashed_only && !thread.crashed {
            continue;
        }
        out.push('\n');
        render_thread(&mut out, crash, thread);
    }

    let _ = writeln!(out, "\nModules:");
    for module in &crash.modules {
        let used = module
            .debug_path
            .as_ref()
            .map(|p| format!("  <- {}", p.display()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:#018x} - {:#018x}  {}  {}  symbols: {}, unwind: {}{}",
            module.image_addr,
            module.image_addr + module.image_size.saturating_sub(1),
            short_name(&module.code_file),
            module.debug_id.as_deref().unwrap_or("-"),
            module.debug_status.as_str(),
            module.unwind_status.as_str(),
            used,
        );
    }
    out
}

fn render_thread(out: &mut String, crash: &NativeCrash, thread: &NativeThread) {
    let _ = write!(out, "Thread {}", thread.id);
    if let Some(name) = &thread.name {
        let _ = write!(out, " ({name})");
    }
    if thread.crashed {
        out.push_str(" (crashed)");
    }
    out.push('\n');
    for (index, frame) in thread.frames.iter().enumerate() {
        let _ = writeln!(out, "{index:>3}  {}", render_frame(crash, frame));
    }
}

fn render_frame(crash: &NativeCrash, frame: &NativeFrame) -> String {
    let module = frame.module.map(|i| &crash.modules[i]);
    let mut line = format!("{:#018x}  ", frame.instruction_addr);
    match (module, &frame.function) {
        (Some(module), Some(function)) => {
            let _ = write!(line, "{}!{function}", short_name(&module.code_file));
        }
        (Some(module), None) => {
            let offset = frame.instruction_addr.saturating_sub(module.image_addr);
            let _ = write!(line, "{} + {offset:#x}", short_name(&module.code_file));
        }
        (None, _) => line.push_str("???"),
    }
    if let Some(file) = &frame.filename {
        let _ = write!(line, "  [{file}");
        if let Some(lineno) = frame.lineno {
            let _ = write!(line, ":{lineno}");
        }
        line.push(']');
    }
    if frame.inlined {
        line.push_str(" (inlined)");
    }
    let _ = write!(line, "  ({}, {})", frame.trust, frame.status.as_str());
    line
}

/// File name of a module path from any OS.
fn short_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}
