//! Replays every seed (`fuzz/seeds/<target>/`) and every saved finding
//! (`fuzz/regressions/<target>/`) through the fuzz targets' entry points, on the stable
//! toolchain: a finding once fixed stays fixed, and the seeds keep working inputs working.

use std::path::{Path, PathBuf};

use relay_processing::fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `name`'s entry point on each of its seeds and regressions; returns how many ran.
fn replay(name: &str) -> usize {
    let (_, run) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let seeds = inputs(&fuzz_dir().join("seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seeds");
    let regressions = inputs(&fuzz_dir().join("regressions").join(name));
    for file in seeds.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{name}: {}", file.display());
        run(&data);
    }
    eprintln!(
        "{name}: replayed {} seeds and {} regressions",
        seeds.len(),
        regressions.len()
    );
    seeds.len() + regressions.len()
}

#[test]
fn every_target_has_a_replay_test() {
    let tested = [
        "envelope",
        "intake",
        "multipart",
        "event",
        "event_structured",
        "sourcemap",
        "breakpad",
        "minidump",
        "upload",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, tested);
}

macro_rules! replay_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            assert!(replay(stringify!($name)) > 0);
        }
    )*};
}

replay_tests!(
    envelope,
    intake,
    multipart,
    event,
    event_structured,
    sourcemap,
    breakpad,
    minidump,
    upload
);
