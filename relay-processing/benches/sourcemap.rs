//! Rust side of the source map benchmark against Mozilla `source-map` 0.8: see
//! bench/sourcemap/run.sh, which runs the Node side first (it writes the positions) and then
//!
//! ```text
//! cargo bench -p relay-processing --bench sourcemap --profile bench -- \
//!     <fixtures/js dir> <out dir> <runs> [parse reps] [lookup reps]
//! ```
//!
//! Per case of bench/sourcemap/cases.json and per run it measures:
//! - `parse_ms`: [`SourceMapView::build`] from the map text alone (JSON parse, mappings decode,
//!   flattening of index maps, index serialisation and opening), mean of `parse reps` builds;
//! - `parse_scopes_ms`: the same with the minified source (adds the scope names), when the case
//!   has one;
//! - `reopen_ms`: a fresh [`SourceMapStore`] over an artifact directory whose cache is already
//!   on disk resolving the file (scan, `stat`, memory-map, validate): what a restarted relay
//!   pays per map instead of the parse;
//! - `lookups_per_s`: [`SourceMapView::lookup_raw`] (0-based, borrowed strings) over every
//!   position, touching the source, line and name of each result (what `originalPositionFor`
//!   returns);
//! - `lookups_event_per_s`: [`SourceMapView::lookup`], the 1-based lookup the event path uses,
//!   with owned strings and context lines.
//!
//! `check` must equal the Node side's: both tools resolve every position to the same lines.
//! Results go to `<out dir>/rust.json`.

use std::path::PathBuf;
use std::time::Instant;

use relay_processing::sourcemap::{SourceMapStore, SourceMapView};
use serde_json::{json, Value};

fn main() {
    // `cargo bench` passes `--bench`; every other argument is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [fixtures, out, rest @ ..] = args.as_slice() else {
        // Also what `cargo test --all-targets` runs: nothing to measure without inputs.
        eprintln!(
            "usage: sourcemap <fixtures/js dir> <out dir> [runs] [parse reps] [lookup reps]\n\
             (run bench/sourcemap/run.sh, which provides them)"
        );
        return;
    };
    let number = |i: usize, default: usize| rest.get(i).map_or(default, |s| s.parse().unwrap());
    let (runs, parse_reps, lookup_reps) = (number(0, 7), number(1, 10), number(2, 20));
    let fixtures = PathBuf::from(fixtures);
    let out = PathBuf::from(out);
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/sourcemap");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(bench_dir.join("cases.json")).unwrap())
            .unwrap();

    let mut results = serde_json::Map::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let map = std::fs::read_to_string(fixtures.join(case["map"].as_str().unwrap())).unwrap();
        let minified = case["minified"]
            .as_str()
            .map(|m| std::fs::read_to_string(fixtures.join(m)).unwrap());
        let positions: Vec<(u32, u32)> = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("positions-{name}.json")))
                .expect("positions written by bench.js"),
        )
        .unwrap();

        // An artifact directory with this case's files, and a warm disk cache.
        let artifacts = tempfile::tempdir().unwrap();
        let cache_dir = artifacts.path().join("cache");
        let dir = artifacts.path().join("artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.js.map"), &map).unwrap();
        if let Some(minified) = &minified {
            std::fs::write(dir.join("app.js"), minified).unwrap();
        }
        let reopen = || {
            let store = SourceMapStore::open(&dir, &cache_dir, 1 << 30).unwrap();
            store
                .resolve("https://example.com/app.js", None)
                .unwrap()
                .unwrap()
        };
        reopen();

        let mut parse = Vec::new();
        let mut reopen_times = Vec::new();
        let mut parse_scopes = Vec::new();
        let mut lookups = Vec::new();
        let mut lookups_event = Vec::new();
        let mut check = 0;
        let mut cache_bytes = 0;
        // Run 0 warms up and is not recorded.
        for run in 0..=runs {
            let parse_ms = mean_ms(parse_reps, || {
                SourceMapView::build(None, &map).unwrap();
            });
            let scopes_ms = minified.as_deref().map(|minified| {
                mean_ms(parse_reps, || {
                    SourceMapView::build(Some(minified), &map).unwrap();
                })
            });
            let reopen_ms = mean_ms(parse_reps, || {
                reopen();
            });
            let view = SourceMapView::build(minified.as_deref(), &map).unwrap();
            cache_bytes = view.size();
            let start = Instant::now();
            for _ in 0..lookup_reps {
                check = lookup_pass(&view, &positions);
            }
            let per_s = rate(positions.len() * lookup_reps, start);
            let start = Instant::now();
            let mut sink = 0usize;
            for _ in 0..lookup_reps {
                for &(line, col) in &positions {
                    if let Some(loc) = view.lookup(line, col) {
                        sink += loc.line as usize + loc.context.map_or(0, |c| c.line.len());
                    }
                }
            }
            std::hint::black_box(sink);
            let event_per_s = rate(positions.len() * lookup_reps, start);
            if run > 0 {
                parse.push(parse_ms);
                parse_scopes.extend(scopes_ms);
                reopen_times.push(reopen_ms);
                lookups.push(per_s);
                lookups_event.push(event_per_s);
            }
        }
        eprintln!("rust: {name}: {} positions, {runs} runs", positions.len());
        results.insert(
            name.to_owned(),
            json!({
                "map_bytes": map.len(),
                "cache_bytes": cache_bytes,
                "positions": positions.len(),
                "check": check,
                "parse_ms": parse,
                "parse_scopes_ms": parse_scopes,
                "reopen_ms": reopen_times,
                "lookups_per_s": lookups,
                "lookups_event_per_s": lookups_event,
            }),
        );
    }
    let report = json!({
        "tool": "relay-processing::sourcemap index",
        "debug_assertions": cfg!(debug_assertions),
        "cases": results,
    });
    std::fs::write(
        out.join("rust.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
}

/// Raw 0-based lookups; the checksum matches bench.js: 1-based lines plus named results.
fn lookup_pass(view: &SourceMapView, positions: &[(u32, u32)]) -> u64 {
    let mut check = 0u64;
    for &(line, col) in positions {
        let Some(location) = view.lookup_raw(line - 1, col - 1) else {
            continue;
        };
        if location.source.is_some() {
            check += u64::from(location.line) + 1 + u64::from(location.name.is_some());
        }
    }
    check
}

fn mean_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / reps as f64
}

fn rate(count: usize, start: Instant) -> f64 {
    count as f64 / start.elapsed().as_secs_f64()
}
