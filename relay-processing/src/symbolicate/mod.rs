//! Native crash symbolication: minidump stack walking and symbol lookup.
//!
//! - [`stackwalk`]: [`symbolicate_minidump`] walks every thread of a minidump with rust-minidump
//!   (CFI first, stack scanning as the fallback) and symbolicates each frame into a
//!   [`NativeCrash`]; [`referenced_modules`] lists what a dump needs, for symbol downloaders.
//! - [`budget`]: [`WalkLimits`], the bounds on one dump's walk (deadline, threads, frames,
//!   stack bytes, frame memory), and [`CutOff`], which of them cut a walk short; `walk` walks
//!   the threads one by one within them.
//! - [`sources`]: the [`SymbolSource`] trait and [`LocalDirectory`], a directory of debug files
//!   in any layout indexed by debug id and code id; [`ModuleRef::server_files`], where symbol
//!   servers keep a module's files in each [`ServerLayout`].
//! - [`downloads`]: [`DownloadedFiles`], the source of files fetched at runtime, and
//!   [`unpack_cab`] for symstore's compressed files.
//! - [`cache`]: the [`SymbolStore`]: sources in order, the richest debug file per module, and
//!   SymCaches (native files) and indexed Breakpad text (CFI, and Breakpad files whole) built
//!   once per debug file and kept in a cache directory, whose size
//!   [`evict_to_size`] bounds.
//! - `provider`: rust-minidump's `SymbolProvider` on top of the store.
//! - [`event`]: [`apply_to_event`] writes a crash into a Sentry event; [`NativeCrash::to_json`]
//!   is the CLI's JSON.
//!
//! Nothing here does network I/O or needs an async runtime: the walker's futures are driven
//! with a minimal executor on the calling (SyncArbiter) thread. A missing debug file or the
//! deadline never fails symbolication; frames keep their addresses and say why in `status`.

pub mod budget;
pub mod cache;
pub(crate) mod cfi;
pub mod downloads;
pub mod event;
mod provider;
pub mod sources;
pub mod stackwalk;
mod walk;

pub use self::budget::{CutOff, WalkLimits};
pub use self::cache::{evict_to_size, Eviction, StoreStats, SymbolStore};
pub use self::downloads::{is_cab, unpack_cab, unpacked_cab_size, DownloadedFiles, UnpackError};
pub use self::event::{apply_to_event, apply_to_event_within};
pub use self::sources::{
    identify, DebugFile, Features, FileRole, LocalDirectory, ModuleRef, ServerFile, ServerLayout,
    SymbolSource,
};
pub use self::stackwalk::{
    referenced_modules, symbolicate_minidump, symbolicate_minidump_within, StackwalkError,
};

/// What happened to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameStatus {
    /// Function (and file/line where the debug file has them) found.
    Symbolicated,
    /// The module is known but has no debug file, or its debug file has nothing at this address.
    MissingSymbol,
    /// The address lies in no module of the minidump.
    UnknownImage,
    /// The module's debug file exists but could not be read.
    Malformed,
    /// The deadline passed before the module's debug file was loaded.
    Timeout,
}

impl FrameStatus {
    /// The protocol name (`symbolicated`, `missing_symbol`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FrameStatus::Symbolicated => "symbolicated",
            FrameStatus::MissingSymbol => "missing_symbol",
            FrameStatus::UnknownImage => "unknown_image",
            FrameStatus::Malformed => "malformed",
            FrameStatus::Timeout => "timeout",
        }
    }
}

/// What happened to one module's debug file (`debug_status`) or unwind info (`unwind_status`),
/// with the names of Sentry's `debug_meta.images[].debug_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    /// A debug file was found and used.
    Found,
    /// No frame needed this module, so nothing was looked up.
    Unused,
    /// No source has a matching debug file.
    Missing,
    /// A matching debug file exists but could not be read.
    Malformed,
    /// The deadline passed before the debug file was loaded.
    Timeout,
}

impl ImageStatus {
    /// The protocol name (`found`, `unused`, `missing`, `malformed`, `timeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Found => "found",
            ImageStatus::Unused => "unused",
            ImageStatus::Missing => "missing",
            ImageStatus::Malformed => "malformed",
            ImageStatus::Timeout => "timeout",
        }
    }
}

/// A symbolicated minidump.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeCrash {
    /// Whether the dump was written for a crash (it has an exception stream).
    pub crashed: bool,
    /// Crash reason as the OS names it (`EXCEPTION_ACCESS_VIOLATION_WRITE`, `SIGSEGV /SEGV_MAPERR`).
    pub crash_reason: Option<String>,
    /// The memory address implicated in the crash.
    pub crash_address: Option<u64>,
    /// An assertion message, if the dump carries one.
    pub assertion: Option<String>,
    /// Operating system and CPU.
    pub system: SystemInfo,
    /// All threads, in dump order. [`NativeThread::crashed`] marks the crashing one.
    pub threads: Vec<NativeThread>,
    /// All loaded modules, in dump order.
    pub modules: Vec<NativeModule>,
    /// The bounds that cut the walk short (each once, first hit first); empty for a full walk.
    pub cut_off: Vec<CutOff>,
}

impl NativeCrash {
    /// The crashing (or dump-requesting) thread.
    pub fn crashing_thread(&self) -> Option<&NativeThread> {
        self.threads.iter().find(|t| t.crashed)
    }
}

/// Operating system and CPU of the crashed process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemInfo {
    /// Operating system (`Windows`, `Linux`, `Mac OS X`, ...).
    pub os_name: String,
    /// OS version, such as `10.0.14393`.
    pub os_version: Option<String>,
    /// OS build, such as a kernel version string.
    pub os_build: Option<String>,
    /// CPU architecture in Sentry's naming (`x86`, `x86_64`, `arm64`, ...).
    pub cpu_arch: String,
}

/// One thread's stack.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeThread {
    /// Thread id.
    pub id: u32,
    /// Thread name, if the dump has one.
    pub name: Option<String>,
    /// Whether this thread crashed (or requested the dump).
    pub crashed: bool,
    /// Frames, innermost first; an inlined call is a frame of its own before its caller.
    pub frames: Vec<NativeFrame>,
    /// Registers of the innermost frame, by name.
    pub registers: Vec<(String, u64)>,
    /// Why this thread's walk stopped before the end of its stack, if a bound stopped it.
    pub cut_off: Option<CutOff>,
}

/// One stack frame.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeFrame {
    /// The frame's program counter: the crash address for the innermost frame, the return
    /// address for callers.
    pub instruction_addr: u64,
    /// Index into [`NativeCrash::modules`] of the module the address falls into.
    pub module: Option<usize>,
    /// Code file of that module (Sentry's `package`).
    pub package: Option<String>,
    /// Demangled function name.
    pub function: Option<String>,
    /// Start address of the function.
    pub symbol_addr: Option<u64>,
    /// Source path as the debug file records it.
    pub abs_path: Option<String>,
    /// File name part of `abs_path`.
    pub filename: Option<String>,
    /// 1-based source line.
    pub lineno: Option<u32>,
    /// Whether this frame is an inlined call inside the next frame.
    pub inlined: bool,
    /// How the walker found this frame: `context`, `cfi`, `fp`, `scan`, `cfi_scan`, ...
    pub trust: &'static str,
    /// Symbolication outcome.
    pub status: FrameStatus,
}

/// One loaded module, for `debug_meta.images`.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeModule {
    /// `pe`, `elf` or `macho`, from the crashed OS.
    pub image_type: &'static str,
    /// Path of the executable or library.
    pub code_file: String,
    /// Code identifier, if known.
    pub code_id: Option<String>,
    /// Name of the debug companion.
    pub debug_file: Option<String>,
    /// Debug identifier (`3249d99d-0c40-4931-8610-f4e4fb0b6936-1`), if known.
    pub debug_id: Option<String>,
    /// Load address.
    pub image_addr: u64,
    /// Size in bytes of the mapped image.
    pub image_size: u64,
    /// Whether symbols were found.
    pub debug_status: ImageStatus,
    /// Whether unwind information was found.
    pub unwind_status: ImageStatus,
    /// The debug file used for symbols.
    pub debug_path: Option<std::path::PathBuf>,
    /// The debug file used for unwind information.
    pub unwind_path: Option<std::path::PathBuf>,
}
