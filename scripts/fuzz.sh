#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for SECONDS each; exits non-zero on any finding.
#
#   scripts/fuzz.sh SECONDS [TARGET ...]     all targets when none is named
#
# Per input: 1 s timeout, 2 GiB RSS limit (a slower or larger input is a finding). Targets run
# FUZZ_JOBS at a time (default: one per core). Needs the nightly toolchain; installs cargo-fuzz
# when it is missing.
#
#   corpus     ~/.cache/relay-fuzz/corpus/<target>   grows across runs; seeded from fuzz/seeds/<target>
#   findings   fuzz/artifacts/<target>/              crash-*, timeout-*, oom-*, leak-*
#   logs       ~/.cache/relay-fuzz/logs/<target>.log
#   build      $FUZZ_TARGET_DIR (default ~/.cache/relay-fuzz-target)
#
# A finding is fixed by fixing the code and copying the (minimized: `cargo +nightly fuzz tmin`)
# input to fuzz/regressions/<target>/, which `cargo test` replays (docs/security.md).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET ...]" >&2
  exit 2
fi
SECONDS_PER_TARGET="$1"
shift

CACHE="$HOME/.cache/relay-fuzz"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/relay-fuzz-target}"
mkdir -p "$CACHE/corpus" "$CACHE/logs"
JOBS="${FUZZ_JOBS:-$(nproc)}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> cargo install cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

cd fuzz
if [[ $# -gt 0 ]]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

echo "==> cargo fuzz build" >&2
cargo +nightly fuzz build >/dev/null 2>"$CACHE/logs/build.log" || {
  tail -n 40 "$CACHE/logs/build.log" >&2
  exit 1
}

run_target() {
  local target="$1" corpus="$CACHE/corpus/$1" artifacts="$REPO_ROOT/fuzz/artifacts/$1"
  mkdir -p "$corpus" "$artifacts"
  local rc=0
  cargo +nightly fuzz run "$target" "$corpus" "$REPO_ROOT/fuzz/seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=1 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >"$CACHE/logs/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$CACHE/logs/$target.rc"
}

echo "==> fuzzing ${TARGETS[*]} for ${SECONDS_PER_TARGET} s each, $JOBS at a time" >&2
running=0
for target in "${TARGETS[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if ((running >= JOBS)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

stat() { grep -m1 "^stat::$1:" "$CACHE/logs/$2.log" | awk '{print $2}' || true; }

failed=0
printf '\n| target | seconds | executions | corpus files | findings |\n|---|---:|---:|---:|---:|\n'
for target in "${TARGETS[@]}"; do
  rc="$(cat "$CACHE/logs/$target.rc")"
  execs="$(stat number_of_executed_units "$target")"
  corpus="$(find "$CACHE/corpus/$target" -type f | wc -l)"
  findings="$(find "$REPO_ROOT/fuzz/artifacts/$target" -type f | wc -l)"
  printf '| %s | %s | %s | %s | %s |\n' "$target" "$SECONDS_PER_TARGET" "${execs:-?}" "$corpus" "$findings"
  if [[ "$rc" != 0 || "$findings" != 0 ]]; then
    failed=1
    echo "FINDING in $target (exit $rc): log $CACHE/logs/$target.log, inputs in fuzz/artifacts/$target/" >&2
    grep -m3 -E "ERROR: libFuzzer|==ERROR|panicked at|SUMMARY" "$CACHE/logs/$target.log" >&2 || true
  fi
done
exit "$failed"
