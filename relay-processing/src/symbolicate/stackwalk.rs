//! Walking a minidump's threads and turning rust-minidump's result into a [`NativeCrash`].

use std::time::Instant;

use minidump::{Minidump, MinidumpModule, MinidumpModuleList, Module};
use minidump_processor::{ProcessError, ProcessState};
use minidump_unwind::{CallStack, FrameTrust, StackFrame};

use super::cache::SymbolStore;
use super::provider::StoreProvider;
use super::sources::ModuleRef;
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

/// Walks every thread of `minidump` and symbolicates the frames with `symbols`.
///
/// CPU-bound and blocking: call it on a symbolication thread. After `deadline` no further debug
/// file is loaded; frames in modules not loaded yet get [`FrameStatus::Timeout`].
pub fn symbolicate_minidump(
    minidump: &[u8],
    symbols: &SymbolStore,
    deadline: Option<Instant>,
) -> Result<NativeCrash, StackwalkError> {
    let dump = Minidump::read(minidump)?;
    let provider = StoreProvider::new(symbols, deadline);
    let state = futures_executor::block_on(minidump_processor::process_minidump(&dump, &provider))?;
    Ok(convert(&state, &provider))
}

/// The modules a minidump references, so that an async downloader can fetch their debug files
/// before [`symbolicate_minidump`] runs.
pub fn referenced_modules(minidump: &[u8]) -> Result<Vec<ModuleRef>, StackwalkError> {
    let dump = Minidump::read(minidump)?;
    let modules = dump.get_stream::<MinidumpModuleList>()?;
    Ok(modules.iter().map(|m| ModuleRef::from_module(m)).collect())
}

fn convert(state: &ProcessState, provider: &StoreProvider<'_>) -> NativeCrash {
    let image_type = match state.system_info.os {
        minidump::system_info::Os::Windows => "pe",
        minidump::system_info::Os::MacOs | minidump::system_info::Os::Ios => "macho",
        _ => "elf",
    };
    let modules = state
        .modules
        .iter()
        .map(|module| convert_module(module, image_type, provider))
        .collect::<Vec<_>>();

    let crashing = state.requesting_thread;
    let threads = state
        .threads
        .iter()
        .enumerate()
        .map(|(index, stack)| convert_thread(stack, crashing == Some(index), state, &modules))
        .collect();

    let exception = state.exception_info.as_ref();
    NativeCrash {
        crashed: state.crashed(),
        crash_reason: exception.map(|e| e.reason.to_string()),
        crash_address: exception.map(|e| e.address.0),
        assertion: state.assertion.clone(),
        system: SystemInfo {
            os_name: state.system_info.os.long_name().into_owned(),
            os_version: state.system_info.os_version.clone(),
            os_build: state.system_info.os_build.clone(),
            cpu_arch: cpu_arch(state.system_info.cpu),
        },
        threads,
        modules,
    }
}

/// Sentry's names for CPU architectures.
fn cpu_arch(cpu: minidump::system_info::Cpu) -> String {
    use minidump::system_info::Cpu;
    match cpu {
        Cpu::X86 => "x86".into(),
        Cpu::X86_64 => "x86_64".into(),
        Cpu::Arm => "arm".into(),
        Cpu::Arm64 => "arm64".into(),
        Cpu::Ppc => "ppc".into(),
        Cpu::Ppc64 => "ppc64".into(),
        Cpu::Mips => "mips".into(),
        Cpu::Mips64 => "mips64".into(),
        Cpu::Sparc => "sparc".into(),
        _ => "unknown".into(),
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
    stack: &CallStack,
    crashed: bool,
    state: &ProcessState,
    modules: &[NativeModule],
) -> NativeThread {
    let mut frames = Vec::with_capacity(stack.frames.len());
    for frame in &stack.frames {
        push_frames(frame, state, modules, &mut frames);
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
        crashed,
        frames,
        registers,
    }
}

/// Appends the inlined frames (innermost first) and then the frame itself.
fn push_frames(
    frame: &StackFrame,
    state: &ProcessState,
    modules: &[NativeModule],
    out: &mut Vec<NativeFrame>,
) {
    let module_index = frame.module.as_ref().and_then(|m| {
        state
            .modules
            .iter()
            .position(|candidate| candidate.base_address() == m.base_address())
    });
    let module = module_index.map(|i| &modules[i]);
    let status = if frame.function_name.is_some() {
        FrameStatus::Symbolicated
    } else {
        match module.map(|m| m.debug_status) {
            None => FrameStatus::UnknownImage,
            Some(ImageStatus::Timeout) => FrameStatus::Timeout,
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
