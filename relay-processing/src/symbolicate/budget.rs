//! Bounds on the work and memory one minidump may cost a symbolication thread.
//!
//! rust-minidump's walker has no frame limit of its own: a thread's walk ends only when the
//! stack pointer stops growing, so a dump whose threads all point at one large stack full of
//! plausible return addresses makes it build hundreds of thousands of frames per thread (each
//! over a kilobyte, with a copy of its module), and scan up to 160 words for each. The
//! [`WalkBudget`] is shared by the walk loop (`walk`) and the symbol provider: the loop reports
//! every walked frame, and the provider, which the walker asks about every frame inside a
//! module, stops the walk once a bound is hit (see `walk` for how).

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use minidump::Module;
use minidump_unwind::StackFrame;

/// Limits for walking one minidump. `Default` gives the documented defaults with no deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkLimits {
    /// No frame is walked and no debug file loaded after this instant.
    pub deadline: Option<Instant>,
    /// Threads walked per dump, the crashing one first; the rest are left out of the result.
    pub max_threads: usize,
    /// Frames walked per thread, innermost first.
    pub max_frames_per_thread: usize,
    /// Bytes of one thread's stack memory the walker may read, from the stack pointer up.
    pub max_stack_bytes: u64,
    /// Approximate bytes the walker's frames may take for the whole dump.
    pub max_walk_bytes: u64,
}

impl Default for WalkLimits {
    fn default() -> Self {
        WalkLimits {
            deadline: None,
            max_threads: 1024,
            max_frames_per_thread: 1000,
            max_stack_bytes: 1024 * 1024,
            max_walk_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Which bound cut a walk short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CutOff {
    /// The deadline (`symbolication.timeout_secs`) passed.
    Deadline,
    /// The dump has more threads than `max_threads`.
    Threads,
    /// A thread has more frames than `max_frames_per_thread`.
    FramesPerThread,
    /// A thread's stack memory is larger than `max_stack_bytes`.
    StackBytes,
    /// The frames walked so far take more than `max_walk_bytes`.
    WalkBytes,
}

impl CutOff {
    /// The name written into events and the CLI's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CutOff::Deadline => "timeout",
            CutOff::Threads => "too_many_threads",
            CutOff::FramesPerThread => "too_many_frames",
            CutOff::StackBytes => "stack_too_large",
            CutOff::WalkBytes => "walk_memory",
        }
    }

    /// What the bound is, for people reading an event's `errors`.
    pub fn describe(self) -> &'static str {
        match self {
            CutOff::Deadline => "symbolication.timeout_secs passed",
            CutOff::Threads => "more threads than symbolication.max_threads",
            CutOff::FramesPerThread => "more frames than symbolication.max_frames_per_thread",
            CutOff::StackBytes => "stack memory larger than symbolication.max_stack_bytes",
            CutOff::WalkBytes => "frames past symbolication.max_walk_bytes of memory",
        }
    }

    /// Whether the bound holds for the rest of the dump (no further thread is walked) rather
    /// than for one thread.
    pub fn ends_dump(self) -> bool {
        matches!(self, CutOff::Deadline | CutOff::WalkBytes)
    }

    fn code(self) -> u8 {
        match self {
            CutOff::Deadline => 1,
            CutOff::Threads => 2,
            CutOff::FramesPerThread => 3,
            CutOff::StackBytes => 4,
            CutOff::WalkBytes => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [
            CutOff::Deadline,
            CutOff::Threads,
            CutOff::FramesPerThread,
            CutOff::StackBytes,
            CutOff::WalkBytes,
        ]
        .into_iter()
        .find(|cut| cut.code() == code)
    }
}

/// The running account of one dump's walk. Atomics only because the provider must be `Sync`;
/// one dump is walked on one thread.
#[derive(Debug)]
pub(crate) struct WalkBudget {
    limits: WalkLimits,
    /// Frames walked in the thread being walked.
    thread_frames: AtomicUsize,
    /// Approximate bytes of all frames walked.
    walk_bytes: AtomicU64,
    /// The bound that stopped the current thread's walk (`CutOff::code`, 0 for none).
    tripped: AtomicU8,
}

impl WalkBudget {
    pub(crate) fn new(limits: WalkLimits) -> Self {
        WalkBudget {
            limits,
            thread_frames: AtomicUsize::new(0),
            walk_bytes: AtomicU64::new(0),
            tripped: AtomicU8::new(0),
        }
    }

    pub(crate) fn limits(&self) -> &WalkLimits {
        &self.limits
    }

    /// Starts the account of a new thread. Returns the bound that forbids walking it, if the
    /// whole dump's budget is already spent.
    pub(crate) fn start_thread(&self) -> Option<CutOff> {
        self.thread_frames.store(0, Ordering::Relaxed);
        self.tripped.store(0, Ordering::Relaxed);
        self.check().filter(|cut| cut.ends_dump())
    }

    /// Counts one walked frame.
    pub(crate) fn frame_walked(&self, frame: &StackFrame) {
        self.thread_frames.fetch_add(1, Ordering::Relaxed);
        self.walk_bytes
            .fetch_add(frame_bytes(frame), Ordering::Relaxed);
    }

    /// The bound the walk has hit, if any; remembered as the reason the current thread stopped.
    pub(crate) fn check(&self) -> Option<CutOff> {
        let cut = if self.limits.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(CutOff::Deadline)
        } else if self.walk_bytes.load(Ordering::Relaxed) > self.limits.max_walk_bytes {
            Some(CutOff::WalkBytes)
        } else if self.thread_frames.load(Ordering::Relaxed) >= self.limits.max_frames_per_thread {
            Some(CutOff::FramesPerThread)
        } else {
            None
        };
        if let Some(cut) = cut {
            // The first bound hit is the reason; later checks of the same walk keep it.
            let _ =
                self.tripped
                    .compare_exchange(0, cut.code(), Ordering::Relaxed, Ordering::Relaxed);
        }
        cut
    }

    /// The bound that stopped the current thread's walk, if one did.
    pub(crate) fn tripped(&self) -> Option<CutOff> {
        CutOff::from_code(self.tripped.load(Ordering::Relaxed))
    }
}

/// What one walked frame keeps on the heap and inline, approximately: the frame itself, its
/// copy of the module (whose name a hostile dump can make large) and its symbol strings.
fn frame_bytes(frame: &StackFrame) -> u64 {
    let module = frame
        .module
        .as_ref()
        .map_or(0, |m| m.name.len() + m.debug_file().map_or(0, |f| f.len()));
    let symbols = frame.function_name.as_ref().map_or(0, String::len)
        + frame.source_file_name.as_ref().map_or(0, String::len)
        + frame
            .inlines
            .iter()
            .map(|i| i.function_name.len() + i.source_file_name.as_ref().map_or(0, String::len))
            .sum::<usize>();
    (std::mem::size_of::<StackFrame>() + module + symbols) as u64
}
