//! Bounded work per minidump (issue 17): a dump built to be slow and large to walk is cut off
//! at its bounds, says which, and the next dump is symbolicated normally.
//!
//! The hostile dump is made here (the e2e suite's `tests/e2e/hostile_dump.py` writes the same
//! layout): `threads` threads that all share one context and one stack memory region of
//! `stack_bytes`, every word of which is a plausible return address into the dump's only
//! module. The module has no debug file, so stack scanning accepts every word: without bounds
//! each thread walks to `stack_bytes / 8` frames (over a kilobyte each), and the file's size
//! does not grow with the thread count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_processing::symbolicate::{
    symbolicate_minidump, symbolicate_minidump_within, CutOff, FrameStatus, LocalDirectory,
    SymbolSource, SymbolStore, WalkLimits,
};

const MODULE_BASE: u64 = 0x5555_0000_0000;
const MODULE_SIZE: u32 = 0x10_0000;
const STACK_BASE: u64 = 0x7ffd_0000_0000;
const CONTEXT_AMD64_SIZE: usize = 1232;

/// Appends little-endian integers.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u16(&mut self, v: u16) {
        self.0.extend(v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend(v.to_le_bytes());
    }
    fn pos(&self) -> u32 {
        self.0.len() as u32
    }
}

/// A Linux x86-64 minidump that crashed on thread 1 with `threads` threads sharing one stack
/// of `stack_bytes` full of addresses inside the module.
fn hostile_dump(threads: u32, stack_bytes: u32) -> Vec<u8> {
    const STREAMS: u32 = 4;
    let mut w = Writer::default();
    let header_and_directory = 32 + 12 * STREAMS;
    let system_rva = header_and_directory;
    let string_rva = system_rva + 56;
    let name: Vec<u16> = "/hostile/libslow.so".encode_utf16().collect();
    let name_rva = string_rva + 4;
    let modules_rva = name_rva + 4 + 2 * name.len() as u32;
    let exception_rva = modules_rva + 4 + 108;
    let threads_rva = exception_rva + 168;
    let context_rva = threads_rva + 4 + 48 * threads;
    let stack_rva = context_rva + CONTEXT_AMD64_SIZE as u32;

    // Header: signature, version, stream count, directory, checksum, time, flags.
    w.u32(0x504d_444d);
    w.u32(0xa793);
    w.u32(STREAMS);
    w.u32(32);
    w.u32(0);
    w.u32(0);
    w.u64(0);
    // Directory: type, size, rva.
    for (ty, size, rva) in [
        (7, 56, system_rva),
        (4, 4 + 108, modules_rva),
        (6, 168, exception_rva),
        (3, 4 + 48 * threads, threads_rva),
    ] {
        w.u32(ty);
        w.u32(size);
        w.u32(rva);
    }
    // MINIDUMP_SYSTEM_INFO: AMD64, one CPU, Linux, empty CSD version.
    w.u16(9);
    w.u16(6);
    w.u16(0);
    w.0.extend([1, 1]);
    w.u32(5);
    w.u32(15);
    w.u32(0);
    w.u32(0x8201);
    w.u32(string_rva);
    w.u16(0);
    w.u16(0);
    w.0.extend([0; 24]);
    // The empty CSD string, then the module name.
    w.u32(0);
    w.u32(2 * name.len() as u32);
    for unit in &name {
        w.u16(*unit);
    }
    // MINIDUMP_MODULE_LIST with one module and no debug identifiers.
    assert_eq!(w.pos(), modules_rva);
    w.u32(1);
    w.u64(MODULE_BASE);
    w.u32(MODULE_SIZE);
    w.u32(0);
    w.u32(0);
    w.u32(name_rva);
    w.0.extend([0; 52 + 8 + 8 + 16]);
    // MINIDUMP_EXCEPTION_STREAM: SIGSEGV on thread 1.
    w.u32(1);
    w.u32(0);
    w.u32(11);
    w.u32(0);
    w.u64(0);
    w.u64(MODULE_BASE + 0x500);
    w.u32(0);
    w.u32(0);
    w.0.extend([0; 120]);
    w.u32(CONTEXT_AMD64_SIZE as u32);
    w.u32(context_rva);
    // MINIDUMP_THREAD_LIST: every thread points at the same context and stack.
    assert_eq!(w.pos(), threads_rva);
    w.u32(threads);
    for id in 1..=threads {
        w.u32(id);
        w.0.extend([0; 12]);
        w.u64(0);
        w.u64(STACK_BASE);
        w.u32(stack_bytes);
        w.u32(stack_rva);
        w.u32(CONTEXT_AMD64_SIZE as u32);
        w.u32(context_rva);
    }
    // CONTEXT_AMD64: flags (control and integer registers), rsp at the stack, rip in the
    // module, rbp 0 so that frame pointers lead nowhere and every frame is found by scanning.
    let mut context = vec![0u8; CONTEXT_AMD64_SIZE];
    context[48..52].copy_from_slice(&0x0010_000fu32.to_le_bytes());
    context[152..160].copy_from_slice(&STACK_BASE.to_le_bytes());
    context[248..256].copy_from_slice(&(MODULE_BASE + 0x500).to_le_bytes());
    w.0.extend(context);
    for i in 0..u64::from(stack_bytes / 8) {
        w.u64(MODULE_BASE + 0x1000 + (i % 0x1000) * 16);
    }
    w.0
}

fn native_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/native")
}

fn linux_store() -> SymbolStore {
    let dir = native_dir().join("linux-x86_64");
    let sources: Vec<Box<dyn SymbolSource>> = vec![Box::new(LocalDirectory::scan(&dir).unwrap())];
    SymbolStore::new(sources, None)
}

/// Limits that only the deadline can hit on the hostile dump.
fn only_deadline(deadline: Instant) -> WalkLimits {
    WalkLimits {
        deadline: Some(deadline),
        max_threads: usize::MAX,
        max_frames_per_thread: usize::MAX,
        max_stack_bytes: u64::MAX,
        max_walk_bytes: u64::MAX,
    }
}

/// The normal Linux fixture, walked after a hostile dump on the same store and thread.
fn assert_normal_walk(store: &SymbolStore) {
    let bytes = std::fs::read(native_dir().join("linux-x86_64/linux.dmp")).unwrap();
    let crash = symbolicate_minidump(&bytes, store, None).unwrap();
    assert!(crash.cut_off.is_empty(), "{:?}", crash.cut_off);
    let top = &crash.crashing_thread().unwrap().frames[0];
    assert_eq!(top.function.as_deref(), Some("crash"));
    assert_eq!(top.status, FrameStatus::Symbolicated);
}

#[test]
fn the_hostile_dump_parses_and_scans_every_word() {
    let dump = hostile_dump(2, 4096);
    let crash = symbolicate_minidump(&dump, &linux_store(), None).unwrap();
    assert_eq!(crash.threads.len(), 2);
    let crashing = crash.crashing_thread().unwrap();
    assert_eq!(crashing.id, 1);
    // The context frame, then one scanned frame per word of the 4 KiB stack.
    assert_eq!(crashing.frames.len(), 1 + 4096 / 8);
    assert!(crashing.frames[1..].iter().all(|f| f.trust == "scan"));
    assert!(crash.cut_off.is_empty());
}

#[test]
fn a_slow_dump_is_cut_off_at_the_deadline_and_the_next_dump_walks_normally() {
    let store = linux_store();
    // Unbounded but for the deadline, this walk would make 2000 threads x 131071 frames.
    let dump = hostile_dump(2000, 1 << 20);
    let limits = only_deadline(Instant::now() + Duration::from_millis(300));
    let crash = symbolicate_minidump_within(&dump, &store, &limits).unwrap();

    assert_eq!(crash.cut_off, vec![CutOff::Deadline]);
    let crashing = crash.crashing_thread().unwrap();
    assert!(
        crashing.frames.len() > 1,
        "the crashing thread was walked first"
    );
    let cut = crash
        .threads
        .iter()
        .filter(|t| t.cut_off == Some(CutOff::Deadline))
        .count();
    assert!(cut > 0);
    let frames: usize = crash.threads.iter().map(|t| t.frames.len()).sum();
    eprintln!("{frames} frames walked in {cut} threads cut at the deadline");
    // Threads the deadline stopped before their walk keep their context frame.
    let last = crash.threads.last().unwrap();
    assert_eq!(last.cut_off, Some(CutOff::Deadline));
    assert_eq!(last.frames.len(), 1);

    assert_normal_walk(&store);
}

#[test]
fn frames_per_thread_threads_and_stack_bytes_are_bounded() {
    let store = linux_store();
    let dump = hostile_dump(50, 64 * 1024);
    let limits = WalkLimits {
        max_threads: 10,
        max_frames_per_thread: 100,
        ..WalkLimits::default()
    };
    let crash = symbolicate_minidump_within(&dump, &store, &limits).unwrap();
    assert_eq!(crash.threads.len(), 10);
    assert!(crash.threads.iter().all(|t| t.frames.len() == 100));
    assert!(crash
        .threads
        .iter()
        .all(|t| t.cut_off == Some(CutOff::FramesPerThread)));
    assert_eq!(
        crash.cut_off,
        vec![CutOff::Threads, CutOff::FramesPerThread]
    );

    // A stack larger than max_stack_bytes is walked as far as that many bytes go.
    let limits = WalkLimits {
        max_stack_bytes: 8 * 1024,
        max_frames_per_thread: usize::MAX,
        ..WalkLimits::default()
    };
    let crash = symbolicate_minidump_within(&hostile_dump(1, 64 * 1024), &store, &limits).unwrap();
    let thread = &crash.threads[0];
    assert_eq!(thread.frames.len(), 1 + 8 * 1024 / 8);
    assert_eq!(thread.cut_off, Some(CutOff::StackBytes));

    assert_normal_walk(&store);
}

#[test]
fn frame_memory_is_bounded_per_dump() {
    let store = linux_store();
    let limits = WalkLimits {
        max_walk_bytes: 4 << 20,
        ..WalkLimits::default()
    };
    let crash =
        symbolicate_minidump_within(&hostile_dump(500, 64 * 1024), &store, &limits).unwrap();
    let frames: usize = crash.threads.iter().map(|t| t.frames.len()).sum();
    let frame_size = std::mem::size_of::<minidump_unwind::StackFrame>();
    // The bound is checked at every frame inside a module: it overshoots by at most one.
    assert!(
        frames * frame_size <= (4 << 20) + 500 * 2 * frame_size,
        "{frames}"
    );
    assert!(
        crash.cut_off.contains(&CutOff::WalkBytes),
        "{:?}",
        crash.cut_off
    );
    let unwalked = crash
        .threads
        .iter()
        .filter(|t| t.frames.len() == 1 && t.cut_off == Some(CutOff::WalkBytes))
        .count();
    assert!(unwalked > 400, "{unwalked}");
    assert_normal_walk(&store);
}
