//! Native symbolication on the fixture minidumps (tests/fixtures/native, see its README):
//! stack walking and symbolication per debug file format, missing symbols, corrupt dumps.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use relay_processing::symbolicate::{
    symbolicate_minidump, FrameStatus, ImageStatus, LocalDirectory, NativeCrash, NativeFrame,
    NativeModule, StackwalkError, SymbolStore,
};

fn native_dir() -> PathBuf {
    common::fixture_dir("native")
}

/// A store over `dir` that keeps its derived files in `cache`.
fn cached_store(dir: &Path, cache: &Path) -> SymbolStore {
    SymbolStore::new(
        vec![Box::new(LocalDirectory::scan(dir).unwrap())],
        Some(cache.to_owned()),
    )
}

fn store(dirs: &[&Path]) -> SymbolStore {
    let sources = dirs
        .iter()
        .map(|d| Box::new(LocalDirectory::scan(d).unwrap()) as _)
        .collect();
    SymbolStore::new(sources, None)
}

/// Walks `dump` (relative to fixtures/native) with symbols from `dirs`, timing the case.
fn walk(case: &str, dump: &str, symbols: &SymbolStore) -> NativeCrash {
    let bytes = std::fs::read(native_dir().join(dump)).unwrap();
    let start = Instant::now();
    let crash = symbolicate_minidump(&bytes, symbols, None).unwrap();
    eprintln!("{case}: walked in {:?}", start.elapsed());
    crash
}

/// `function file:line` of the crashing thread's first `n` frames, innermost first.
fn top(crash: &NativeCrash, n: usize) -> Vec<String> {
    crash
        .crashing_thread()
        .expect("a crashing thread")
        .frames
        .iter()
        .take(n)
        .map(describe)
        .collect()
}

fn describe(frame: &NativeFrame) -> String {
    format!(
        "{} {}:{}{}",
        frame.function.as_deref().unwrap_or("?"),
        frame.filename.as_deref().unwrap_or("?"),
        frame.lineno.map_or("?".into(), |l| l.to_string()),
        if frame.inlined { " (inlined)" } else { "" }
    )
}

/// The crashing thread's frames without the inlined ones.
fn physical(crash: &NativeCrash) -> Vec<&NativeFrame> {
    let thread = crash.crashing_thread().expect("a crashing thread");
    thread.frames.iter().filter(|f| !f.inlined).collect()
}

/// A function name without its parameter list (`main(int, char**)` -> `main`).
fn base_name(function: Option<&str>) -> Option<&str> {
    function.map(|f| f.split('(').next().unwrap_or(f))
}

fn module_of<'a>(crash: &'a NativeCrash, frame: &NativeFrame) -> &'a NativeModule {
    &crash.modules[frame.module.expect("frame in a module")]
}

#[test]
fn windows_x86_with_pdb() {
    let dir = native_dir().join("windows-x86");
    let crash = walk("windows pdb", "windows-x86/windows.dmp", &store(&[&dir]));
    assert!(crash.crashed);
    assert_eq!(
        crash.crash_reason.as_deref(),
        Some("EXCEPTION_ACCESS_VIOLATION_WRITE")
    );
    assert_eq!(crash.crash_address, Some(0x45));
    assert_eq!(crash.system.os_version.as_deref(), Some("10.0.14393"));
    assert_eq!(crash.system.cpu_arch, "x86");

    let frames = physical(&crash);
    assert_eq!(
        base_name(frames[0].function.as_deref()),
        Some("main"),
        "{frames:#?}"
    );
    assert_eq!(
        (frames[0].filename.as_deref(), frames[0].lineno),
        (Some("main.cpp"), Some(35))
    );
    assert_eq!(frames[0].trust, "context");
    assert_eq!(frames[0].instruction_addr, 0x2a2a3d);
    assert_eq!(
        base_name(frames[1].function.as_deref()),
        Some("__scrt_common_main_seh"),
        "{frames:#?}"
    );
    assert_eq!(
        (frames[1].filename.as_deref(), frames[1].lineno),
        (Some("exe_common.inl"), Some(283))
    );
    assert_eq!(frames[1].trust, "cfi");
    for frame in &frames[..2] {
        assert_eq!(frame.status, FrameStatus::Symbolicated);
    }
    // Then the system libraries, for which we have nothing.
    let system = &frames[2..];
    assert!(!system.is_empty());
    assert!(module_of(&crash, system[0])
        .code_file
        .ends_with("kernel32.dll"));
    assert!(system
        .iter()
        .any(|f| module_of(&crash, f).code_file.ends_with("ntdll.dll")));
    for frame in system {
        assert_eq!(frame.status, FrameStatus::MissingSymbol);
        assert!(frame.function.is_none());
    }

    // The PDB records the inlined helpers above `main`.
    let thread = crash.crashing_thread().unwrap();
    let inlined = thread
        .frames
        .iter()
        .take_while(|f| f.inlined)
        .collect::<Vec<_>>();
    assert_eq!(inlined.len(), 2, "{:#?}", thread.frames);
    assert!(inlined[0].function.as_deref().unwrap().contains("crash"));
    assert!(inlined[1].function.as_deref().unwrap().contains("start"));

    // The PDB (real debug info) wins over the Breakpad file with the same debug id.
    let exe = module_of(&crash, frames[0]);
    assert_eq!(exe.debug_status, ImageStatus::Found);
    assert_eq!(exe.unwind_status, ImageStatus::Found);
    assert!(exe.debug_path.as_ref().unwrap().ends_with("crash.pdb"));
    assert_eq!(
        exe.debug_id.as_deref(),
        Some("3249d99d-0c40-4931-8610-f4e4fb0b6936-1")
    );
    assert_eq!(exe.code_id.as_deref(), Some("5ab380779000"));
}

#[test]
fn windows_x86_with_breakpad_only() {
    let dir = native_dir().join("windows-x86/symbols");
    let crash = walk("windows sym", "windows-x86/windows.dmp", &store(&[&dir]));
    let frames = physical(&crash);
    assert_eq!(describe(frames[0]), "main main.cpp:35");
    assert_eq!(
        describe(frames[1]),
        "__scrt_common_main_seh exe_common.inl:283"
    );
    let exe = module_of(&crash, frames[0]);
    assert!(exe.debug_path.as_ref().unwrap().ends_with("crash.sym"));
}

#[test]
fn linux_x86_64_with_dwarf() {
    let dir = native_dir().join("linux-x86_64");
    let crash = walk("linux dwarf", "linux-x86_64/linux.dmp", &store(&[&dir]));
    assert_eq!(crash.crash_address, Some(0x45));
    assert!(crash
        .crash_reason
        .as_deref()
        .unwrap()
        .starts_with("SIGSEGV"));
    assert_eq!(crash.system.cpu_arch, "x86_64");

    // crash.debug has no linkage names for the anonymous-namespace helpers, so their DWARF
    // names are unqualified (llvm-addr2line prints the same, see expected/).
    assert_eq!(
        top(&crash, 3),
        [
            "crash main.cpp:23 (inlined)",
            "start main.cpp:27 (inlined)",
            "main main.cpp:35"
        ]
    );
    let thread = crash.crashing_thread().unwrap();
    assert!(thread.frames[..3]
        .iter()
        .all(|f| f.instruction_addr == 0x401d72));
    assert!(thread.frames[..3]
        .iter()
        .all(|f| f.status == FrameStatus::Symbolicated));
    assert_eq!(
        thread.frames[2].abs_path.as_deref(),
        Some("/work/linux/main.cpp"),
        "paths are cleaned"
    );
    // The caller is libc, found through CFI from the ELF's .eh_frame; no symbols for it.
    let libc = &thread.frames[3];
    assert_eq!(libc.trust, "cfi");
    assert_eq!(libc.status, FrameStatus::MissingSymbol);
    assert!(module_of(&crash, libc).code_file.contains("libc-2.23.so"));

    // DWARF (crash.debug) wins over the Breakpad publics and the ELF's symbol table; unwind
    // info comes from the executable.
    let exe = module_of(&crash, &thread.frames[0]);
    assert!(exe.debug_path.as_ref().unwrap().ends_with("crash.debug"));
    assert!(exe
        .unwind_path
        .as_ref()
        .unwrap()
        .ends_with("linux-x86_64/crash"));
    assert_eq!(exe.image_type, "elf");
}

#[test]
fn linux_x86_64_with_breakpad_publics_only() {
    let dir = native_dir().join("linux-x86_64/symbols");
    let crash = walk("linux sym", "linux-x86_64/linux.dmp", &store(&[&dir]));
    let frames = physical(&crash);
    assert_eq!(frames[0].function.as_deref(), Some("main"));
    assert_eq!(frames[0].lineno, None);
    assert_eq!(frames[0].filename, None);
    assert_eq!(frames[0].status, FrameStatus::Symbolicated);
    assert!(!crash.crashing_thread().unwrap().frames[0].inlined);
    assert_eq!(
        frames[1].trust, "cfi",
        "STACK CFI from the .sym unwinds main"
    );
}

#[test]
fn macos_x86_64_with_dsym() {
    let dir = native_dir().join("macos-x86_64");
    let crash = walk("macos dsym", "macos-x86_64/macos.dmp", &store(&[&dir]));
    assert_eq!(crash.crash_address, Some(0x45));
    assert_eq!(
        top(&crash, 3),
        [
            "(anonymous namespace)::crash() main.cpp:21 (inlined)",
            "(anonymous namespace)::start() main.cpp:25 (inlined)",
            "main main.cpp:32"
        ]
    );
    let thread = crash.crashing_thread().unwrap();
    let exe = module_of(&crash, &thread.frames[0]);
    assert_eq!(thread.frames[0].instruction_addr - exe.image_addr, 0xdc15);
    assert_eq!(exe.image_type, "macho");
    let debug_path = exe
        .debug_path
        .as_ref()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(debug_path.contains("crash.dSYM"), "{debug_path}");
    // Unwound through the binary's unwind info into libdyld.
    assert_eq!(thread.frames[3].trust, "cfi");
    assert!(module_of(&crash, &thread.frames[3])
        .code_file
        .ends_with("libdyld.dylib"));
}

#[test]
fn macos_x86_64_with_breakpad_files() {
    // The plain .sym has no inline records: only `main`, at the line of the inlined code.
    let dir = native_dir().join("macos-x86_64/symbols");
    let crash = walk("macos sym", "macos-x86_64/macos.dmp", &store(&[&dir]));
    assert_eq!(top(&crash, 1), ["main main.cpp:21"]);

    // The .sym with INLINE records gives the inlined helpers.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        native_dir().join("macos-x86_64/crash.inlines.sym"),
        tmp.path().join("crash.inlines.sym"),
    )
    .unwrap();
    let crash = walk(
        "macos inline sym",
        "macos-x86_64/macos.dmp",
        &store(&[tmp.path()]),
    );
    let top3 = top(&crash, 3);
    assert!(top3[0].ends_with("main.cpp:21 (inlined)"), "{top3:?}");
    assert!(top3[0].contains("crash"), "{top3:?}");
    assert!(
        top3[1].contains("start") && top3[1].ends_with("main.cpp:25 (inlined)"),
        "{top3:?}"
    );
    assert_eq!(top3[2], "main main.cpp:32");

    // Both Breakpad files in one source: the richer (larger) one wins.
    std::fs::copy(
        native_dir().join("macos-x86_64/symbols/crash/67E9247C814E392BA027DBDE6748FCBF0/crash.sym"),
        tmp.path().join("crash.sym"),
    )
    .unwrap();
    let crash = walk(
        "macos both syms",
        "macos-x86_64/macos.dmp",
        &store(&[tmp.path()]),
    );
    assert_eq!(top(&crash, 3), top3);
}

#[test]
fn windows_xp_with_breakpad_symbols() {
    let dir = native_dir().join("rust-minidump/symbols");
    let crash = walk("xp sym", "rust-minidump/test.dmp", &store(&[&dir]));
    assert_eq!(
        crash.crash_reason.as_deref(),
        Some("EXCEPTION_ACCESS_VIOLATION_WRITE")
    );
    assert_eq!(crash.crash_address, Some(0x45));
    assert_eq!(
        top(&crash, 3),
        [
            "`anonymous namespace'::CrashFunction test_app.cc:58",
            "main test_app.cc:65",
            "__tmainCRTStartup crt0.c:327"
        ]
    );
    let frames = physical(&crash);
    assert!(module_of(&crash, frames[3])
        .code_file
        .ends_with("kernel32.dll"));
    assert_eq!(frames[3].status, FrameStatus::MissingSymbol);
    assert_eq!(
        frames[1].trust, "cfi",
        "STACK WIN records unwind the frames"
    );
}

#[test]
fn parse_only_dumps_walk_without_symbols() {
    let symbols = SymbolStore::empty();
    for dump in [
        "rust-minidump/linux-mini.dmp",
        "rust-minidump/simple-crashpad.dmp",
    ] {
        let crash = walk(dump, dump, &symbols);
        assert!(!crash.threads.is_empty(), "{dump}");
        assert!(!crash.modules.is_empty(), "{dump}");
        let frames = crash
            .threads
            .iter()
            .flat_map(|t| &t.frames)
            .collect::<Vec<_>>();
        assert!(!frames.is_empty(), "{dump}");
        for frame in frames {
            assert!(frame.function.is_none(), "{dump}: {frame:?}");
            assert!(
                matches!(
                    frame.status,
                    FrameStatus::MissingSymbol | FrameStatus::UnknownImage
                ),
                "{dump}: {frame:?}"
            );
            assert_eq!(
                frame.status == FrameStatus::UnknownImage,
                frame.module.is_none(),
                "{dump}: {frame:?}"
            );
        }
        for module in &crash.modules {
            assert!(matches!(
                module.debug_status,
                ImageStatus::Missing | ImageStatus::Unused
            ));
        }
    }
}

#[test]
fn missing_symbol_dir_gives_statuses_not_errors() {
    let store = store(&[Path::new("/nonexistent/relay-symbols")]);
    let crash = walk("no symbols", "linux-x86_64/linux.dmp", &store);
    let thread = crash.crashing_thread().unwrap();
    let top = &thread.frames[0];
    assert_eq!(top.instruction_addr, 0x401d72);
    assert_eq!(top.status, FrameStatus::MissingSymbol);
    assert_eq!(top.function, None);
    assert!(
        thread.frames.len() > 1,
        "stack scanning still finds callers"
    );
    let exe = module_of(&crash, top);
    assert_eq!(exe.debug_status, ImageStatus::Missing);
    assert_eq!(exe.unwind_status, ImageStatus::Missing);
    assert!(crash
        .modules
        .iter()
        .any(|m| m.debug_status == ImageStatus::Unused));
}

#[test]
fn corrupt_dumps_are_clear_errors() {
    let symbols = SymbolStore::empty();
    let err = symbolicate_minidump(b"this is not a minidump at all", &symbols, None).unwrap_err();
    assert!(matches!(err, StackwalkError::Malformed(_)), "{err:?}");
    assert!(err.to_string().starts_with("corrupt minidump"), "{err}");

    // A dump cut off after its header and directory.
    let bytes = std::fs::read(native_dir().join("linux-x86_64/linux.dmp")).unwrap();
    let err = symbolicate_minidump(&bytes[..200], &symbols, None).unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn past_deadline_frames_time_out() {
    let dir = native_dir().join("linux-x86_64");
    let symbols = store(&[&dir]);
    let bytes = std::fs::read(native_dir().join("linux-x86_64/linux.dmp")).unwrap();
    let crash = symbolicate_minidump(&bytes, &symbols, Some(Instant::now())).unwrap();
    let top = &crash.crashing_thread().unwrap().frames[0];
    assert_eq!(top.status, FrameStatus::Timeout);
    assert_eq!(top.instruction_addr, 0x401d72);
    assert_eq!(module_of(&crash, top).debug_status, ImageStatus::Timeout);

    // Nothing was cached for the timed-out modules: a later event gets symbols.
    let crash = symbolicate_minidump(&bytes, &symbols, None).unwrap();
    assert_eq!(top_function(&crash), Some("crash"));
}

fn top_function(crash: &NativeCrash) -> Option<&str> {
    crash.crashing_thread()?.frames.first()?.function.as_deref()
}

#[test]
fn derived_files_are_cached_on_disk() {
    let dir = native_dir().join("linux-x86_64");
    let cache = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(native_dir().join("linux-x86_64/linux.dmp")).unwrap();

    let cold = cached_store(&dir, cache.path());
    let first = symbolicate_minidump(&bytes, &cold, None).unwrap();
    let stats = cold.stats();
    assert_eq!(
        (stats.symcaches_built, stats.cfi_built),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.symcaches_from_disk, stats.cfi_from_disk),
        (0, 0),
        "{stats:?}"
    );

    // Same store again: answered from memory.
    symbolicate_minidump(&bytes, &cold, None).unwrap();
    assert_eq!(cold.stats().symcaches_built, 1);
    assert!(cold.stats().memory_hits > 0);

    // A new store (a restarted relay) reads the derived files back instead of rebuilding.
    let warm = cached_store(&dir, cache.path());
    let second = symbolicate_minidump(&bytes, &warm, None).unwrap();
    let stats = warm.stats();
    assert_eq!(
        (stats.symcaches_built, stats.cfi_built),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(
        (stats.symcaches_from_disk, stats.cfi_from_disk),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(first, second);
    let cached = std::fs::read_dir(cache.path().join("symcache"))
        .unwrap()
        .count();
    assert_eq!(cached, 1);
}

/// Cache files are not synced; one a crash cut short is detected and rebuilt.
#[test]
fn cut_short_cache_files_are_rebuilt() {
    let dir = native_dir().join("linux-x86_64");
    let cache = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(native_dir().join("linux-x86_64/linux.dmp")).unwrap();
    let store = || cached_store(&dir, cache.path());
    let first = symbolicate_minidump(&bytes, &store(), None).unwrap();
    for kind in ["symcache", "cfi"] {
        let [path] = <[PathBuf; 1]>::try_from(walk_files(&cache.path().join(kind)))
            .expect("one cache file of each kind");
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() - 3]).unwrap();
    }
    let again = store();
    let second = symbolicate_minidump(&bytes, &again, None).unwrap();
    let stats = again.stats();
    assert_eq!(
        (stats.symcaches_built, stats.cfi_built),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(first, second);
    // Rewritten whole: the next store reads them back.
    let third = store();
    symbolicate_minidump(&bytes, &third, None).unwrap();
    let stats = third.stats();
    assert_eq!(
        (stats.symcaches_from_disk, stats.cfi_from_disk),
        (1, 1),
        "{stats:?}"
    );
}

#[test]
fn unreadable_debug_file_is_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("crash.sym"),
        "MODULE Linux x86_64 C0BCC3F19827FE653058404B2831D9E60 crash\n\
         FUNC 1d00 zz 0 broken\n",
    )
    .unwrap();
    let crash = walk(
        "malformed sym",
        "linux-x86_64/linux.dmp",
        &store(&[tmp.path()]),
    );
    let top = &crash.crashing_thread().unwrap().frames[0];
    assert_eq!(top.status, FrameStatus::Malformed, "{top:?}");
    let exe = module_of(&crash, top);
    assert_eq!(exe.debug_status, ImageStatus::Malformed);
    assert!(exe.debug_path.as_ref().unwrap().ends_with("crash.sym"));
}

#[test]
fn one_store_serves_several_threads() {
    let dir = native_dir();
    let cache = tempfile::tempdir().unwrap();
    let sources = [
        "windows-x86",
        "linux-x86_64",
        "macos-x86_64",
        "rust-minidump/symbols",
    ]
    .iter()
    .map(|d| Box::new(LocalDirectory::scan(dir.join(d)).unwrap()) as _)
    .collect();
    let shared = SymbolStore::new(sources, Some(cache.path().to_owned()));
    let dumps = [
        "windows-x86/windows.dmp",
        "linux-x86_64/linux.dmp",
        "macos-x86_64/macos.dmp",
        "rust-minidump/test.dmp",
    ];
    let results = std::thread::scope(|scope| {
        let handles = dumps
            .iter()
            .cycle()
            .take(8)
            .map(|dump| {
                let shared = &shared;
                scope.spawn(move || walk(dump, dump, shared))
            })
            .collect::<Vec<_>>();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (i, crash) in results.iter().enumerate() {
        assert_eq!(
            crash,
            &results[i % dumps.len()],
            "{}",
            dumps[i % dumps.len()]
        );
        assert_eq!(
            crash.crashing_thread().unwrap().frames[0].status,
            FrameStatus::Symbolicated,
            "{}",
            dumps[i % dumps.len()]
        );
    }
}

/// A Breakpad file is indexed where it is: its cache file holds only the index, and a new
/// store (a restarted relay) reads the text from the `.sym` file again.
#[test]
fn breakpad_files_are_indexed_in_place() {
    let dir = native_dir().join("windows-x86/symbols");
    let cache = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(native_dir().join("windows-x86/windows.dmp")).unwrap();
    let store = || cached_store(&dir, cache.path());
    let cold = store();
    let first = symbolicate_minidump(&bytes, &cold, None).unwrap();
    let stats = cold.stats();
    assert_eq!(
        (stats.symcaches_built, stats.cfi_built),
        (0, 1),
        "{stats:?}"
    );
    assert!(top_function(&first).is_some(), "{first:#?}");

    let sym_len = walk_files(&dir)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum::<u64>();
    let cached = walk_files(&cache.path().join("cfi"));
    assert_eq!(cached.len(), 1, "{cached:?}");
    let cached_len = cached[0].metadata().unwrap().len();
    assert!(
        cached_len < sym_len / 2,
        "the cache file ({cached_len} bytes) holds more than an index of the .sym ({sym_len})"
    );

    let warm = store();
    let second = symbolicate_minidump(&bytes, &warm, None).unwrap();
    let stats = warm.stats();
    assert_eq!((stats.cfi_built, stats.cfi_from_disk), (0, 1), "{stats:?}");
    assert_eq!(first, second);
}

/// Every file below `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}
