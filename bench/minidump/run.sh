#!/usr/bin/env bash
# Minidump benchmark: `relay symbolicate` vs `minidump-stackwalk` 0.27 (crates.io), on the same
# dumps and the same Breakpad symbols (tests/fixtures/native/*/symbols), wall time per
# process, with a cold and a warm relay cache.
#
#   bench/minidump/run.sh [runs]          (default 15)
#   BASELINE_RELAY=/path/to/old/relay bench/minidump/run.sh [runs]
#
# - Installs minidump-stackwalk 0.27 into ~/.cache/relay-ci/minidump-stackwalk (cached) and
#   hyperfine (Debian package) when missing.
# - Builds relay in the release profile into its own target dir ($BENCH_TARGET_DIR, default
#   ~/.cache/relay-bench-target), never the workspace's debug build.
# - cold: relay gets an empty --cache-dir before every run (hyperfine --prepare), so it indexes
#   the .sym files (and writes its cache files) each time.
#   warm: relay's --cache-dir holds them from a previous run.
#   minidump-stackwalk keeps no cache between processes for local symbols: it parses the .sym
#   files every run, so its cold and warm runs are the same command (both are measured).
#   The files themselves are in the OS page cache in both cases (one warmup run first).
# - Every binary is timed from a fresh copy in a scratch dir (see below for why).
# - BASELINE_RELAY adds a third command to every hyperfine run (same dump and symbols, its own
#   cache dir, emptied alike for cold runs) and a before -> after table to the report.
# - Output: the human-readable report of each tool (discarded). The hyperfine JSON goes to
#   bench/minidump/out/; the Markdown table to out/report.md and into docs/benchmarks.md,
#   section "Minidumps" (only that section is replaced; set WRITE_DOCS=0 to skip).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
native=${FIXTURES_DIR:-$root/tests/fixtures}/native
runs=${1:-15}
out=$here/out
log() { printf '\n==> %s\n' "$*" >&2; }

MDSW_VERSION=0.27
MDSW_ROOT=$HOME/.cache/relay-ci/minidump-stackwalk
MDSW=$MDSW_ROOT/bin/minidump-stackwalk
if ! "$MDSW" --version 2>/dev/null | grep -q " $MDSW_VERSION\."; then
  log "cargo install minidump-stackwalk ^$MDSW_VERSION"
  tdir=$(mktemp -d)
  CARGO_TARGET_DIR=$tdir cargo install minidump-stackwalk --version "^$MDSW_VERSION" --locked \
    --root "$MDSW_ROOT"
  rm -rf "$tdir"
fi

if ! command -v hyperfine >/dev/null; then
  log "apt-get install hyperfine"
  SUDO=(); [[ "$(id -u)" == 0 ]] || SUDO=(sudo)
  "${SUDO[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends hyperfine
fi

export CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-$HOME/.cache/relay-bench-target}
log "cargo build --release -p relay-server (target: $CARGO_TARGET_DIR)"
cargo build --release --manifest-path "$root/Cargo.toml" -p relay-server
RELAY=$CARGO_TARGET_DIR/release/relay

# name  dump (relative to fixtures/native)  symbols (Breakpad tree)
cases=(
  "windows-x86   windows-x86/windows.dmp   windows-x86/symbols"
  "linux-x86_64  linux-x86_64/linux.dmp    linux-x86_64/symbols"
  "macos-x86_64  macos-x86_64/macos.dmp    macos-x86_64/symbols"
  "windows-xp    rust-minidump/test.dmp    rust-minidump/symbols"
)

rm -rf "$out"
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export RUST_LOG=error RELAY_LOG=error

# Every binary runs from a fresh copy in the scratch dir, so all start from the same kind of
# page cache. A binary just written by the linker starts measurably slower than a copy of it
# (here +40 page faults and +0.3-0.4 ms per `relay symbolicate` run: its cached pages map in
# smaller pieces), while minidump-stackwalk was installed by `cargo install`, a copy.
install -m 755 "$RELAY" "$scratch/relay"
install -m 755 "$MDSW" "$scratch/minidump-stackwalk"
RELAY=$scratch/relay
MDSW=$scratch/minidump-stackwalk
# BASELINE_RELAY: another relay binary (e.g. main's build) timed in the same hyperfine runs,
# with its own cache directory, for a before -> after table.
baseline=
if [[ -n "${BASELINE_RELAY:-}" ]]; then
  install -m 755 "$BASELINE_RELAY" "$scratch/relay-baseline"
  baseline=$scratch/relay-baseline
fi

for case in "${cases[@]}"; do
  read -r name dump symbols <<<"$case"
  dump=$native/$dump
  symbols=$native/$symbols
  cache=$scratch/$name-cache
  base_cache=$scratch/$name-baseline-cache
  relay_cmd="$RELAY symbolicate $dump --symbols $symbols --cache-dir $cache"
  mdsw_cmd="$MDSW --symbols-path $symbols $dump"
  commands=(-n relay "$relay_cmd" -n minidump-stackwalk "$mdsw_cmd")
  if [[ -n "$baseline" ]]; then
    base_cmd="$baseline symbolicate $dump --symbols $symbols --cache-dir $base_cache"
    commands+=(-n relay-baseline "$base_cmd")
  fi
  # Both must succeed and find the crashing function before being timed.
  "$RELAY" symbolicate "$dump" --symbols "$symbols" --crashed-only >"$out/$name.relay.txt"
  "$MDSW" --symbols-path "$symbols" "$dump" >"$out/$name.mdsw.txt" 2>/dev/null

  log "$name: cold"
  hyperfine -N --style basic --warmup 1 --runs "$runs" --prepare "rm -rf $cache $base_cache" \
    "${commands[@]}" --export-json "$out/$name.cold.json"
  log "$name: warm"
  rm -rf "$cache" "$base_cache"
  $relay_cmd >/dev/null
  [[ -z "$baseline" ]] || $base_cmd >/dev/null
  hyperfine -N --style basic --warmup 1 --runs "$runs" \
    "${commands[@]}" --export-json "$out/$name.warm.json"
done

python3 "$here/report.py" "$out" "$runs" "$root/docs/benchmarks.md" "${WRITE_DOCS:-1}" \
  "$("$MDSW" --version)" "bench/minidump/run.sh $*"
