//! Walking a minidump's threads and turning rust-minidump's result into a [`NativeCrash`].

use std::collections::HashMap;
use std::time::Instant;

use minidump::{Minidump, MinidumpModule, MinidumpModuleList, Module};
use minidump_processor::ProcessError;
use minidump_unwind::{FrameTrust, StackFrame};

use super::budget::{CutOff, WalkBudget, WalkLimits};
use super::cache::SymbolStore;
use super::provider::StoreProvider;
use super::sources::ModuleRef;
use super::walk::{cpu_arch, image_type, walk_dump, WalkedDump, WalkedThread};
use super::{
    FrameStatus, ImageStatus, NativeCrash, NativeFrame, NativeModule, NativeThread, SystemInfo,
};

/// Why a minidump could not be walked at all. Missing symbols are never an error.
#[derive(Debug, thiserror::Error)]
pub enum StackwalkError {
    /// The file is not a minidump or its header/directory is corrupt.
    #[error("corrupt minidump: {0}")]
    Malformed(#[from] minidump::Error),
    /// The minidump lacks a stream stack walking needs (thread list, system info) or is
    /// inconsistent.
    #[error("cannot walk the minidump: {0}")]
    Process(#[from] ProcessError),
}

/// Walks every thread of `minidump` and symbolicates the frames with `symbols`, within the
/// default [`WalkLimits`] and `deadline`.
///
/// CPU-bound and blocking: call it on a symbolication thread. After `deadline` no further debug
/// file is loaded and no further frame walked; frames in modules not loaded yet get
/// [`FrameStatus::Timeout`].
pub fn symbolicate_minidump(
    minidump: &[u8],
    symbols: &SymbolStore,
    deadline: Option<Instant>,
) -> Result<NativeCrash, StackwalkError> {
    let limits = WalkLimits {
        deadline,
        ..WalkLimits::default()
    };
    symbolicate_minidump_within(minidump, symbols, &limits)
}

/// [`symbolicate_minidump`] within `limits`: a walk cut short by a bound returns what was
/// walked, and [`NativeCrash::cut_off`] and [`NativeThread::cut_off`] say which bound it was.
pub fn symbolicate_minidump_within(
    minidump: &[u8],
    symbols: &SymbolStore,
    limits: &WalkLimits,
) -> Result<NativeCrash, StackwalkError> {
    let dump = Minidump::read(minidump)?;
    let provider = StoreProvider::new(symbols, WalkBudget::new(limits.clone()));
    let walked = walk_dump(&dump, &provider)?;
    Ok(convert(&walked, &provider))
}

/// The modules a minidump references, so that an async downloader can fetch their debug files
/// before [`symbolicate_minidump`] runs.
pub fn referenced_modules(minidump: &[u8]) -> Result<Vec<ModuleRef>, StackwalkError> {
    let dump = Minidump::read(minidump)?;
    let modules = dump.get_stream::<MinidumpModuleList>()?;
    Ok(modules.iter().map(|m| ModuleRef::from_module(m)).collect())
}

fn convert(walked: &WalkedDump, provider: &StoreProvider<'_>) -> NativeCrash {
    let image_type = image_type(walked.system.os);
    let modules = walked
        .modules
        .iter()
        .map(|module| convert_module(module, image_type, provider))
        .collect::<Vec<_>>();
    // Frames find their module by base address; a map keeps that linear in the frame count.
    let mut module_index = HashMap::new();
    for (index, module) in walked.modules.iter().enumerate() {
        // The first of several modules at one base, as the walker's own lookup finds.
        module_index.entry(module.base_address()).or_insert(index);
    }
    let threads = walked
        .threads
        .iter()
        .map(|thread| convert_thread(thread, &module_index, &modules))
        .collect();

    NativeCrash {
        crashed: walked.exception.is_some(),
        crash_reason: walked.exception.as_ref().map(|(reason, _)| reason.clone()),
        crash_address: walked.exception.as_ref().map(|(_, address)| *address),
        // rust-minidump reads no assertion stream.
        assertion: None,
        system: SystemInfo {
            os_name: walked.system.os.long_name().into_owned(),
            os_version: walked.system.os_version.clone(),
            os_build: walked.system.os_build.clone(),
            cpu_arch: cpu_arch(walked.system.cpu),
        },
        threads,
        modules,
        cut_off: walked.cut_off.clone(),
    }
}

fn convert_module(
    module: &MinidumpModule,
    image_type: &'static str,
    provider: &StoreProvider<'_>,
) -> NativeModule {
    let touched = provider.touched(module.base_address());
    let (debug_status, unwind_status, debug_path, unwind_path) = match &touched {
        Some(symbols) => (
            symbols.symbols.status,
            symbols.cfi.status,
            symbols.symbols.file.as_ref().map(|f| f.path.clone()),
            symbols.cfi.file.as_ref().map(|f| f.path.clone()),
        ),
        None => (ImageStatus::Unused, ImageStatus::Unused, None, None),
    };
    let ids = ModuleRef::from_module(module);
    NativeModule {
        image_type,
        code_file: ids.code_file,
        code_id: ids.code_id.map(|id| id.to_string()),
        debug_file: ids.debug_file,
        debug_id: ids.debug_id.map(|id| id.to_string()),
        image_addr: module.base_address(),
        image_size: module.size(),
        debug_status,
        unwind_status,
        debug_path,
        unwind_path,
    }
}

fn convert_thread(
    thread: &WalkedThread,
    module_index: &HashMap<u64, usize>,
    modules: &[NativeModule],
) -> NativeThread {
    let stack = &thread.stack;
    let mut frames = Vec::with_capacity(stack.frames.len());
    for frame in &stack.frames {
        push_frames(frame, thread.cut_off, module_index, modules, &mut frames);
    }
    let registers = stack
        .frames
        .first()
        .map(|f| {
            f.context
                .valid_registers()
                .map(|(name, value)| (name.to_owned(), value))
                .collect()
        })
        .unwrap_or_default();
    NativeThread {
        id: stack.thread_id,
        name: stack.thread_name.clone(),
        crashed: thread.crashed,
        frames,
        registers,
        cut_off: thread.cut_off,
    }
}

/// Appends the inlined frames (innermost first) and then the frame itself.
fn push_frames(
    frame: &StackFrame,
    cut_off: Option<CutOff>,
    module_index: &HashMap<u64, usize>,
    modules: &[NativeModule],
    out: &mut Vec<NativeFrame>,
) {
    let module_index = frame
        .module
        .as_ref()
        .and_then(|m| module_index.get(&m.base_address()).copied());
    let module = module_index.map(|i| &modules[i]);
    let status = if frame.function_name.is_some() {
        FrameStatus::Symbolicated
    } else {
        match module.map(|m| m.debug_status) {
            None => FrameStatus::UnknownImage,
            Some(ImageStatus::Timeout) => FrameStatus::Timeout,
            // A frame the deadline stopped before its module was looked up.
            Some(ImageStatus::Unused) if cut_off == Some(CutOff::Deadline) => FrameStatus::Timeout,
            Some(ImageStatus::Malformed) => FrameStatus::Malformed,
            Some(_) => FrameStatus::MissingSymbol,
        }
    };
    let base = NativeFrame {
        // Symbols were looked up at `instruction` (inside the call for callers); the event
        // carries the address the CPU would resume at, as Sentry's protocol expects.
        instruction_addr: frame.resume_address,
        module: module_index,
        package: module.map(|m| m.code_file.clone()),
        function: None,
        symbol_addr: None,
        abs_path: None,
        filename: None,
        lineno: None,
        inlined: false,
        trust: trust_name(frame.trust),
        status,
    };
    for inline in &frame.inlines {
        out.push(NativeFrame {
            function: Some(inline.function_name.clone()),
            filename: inline.source_file_name.as_deref().map(file_name),
            abs_path: inline.source_file_name.clone(),
            lineno: inline.source_line,
            inlined: true,
            status: FrameStatus::Symbolicated,
            ..base.clone()
        });
    }
    out.push(NativeFrame {
        function: frame.function_name.clone(),
        symbol_addr: frame.function_base,
        filename: frame.source_file_name.as_deref().map(file_name),
        abs_path: frame.source_file_name.clone(),
        lineno: frame.source_line.filter(|&l| l > 0),
        ..base
    });
}

/// Sentry's names for how a frame was found.
fn trust_name(trust: FrameTrust) -> &'static str {
    match trust {
        FrameTrust::Context => "context",
        FrameTrust::PreWalked => "prewalked",
        FrameTrust::CallFrameInfo => "cfi",
        FrameTrust::CfiScan => "cfi_scan",
        FrameTrust::FramePointer => "fp",
        FrameTrust::Scan => "scan",
        FrameTrust::None => "none",
    }
}

/// The last component of a path written on any OS (`c:\src\main.cpp` -> `main.cpp`).
fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_any_os() {
        assert_eq!(file_name(r"c:\projects\crash\main.cpp"), "main.cpp");
        assert_eq!(file_name("/work/linux/main.cpp"), "main.cpp");
        assert_eq!(file_name("main.cpp"), "main.cpp");
    }
}
