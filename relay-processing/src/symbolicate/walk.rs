//! Walking a minidump's threads within a [`WalkLimits`] budget.
//!
//! This replaces `minidump_processor::process_minidump`, which walks every thread of the dump
//! at once (one future per thread, joined) and gives nothing back until all are done: a dump
//! built to be slow would hold a symbolication thread for as long as it likes. Here each
//! thread is walked on its own with `minidump_unwind::walk_stack`, the crashing thread first,
//! and the budget can stop a walk in the middle:
//!
//! - The store's provider answers every walker question synchronously. Once a bound is hit it
//!   answers the next one with a future that never completes; the walk is polled once, so it
//!   comes back `Pending`, is dropped, and the frames found so far stay in its [`CallStack`].
//!   The walker asks the provider about every frame inside a module (symbols, CFI, and each
//!   candidate of a stack scan), so this catches all of the expensive work.
//! - Frames outside any module found by frame pointers need no provider; each takes at least
//!   16 bytes of stack, so they are bounded by the slice of stack memory the walker is given
//!   (`max_stack_bytes` from the stack pointer up), and trimmed to `max_frames_per_thread`
//!   afterwards.
//! - Between threads the deadline and the dump's frame memory are checked; threads not walked
//!   keep only their context frame.
//!
//! Everything else mirrors rust-minidump's own processing: which context a thread starts from
//! (the exception's for the crashing thread), which memory is its stack, the crash reason and
//! address.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use minidump::system_info::{Cpu, Os};
use minidump::{
    Minidump, MinidumpBreakpadInfo, MinidumpContext, MinidumpException, MinidumpMemory,
    MinidumpMemory64, MinidumpMemoryBase, MinidumpMiscInfo, MinidumpModuleList, MinidumpSystemInfo,
    MinidumpThread, MinidumpThreadList, MinidumpThreadNames, UnifiedMemory, UnifiedMemoryList,
};
use minidump_processor::ProcessError;
use minidump_unwind::{CallStack, CallStackInfo, FrameTrust, StackFrame, SystemInfo};

use super::budget::CutOff;
use super::provider::StoreProvider;

/// A dump as far as it was walked.
pub(crate) struct WalkedDump {
    pub(crate) system: SystemInfo,
    /// Crash reason and address, from the exception stream.
    pub(crate) exception: Option<(String, u64)>,
    pub(crate) modules: MinidumpModuleList,
    /// Threads in dump order (at most `max_threads` of them).
    pub(crate) threads: Vec<WalkedThread>,
    /// Every bound that cut something short, each once, in the order they were hit.
    pub(crate) cut_off: Vec<CutOff>,
}

/// One thread's stack, and why its walk stopped early, if it did.
pub(crate) struct WalkedThread {
    pub(crate) stack: CallStack,
    pub(crate) crashed: bool,
    pub(crate) cut_off: Option<CutOff>,
}

/// The streams a walk needs, read once.
struct Streams<'a> {
    threads: MinidumpThreadList<'a>,
    names: MinidumpThreadNames,
    system: MinidumpSystemInfo,
    misc: Option<MinidumpMiscInfo>,
    memory: UnifiedMemoryList<'a>,
    exception: Option<MinidumpException<'a>>,
    /// The thread that wrote the dump (Breakpad), which is not walked.
    dump_thread: Option<u32>,
    /// The crashing (or dump-requesting) thread.
    crashing_thread: Option<u32>,
}

impl<'a> Streams<'a> {
    fn read<T: std::ops::Deref<Target = [u8]> + 'a>(
        dump: &'a Minidump<'a, T>,
    ) -> Result<Self, ProcessError> {
        let threads = dump
            .get_stream::<MinidumpThreadList>()
            .map_err(|_| ProcessError::MissingThreadList)?;
        let system = dump
            .get_stream::<MinidumpSystemInfo>()
            .map_err(|_| ProcessError::MissingSystemInfo)?;
        let breakpad = dump.get_stream::<MinidumpBreakpadInfo>().ok();
        let exception = dump.get_stream::<MinidumpException>().ok();
        let requesting = breakpad.as_ref().and_then(|b| b.requesting_thread_id);
        Ok(Streams {
            threads,
            names: dump.get_stream::<MinidumpThreadNames>().unwrap_or_default(),
            system,
            misc: dump.get_stream::<MinidumpMiscInfo>().ok(),
            memory: dump.get_memory().unwrap_or_default(),
            crashing_thread: exception
                .as_ref()
                .map(|e| e.get_crashing_thread_id())
                .or(requesting),
            exception,
            dump_thread: breakpad.and_then(|b| b.dump_thread_id),
        })
    }

    fn system_info(&self) -> SystemInfo {
        let (os_version, os_build) = self.system.os_parts();
        SystemInfo {
            os: self.system.os,
            os_version: Some(os_version),
            os_build,
            cpu: self.system.cpu,
            cpu_info: None,
            cpu_microcode_version: None,
            cpu_count: self.system.raw.number_of_processors as usize,
        }
    }

    /// The context a thread's walk starts from: the exception's for the crashing thread.
    fn context(&self, thread: &MinidumpThread<'a>) -> Option<MinidumpContext> {
        let from_exception = if self.crashing_thread == Some(thread.raw.thread_id) {
            self.exception
                .as_ref()
                .and_then(|e| e.context(&self.system, self.misc.as_ref()))
        } else {
            None
        };
        from_exception
            .or_else(|| thread.context(&self.system, self.misc.as_ref()))
            .map(|context| context.into_owned())
    }
}

/// Walks the threads of `dump` with `provider`, within the provider's budget.
pub(crate) fn walk_dump<'a, T: std::ops::Deref<Target = [u8]> + 'a>(
    dump: &'a Minidump<'a, T>,
    provider: &StoreProvider<'_>,
) -> Result<WalkedDump, ProcessError> {
    let streams = Streams::read(dump)?;
    let system = streams.system_info();
    let modules = dump
        .get_stream::<MinidumpModuleList>()
        .unwrap_or_else(|_| MinidumpModuleList::new());
    let budget = provider.budget();
    let mut cut_off = Vec::new();

    let order = walk_order(&streams, budget.limits().max_threads);
    if order.len() < streams.threads.threads.len() {
        cut_off.push(CutOff::Threads);
    }
    let mut walked: Vec<(usize, WalkedThread)> = Vec::with_capacity(order.len());
    let mut dump_cut: Option<CutOff> = None;
    for index in order {
        let thread = &streams.threads.threads[index];
        let mut stack = start_stack(&streams, thread);
        let mut cut = dump_cut.or_else(|| budget.start_thread());
        if cut.is_none() && !stack.frames.is_empty() {
            cut = walk_thread(&streams, thread, &mut stack, &modules, &system, provider);
        } else if let Some(frame) = stack.frames.first_mut() {
            // Not walked: the context frame still names its module, and past the deadline the
            // module is marked timed out (nothing is loaded then).
            frame.module = modules.module_at_address(frame.instruction).cloned();
            if let (Some(CutOff::Deadline), Some(module)) = (cut, &frame.module) {
                provider.symbols(module);
            }
        }
        if let Some(cut) = cut {
            if !cut_off.contains(&cut) {
                cut_off.push(cut);
            }
            if cut.ends_dump() {
                dump_cut = Some(cut);
            }
        }
        let crashed = streams.crashing_thread == Some(stack.thread_id);
        walked.push((
            index,
            WalkedThread {
                stack,
                crashed,
                cut_off: cut,
            },
        ));
    }
    walked.sort_by_key(|(index, _)| *index);

    let exception = streams.exception.as_ref().map(|e| {
        let reason = e.get_crash_reason(system.os, system.cpu).to_string();
        (reason, e.get_crash_address(system.os, system.cpu))
    });
    Ok(WalkedDump {
        system,
        exception,
        modules,
        threads: walked.into_iter().map(|(_, thread)| thread).collect(),
        cut_off,
    })
}

/// Indexes of the threads to walk, the crashing one first, at most `max_threads`.
fn walk_order(streams: &Streams<'_>, max_threads: usize) -> Vec<usize> {
    let threads = &streams.threads.threads;
    let crashing = threads
        .iter()
        .position(|t| Some(t.raw.thread_id) == streams.crashing_thread);
    crashing
        .into_iter()
        .chain((0..threads.len()).filter(|&i| Some(i) != crashing))
        .take(max_threads)
        .collect()
}

/// A thread's stack before walking: its context frame, or nothing (the dump-writing thread, or
/// no context).
fn start_stack(streams: &Streams<'_>, thread: &MinidumpThread<'_>) -> CallStack {
    let id = thread.raw.thread_id;
    if streams.dump_thread == Some(id) {
        return CallStack::with_info(id, CallStackInfo::DumpThreadSkipped);
    }
    let (info, frames) = match streams.context(thread) {
        Some(context) => (
            CallStackInfo::Ok,
            vec![StackFrame::from_context(context, FrameTrust::Context)],
        ),
        None => (CallStackInfo::MissingContext, Vec::new()),
    };
    CallStack {
        frames,
        info,
        thread_id: id,
        thread_name: streams.names.get_name(id).map(|name| name.into_owned()),
        last_error_value: None,
    }
}

/// Walks one thread from its context frame; returns the bound that stopped it early, if any.
fn walk_thread(
    streams: &Streams<'_>,
    thread: &MinidumpThread<'_>,
    stack: &mut CallStack,
    modules: &MinidumpModuleList,
    system: &SystemInfo,
    provider: &StoreProvider<'_>,
) -> Option<CutOff> {
    let budget = provider.budget();
    let limits = budget.limits();
    let stack_pointer = stack.frames[0].context.get_stack_pointer();
    let memory = stack_memory(thread, &streams.memory, stack_pointer);
    let window = memory.map(|m| stack_window(m, stack_pointer, limits.max_stack_bytes));
    let truncated = window.as_ref().is_some_and(|w| w.truncated);

    let finished = {
        let memory = window.as_ref().map(StackWindow::as_unified);
        let on_frame = |_index: usize, frame: &StackFrame| budget.frame_walked(frame);
        let walk =
            minidump_unwind::walk_stack(0, on_frame, stack, memory, modules, system, provider);
        poll_once(walk).is_some()
    };
    let mut cut = if finished { None } else { budget.tripped() };
    // Frames found without asking the provider (frame pointers outside modules) can pass the
    // per-thread bound before the walk notices.
    if stack.frames.len() > limits.max_frames_per_thread {
        stack.frames.truncate(limits.max_frames_per_thread);
        cut = cut.or(Some(CutOff::FramesPerThread));
    }
    if cut.is_none() && truncated {
        cut = Some(CutOff::StackBytes);
    }
    cut
}

/// The memory holding a thread's stack, chosen as rust-minidump does: the thread's own stack
/// descriptor, unless the stack pointer lies outside it and another region holds it.
fn stack_memory<'m, 'a>(
    thread: &'m MinidumpThread<'a>,
    memory: &'m UnifiedMemoryList<'a>,
    stack_pointer: u64,
) -> Option<UnifiedMemory<'m, 'a>> {
    let own = thread.stack_memory(memory);
    let holds_pointer = own
        .as_ref()
        .and_then(|m| m.get_memory_at_address::<u64>(stack_pointer))
        .is_some();
    if holds_pointer {
        own
    } else {
        memory.memory_at_address(stack_pointer).or(own)
    }
}

/// A slice of a thread's stack memory, at most `max_stack_bytes` long.
struct StackWindow<'a> {
    memory: WindowMemory<'a>,
    truncated: bool,
}

enum WindowMemory<'a> {
    Memory(MinidumpMemory<'a>),
    Memory64(MinidumpMemory64<'a>),
}

impl StackWindow<'_> {
    fn as_unified(&self) -> UnifiedMemory<'_, '_> {
        match &self.memory {
            WindowMemory::Memory(m) => UnifiedMemory::Memory(m),
            WindowMemory::Memory64(m) => UnifiedMemory::Memory64(m),
        }
    }
}

/// The part of `memory` the walker may read: from the region's start, or from the stack
/// pointer when that lies further in, at most `max_bytes` long. The walker only reads at and
/// above the stack pointer, so this keeps all a normal walk needs.
fn stack_window<'a>(
    memory: UnifiedMemory<'_, 'a>,
    stack_pointer: u64,
    max_bytes: u64,
) -> StackWindow<'a> {
    match memory {
        UnifiedMemory::Memory(m) => {
            let (memory, truncated) = window_of(m, stack_pointer, max_bytes);
            StackWindow {
                memory: WindowMemory::Memory(memory),
                truncated,
            }
        }
        UnifiedMemory::Memory64(m) => {
            let (memory, truncated) = window_of(m, stack_pointer, max_bytes);
            StackWindow {
                memory: WindowMemory::Memory64(memory),
                truncated,
            }
        }
    }
}

fn window_of<'a, D: Clone>(
    memory: &MinidumpMemoryBase<'a, D>,
    stack_pointer: u64,
    max_bytes: u64,
) -> (MinidumpMemoryBase<'a, D>, bool) {
    let len = memory.bytes.len() as u64;
    let from_base = stack_pointer.saturating_sub(memory.base_address);
    // Start at the region unless the stack pointer is too deep into it to keep both.
    let start = if from_base < len && from_base.saturating_add(8) > max_bytes {
        from_base
    } else {
        0
    };
    let end = len.min(start.saturating_add(max_bytes));
    let bytes = &memory.bytes[start as usize..end as usize];
    let window = MinidumpMemoryBase {
        desc: memory.desc.clone(),
        base_address: memory.base_address + start,
        size: bytes.len() as u64,
        bytes,
        endian: memory.endian,
    };
    (window, end - start < len)
}

/// Polls `future` once. The provider never waits for anything, so a walk either finishes in
/// one poll or is `Pending` because the budget stopped it (see the module documentation).
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Sentry's names for CPU architectures.
pub(crate) fn cpu_arch(cpu: Cpu) -> String {
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

/// The event's image type for the crashed OS.
pub(crate) fn image_type(os: Os) -> &'static str {
    match os {
        Os::Windows => "pe",
        Os::MacOs | Os::Ios => "macho",
        _ => "elf",
    }
}
