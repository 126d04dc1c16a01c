#!/usr/bin/env bash
# CPU per drained event: how much CPU a relay binary spends publishing a pre-filled spool.
#
#   bench/kafka/drain-cpu.sh RELAY_BIN [ENTRIES] [EXTRA_YAML]
#
# Posts ENTRIES (default 40,000) copies of the python/0002_event capture, each with its own
# event id, to a relay whose Kafka is unreachable (the spool keeps them; cached per ENTRIES in
# $DRAIN_DIR), then starts tansu (in memory) and a fresh `RELAY_BIN run` on a copy of that
# spool, waits until every event is delivered, and prints the drain rate, the relay's CPU time
# (user + system, /proc/PID/stat) and its spool retries. Run two binaries back to back (or
# alternately, several times) to compare builds; EXTRA_YAML is appended to the config (e.g.
# "pipeline:\n  max_in_flight: 1024"). PERF=1 records a perf profile of the drain.
#
# Needs the tools of bench/run.sh (it builds them): tansu and loadgen. Loads only 127.0.0.1.
set -euo pipefail

RELAY=${1:?usage: bench/kafka/drain-cpu.sh RELAY_BIN [ENTRIES] [EXTRA_YAML]}
N=${2:-40000}
EXTRA=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TANSU=${TANSU_BIN:-$HOME/.cache/relay-ci/tansu/bin/tansu}
LOADGEN=${BENCH_TARGET:-$HOME/.cache/relay-bench-target}/release/loadgen
CAPTURE=${FIXTURES:-$root/../shared/fixtures/sdk}/python/0002_event
D=${DRAIN_DIR:-/tmp/relay-drain}
mkdir -p "$D"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  local i
  for i in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}
config() { # DATA_DIR LISTEN_PORT BROKER_PORT
  cat > "$1.yaml" <<YAML
listen: "127.0.0.1:$2"
data_dir: "$1"
kafka:
  brokers: "127.0.0.1:$3"
projects:
  - id: 42
    keys: ["abc123def456abc123def456abc123de"]
limits:
  per_ip_requests_per_second: 0
$(printf '%b' "$EXTRA")
YAML
}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

if [[ ! -d "$D/template-$N" ]]; then
  port=$(free_port)
  config "$D/template-$N" "$port" "$(free_port)" # nothing listens there: Kafka is unreachable
  RELAY_LOG=warn "$RELAY" run --config "$D/template-$N.yaml" > "$D/template.log" 2>&1 &
  relay=$!; PIDS+=("$relay")
  wait_port "$port"
  "$LOADGEN" --url "http://127.0.0.1:$port/api/42/envelope/" --body "$CAPTURE/body.bin" \
    --headers "$CAPTURE/headers.json" --unique-ids --connections 32 --count "$N" \
    --json-out "$D/prefill.json" > /dev/null
  kill "$relay"; wait "$relay" || true
fi

broker_port=$(free_port)
RUST_LOG=warn "$TANSU" broker --listener-url "tcp://127.0.0.1:$broker_port" \
  --advertised-listener-url "tcp://127.0.0.1:$broker_port" --storage-engine memory://tansu/ \
  > "$D/tansu.log" 2>&1 &
tansu=$!; PIDS+=("$tansu")
wait_port "$broker_port"
for topic in relay.events relay.attachments relay.outcomes relay.issues; do
  "$TANSU" topic create "$topic" --partitions 3 --broker "tcp://127.0.0.1:$broker_port" > /dev/null 2>&1
done
rm -rf "$D/run"; cp -a "$D/template-$N" "$D/run"
port=$(free_port)
config "$D/run" "$port" "$broker_port"
RELAY_LOG=warn "$RELAY" run --config "$D/run.yaml" > "$D/run.log" 2>&1 &
relay=$!; PIDS+=("$relay")
wait_port "$port"
start=$(date +%s.%N)
if [[ -n "${PERF:-}" ]]; then
  perf record -F 1999 -g --call-graph dwarf,16384 -p "$relay" -o "$D/perf.data" > /dev/null 2>&1 &
  perf_pid=$!
fi
delivered='relay_kafka_messages_total{result="delivered",topic="relay.events"}'
until [[ "$(curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$delivered" '$1==m {print int($2)}')" -ge "$N" ]] 2>/dev/null; do
  sleep 0.05
done
end=$(date +%s.%N)
[[ -n "${PERF:-}" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$relay/stat")
retries=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1=="relay_spool_retries_total" {print int($2)}')
python3 - "$N" "$start" "$end" "$cpu" "${retries:-0}" <<'PY'
import sys
n, start, end, cpu, retries = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
span = end - start
print(f"drained {n} in {span:.2f} s = {n / span:,.0f} events/s; relay CPU {cpu:.2f} s "
      f"= {cpu / n * 1e6:.0f} µs per event (includes start-up); spool retries {retries}")
PY
