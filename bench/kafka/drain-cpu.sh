#!/usr/bin/env bash
# CPU per drained event: how much CPU a relay binary spends publishing a pre-filled spool.
#
#   bench/kafka/drain-cpu.sh RELAY_BIN [ENTRIES] [EXTRA_YAML]
#
# Posts ENTRIES (default 40,000) copies of the python/0002_event capture, each with its own
# event id, to a relay whose Kafka is unreachable (the spool keeps them; cached per ENTRIES in
# $DRAIN_DIR), then starts tansu (in memory) and a fresh `RELAY_BIN run` on a copy of that
# spool, waits until every event is delivered, and prints the drain rate (from the relay's
# readiness to the last delivery report), the relay's CPU time (user + system from
# /proc/PID/stat, start-up included), its busiest threads' and the broker's CPU time, and its
# spool retries. Run two binaries back to back (or
# alternately, several times) to compare builds; EXTRA_YAML is appended to the config (e.g.
# "pipeline:\n  max_in_flight: 1024"). KAFKA_PRODUCER adds librdkafka settings (e.g.
# '"linger.ms": "50"', standing in for a distant broker). PERF=1 records a perf profile of the
# drain.
#
# Needs the tools of bench/run.sh (it builds them): tansu and loadgen. Process helpers:
# bench/lib/processes.sh, shared with bench/run.sh. Loads only 127.0.0.1.
set -euo pipefail

RELAY=${1:?usage: bench/kafka/drain-cpu.sh RELAY_BIN [ENTRIES] [EXTRA_YAML]}
N=${2:-40000}
EXTRA=$(printf '%b' "${3:-}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TANSU=${TANSU_BIN:-$HOME/.cache/relay-ci/tansu/bin/tansu}
LOADGEN=${BENCH_TARGET:-$HOME/.cache/relay-bench-target}/release/loadgen
CAPTURE=${FIXTURES:-$root/tests/fixtures/sdk}/python/0002_event
PROJECT_ID=42
PUBLIC_KEY=abc123def456abc123def456abc123de
D=${DRAIN_DIR:-/tmp/relay-drain}
OUT=$D
mkdir -p "$D"
# shellcheck source=bench/lib/processes.sh
source "$root/bench/lib/processes.sh"

if [[ ! -d "$D/template-$N" ]]; then
  start_relay "$D/template-$N" "127.0.0.1:$(free_port)" "$EXTRA" # Kafka unreachable
  "$LOADGEN" --url "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" \
    --body "$CAPTURE/body.bin" --headers "$CAPTURE/headers.json" --unique-ids \
    --connections 32 --count "$N" --json-out "$D/prefill.json" > /dev/null
  stop_relay
fi

start_tansu
rm -rf "$D/run"; cp -a "$D/template-$N" "$D/run"
start_relay "$D/run" "127.0.0.1:$TANSU_PORT" "$EXTRA"
relay=$RELAY_PID
start=$(date +%s.%N)
if [[ -n "${PERF:-}" ]]; then
  perf record -F 1999 -g --call-graph dwarf,16384 -p "$relay" -o "$D/perf.data" > /dev/null 2>&1 &
  perf_pid=$!
fi
until [[ "$(metric "$DELIVERED" | cut -d. -f1)" -ge "$N" ]] 2>/dev/null; do
  sleep 0.05
done
end=$(date +%s.%N)
[[ -n "${PERF:-}" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
cpu=$(cpu_of "/proc/$relay/stat")
# Where the CPU went: the broker, and the relay's busiest threads (a saturated pipeline thread
# shows here as one thread near the drain's duration).
echo "tansu CPU $(cpu_of "/proc/$TANSU_PID/stat") s; relay threads (CPU s):" \
  $(for t in /proc/"$relay"/task/*; do echo "$(cat "$t/comm")=$(cpu_of "$t/stat")"; done |
    sort -t= -k2 -g -r | head -4)
retries=$(metric relay_spool_retries_total | cut -d. -f1)
python3 - "$N" "$start" "$end" "$cpu" "${retries:-0}" <<'PY'
import sys
n, start, end, cpu, retries = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
span = end - start
print(f"drained {n} in {span:.2f} s = {n / span:,.0f} events/s; relay CPU {cpu:.2f} s "
      f"= {cpu / n * 1e6:.0f} µs per event (includes start-up); spool retries {retries}")
PY
