#!/usr/bin/env bash
# Source map benchmark: relay's source map index vs Mozilla source-map 0.8 (npm), on
# the jQuery and React Native maps of tests/fixtures/js, same maps and same positions.
#
#   bench/sourcemap/run.sh [runs] [parse reps] [lookup reps]      (defaults 7 10 20)
#
# Installs source-map into bench/sourcemap/node_modules (npm ci, pinned by package-lock.json),
# runs the Node side (which also writes the positions: every generated position of each map),
# then the Rust side (`cargo bench`, harness-less bench relay-processing/benches/sourcemap.rs),
# and prints the Markdown table for docs/benchmarks.md. Intermediate JSON goes to
# bench/sourcemap/out/.
#
# The Rust side builds with the `bench` profile by default (fully optimised, like a release
# build); BENCH_PROFILE=dev reuses the workspace's debug build instead (dependencies at
# opt-level 2, our crate at 1, debug assertions on), for a quick check. The optimised build goes
# to the other benchmarks' target dir ($HOME/.cache/relay-bench-target) unless CARGO_TARGET_DIR
# says otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures=${FIXTURES_DIR:-$root/tests/fixtures}/js
out=$here/out
runs=${1:-7}
parse_reps=${2:-10}
lookup_reps=${3:-20}
profile=${BENCH_PROFILE:-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/relay-bench-target}

(cd "$here" && npm ci --no-audit --no-fund --silent)
mkdir -p "$out"
node "$here/bench.js" "$fixtures" "$out" "$runs" "$parse_reps" "$lookup_reps"
cargo bench --manifest-path "$root/Cargo.toml" -p relay-processing --bench sourcemap \
    --profile "$profile" -- "$fixtures" "$out" "$runs" "$parse_reps" "$lookup_reps"
node "$here/report.js" "$out"
