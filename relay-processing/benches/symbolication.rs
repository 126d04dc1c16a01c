//! Criterion benchmarks of symbolication (issue 8, item 6), in process, on the fixtures:
//!
//! - `minidump_memory/<case>`: [`symbolicate_minidump`] with the modules already loaded in
//!   the store's memory, as a running relay has them after its first event: the stack walk and
//!   the symbol lookups (SymCache or the indexed Breakpad text);
//! - `minidump_disk_cache/<case>`: a new store over a filled cache directory per iteration:
//!   what a restarted relay (or a warm `relay symbolicate`, minus process start) pays;
//! - `minidump_cold/<case>`: a new store without a cache directory per iteration, so every
//!   module's SymCache or index is built from its debug file;
//! - `sourcemap_build/<map>`: [`SourceMapView::build`] from the map text (parse and index);
//! - `sourcemap_lookup/<map>`: [`SourceMapView::lookup_raw`] at every generated position of
//!   the map (throughput: lookups).
//!
//! Cases `breakpad-*` use the fixtures' Breakpad `.sym` files; `native-*` the debug files
//! themselves (ELF with DWARF, dSYM, PDB), which win over the `.sym` files and go through a
//! SymCache.
//!
//! ```text
//! cargo bench -p relay-processing --bench symbolication      # or: bench/run.sh micro
//! ```
//!
//! Reads the fixtures from `$FIXTURES_DIR` (default the repository's `tests/fixtures`); missing
//! fixtures are an error.

use std::path::{Path, PathBuf};

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use relay_processing::sourcemap::SourceMapView;
use relay_processing::symbolicate::cache::SymbolStore;
use relay_processing::symbolicate::sources::LocalDirectory;
use relay_processing::symbolicate::stackwalk::symbolicate_minidump;

/// (case, dump, symbol directory), relative to `fixtures/native`.
const DUMPS: &[(&str, &str, &str)] = &[
    (
        "breakpad-windows-x86",
        "windows-x86/windows.dmp",
        "windows-x86/symbols",
    ),
    (
        "breakpad-linux-x86_64",
        "linux-x86_64/linux.dmp",
        "linux-x86_64/symbols",
    ),
    (
        "breakpad-macos-x86_64",
        "macos-x86_64/macos.dmp",
        "macos-x86_64/symbols",
    ),
    (
        "breakpad-windows-xp",
        "rust-minidump/test.dmp",
        "rust-minidump/symbols",
    ),
    (
        "native-windows-x86",
        "windows-x86/windows.dmp",
        "windows-x86",
    ),
    (
        "native-linux-x86_64",
        "linux-x86_64/linux.dmp",
        "linux-x86_64",
    ),
    (
        "native-macos-x86_64",
        "macos-x86_64/macos.dmp",
        "macos-x86_64",
    ),
];

/// (name, map), relative to `fixtures/js`: the maps of the Mozilla comparison.
const MAPS: &[(&str, &str)] = &[
    ("jquery", "symbolic-py/jquery.min.map"),
    ("react-native", "symbolic-py/android-release.bundle.map"),
];

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"));
    assert!(
        dir.join("native").is_dir(),
        "no fixtures at {}",
        dir.display()
    );
    dir
}

fn store(symbols: &Path, cache_dir: Option<&Path>) -> SymbolStore {
    let source = LocalDirectory::scan(symbols).expect("the symbol directory can be scanned");
    SymbolStore::new(vec![Box::new(source)], cache_dir.map(Path::to_owned))
}

/// Symbolicated frames of the crashing thread: a benchmark that resolves nothing measures
/// nothing, so each case must resolve at least one.
fn resolved_frames(dump: &[u8], symbols: &SymbolStore) -> usize {
    let crash = symbolicate_minidump(dump, symbols, None).expect("the fixture dump is walked");
    crash.crashing_thread().map_or(0, |t| {
        t.frames.iter().filter(|f| f.function.is_some()).count()
    })
}

fn minidumps(c: &mut Criterion) {
    let fixtures = fixtures();
    let native = fixtures.join("native");
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    for (case, dump, symbols) in DUMPS {
        let dump = std::fs::read(native.join(dump)).expect("the fixture dump is readable");
        let symbols = native.join(symbols);
        let cache_dir = cache.path().join(case);

        let memory = store(&symbols, Some(&cache_dir));
        assert!(
            resolved_frames(&dump, &memory) > 0,
            "{case}: no frame resolved"
        );
        c.benchmark_group("minidump_memory")
            .bench_function(*case, |b| {
                b.iter(|| symbolicate_minidump(black_box(&dump), &memory, None).unwrap())
            });
        // `memory` filled the cache directory on its first walk.
        c.benchmark_group("minidump_disk_cache")
            .bench_function(*case, |b| {
                b.iter_batched(
                    || store(&symbols, Some(&cache_dir)),
                    |fresh| symbolicate_minidump(black_box(&dump), &fresh, None).unwrap(),
                    BatchSize::SmallInput,
                )
            });
        c.benchmark_group("minidump_cold")
            .bench_function(*case, |b| {
                b.iter_batched(
                    || store(&symbols, None),
                    |fresh| symbolicate_minidump(black_box(&dump), &fresh, None).unwrap(),
                    BatchSize::SmallInput,
                )
            });
    }
}

/// The generated (line, column) of every mapping of a source map, 0-based: the `mappings`
/// string's segments, of which only the first field (the column delta) matters here.
fn generated_positions(map: &str) -> Vec<(u32, u32)> {
    let json: serde_json::Value = serde_json::from_str(map).expect("the fixture map is JSON");
    let mappings = json["mappings"].as_str().expect("a map with mappings");
    let mut positions = Vec::new();
    for (line, segments) in mappings.split(';').enumerate() {
        let mut column = 0i64;
        for segment in segments.split(',').filter(|s| !s.is_empty()) {
            column += first_vlq(segment);
            positions.push((line as u32, column as u32));
        }
    }
    positions
}

/// The first base64 VLQ value of a segment.
fn first_vlq(segment: &str) -> i64 {
    let (mut value, mut shift) = (0i64, 0);
    for byte in segment.bytes() {
        let digit = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            _ => 63,
        } as i64;
        value |= (digit & 31) << shift;
        shift += 5;
        if digit & 32 == 0 {
            break;
        }
    }
    if value & 1 == 1 {
        -(value >> 1)
    } else {
        value >> 1
    }
}

fn sourcemaps(c: &mut Criterion) {
    let fixtures = fixtures();
    for (name, path) in MAPS {
        let map = std::fs::read_to_string(fixtures.join("js").join(path))
            .expect("the fixture map is readable");
        c.benchmark_group("sourcemap_build")
            .bench_function(*name, |b| {
                b.iter(|| SourceMapView::build(None, black_box(&map)).unwrap())
            });

        let view = SourceMapView::build(None, &map).unwrap();
        let positions = generated_positions(&map);
        let found = positions
            .iter()
            .filter(|&&(line, col)| view.lookup_raw(line, col).is_some())
            .count();
        assert_eq!(
            found,
            positions.len(),
            "{name}: a generated position did not resolve"
        );
        let mut group = c.benchmark_group("sourcemap_lookup");
        group.throughput(Throughput::Elements(positions.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut lines = 0u64;
                for &(line, col) in &positions {
                    if let Some(location) = view.lookup_raw(line, col) {
                        lines += u64::from(location.line);
                    }
                }
                lines
            })
        });
        group.finish();
    }
}

criterion_group!(benches, minidumps, sourcemaps);
criterion_main!(benches);
