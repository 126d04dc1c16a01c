#!/usr/bin/env bash
# Benchmarks of issue 8, items 1, 2, 5 and 6: one entry point that installs its baselines,
# runs each comparison in one go and writes its section of docs/benchmarks.md.
#
#   bench/run.sh [intake|kafka|overload|edge|micro|all]     (default: all)
#
# intake    relay (intake -> spool -> Kafka on tansu) vs an actix-web handler that reads and
#           drops the same request (bench/intake/noop-server), under oha; the same relay with
#           its project's quota counted in Redis (redis-server, a quota never reached, so every
#           request is checked in Redis), alternated with the relay without quotas; then the
#           relay at half its measured max rate for p99; relay RSS from /proc during full load.
# kafka     relay publish rate (draining a pre-filled spool) vs a bare confluent-kafka producer
#           sending the same messages with the same settings: delivery reports/s of each (the
#           relay's from its /metrics), and every message checked on the consumer side; then
#           the publish stage alone (relay-server/benches/kafka_publish.rs: the KafkaProducer
#           actor vs a bare rdkafka producer in one process, same messages and settings).
# overload  10x the sustainable rate for 60 s (bench/overload/loadgen, a fresh event id per
#           request): RSS every second, 429/503 with Retry-After, every 200'd id found in Kafka.
# edge      the forward path (issue 20): a core relay draining a pre-filled spool into Kafka,
#           alternated with an edge relay (upstream: a fresh core) forwarding the same number
#           of pre-spooled envelopes to the core, which publishes them; both timed by the
#           core's delivery reports (bench/kafka/watch_delivered.py).
# micro     criterion: envelope parsing (relay-core/benches/envelope.rs), bounded decoding and
#           normalization (relay-processing/benches/processing.rs), minidump symbolication and
#           source map building and lookups (relay-processing/benches/symbolication.rs).
#
# Environment: BENCH_DURATION (s per load point, default 15), BENCH_REPS (default 3),
# OVERLOAD_SECS (default 60), BENCH_OUT (results dir), FIXTURES (default tests/fixtures/sdk),
# BENCH_TARGET (cargo target dir of the release builds, default ~/.cache/relay-bench-target),
# RELAY_BIN (another relay binary to measure, e.g. a copy of an experimental build),
# BENCH_DOC (the markdown file to update, default docs/benchmarks.md; point it elsewhere for
# experiments).
# Never run in CI; nothing here is a test. Loads only 127.0.0.1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"
MODE="${1:-all}"
case "$MODE" in intake|kafka|overload|edge|micro|all) ;; *)
  echo "usage: bench/run.sh [intake|kafka|overload|edge|micro|all]" >&2; exit 2 ;;
esac

BENCH_TARGET="${BENCH_TARGET:-$HOME/.cache/relay-bench-target}"
CI_CACHE="$HOME/.cache/relay-ci"
TANSU_VERSION=0.6.0
OHA_VERSION=1.16.0
TANSU="${TANSU_BIN:-$CI_CACHE/tansu/bin/tansu}"
OHA="$CI_CACHE/oha/bin/oha"
VENV="$CI_CACHE/venv"
PY="$VENV/bin/python"
FIXTURES="${FIXTURES:-$REPO/tests/fixtures/sdk}"
CAPTURE="$FIXTURES/python/0002_event"
DURATION="${BENCH_DURATION:-15}"
REPS="${BENCH_REPS:-3}"
OVERLOAD_SECS="${OVERLOAD_SECS:-60}"
OUT="${BENCH_OUT:-$HOME/.cache/relay-bench/results/$(date +%Y%m%dT%H%M%S)-$MODE}"
PROJECT_ID=42
PUBLIC_KEY=abc123def456abc123def456abc123de
RELAY="${RELAY_BIN:-$BENCH_TARGET/release/relay}"
NOOP="$BENCH_TARGET/release/noop-server"
LOADGEN="$BENCH_TARGET/release/loadgen"
export CARGO_TERM_COLOR=never

mkdir -p "$OUT"
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh

# --- baselines and builds (idempotent) ------------------------------------------------------
setup() {
  log "setup: release builds in $BENCH_TARGET, baselines"
  if ! { [[ -x "$TANSU" ]] && "$TANSU" --version 2>/dev/null | grep -qF " $TANSU_VERSION"; }; then
    log "cargo install tansu $TANSU_VERSION"
    cargo install tansu --version "$TANSU_VERSION" --locked --root "$CI_CACHE/tansu"
  fi
  if ! { [[ -x "$PY" ]] && "$PY" -c 'import confluent_kafka' 2>/dev/null; }; then
    log "python venv with tests/requirements.txt (confluent-kafka)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/requirements.txt
  fi
  if [[ "$MODE" == intake || "$MODE" == all ]] && \
     ! { [[ -x "$OHA" ]] && "$OHA" --version 2>/dev/null | grep -qF "$OHA_VERSION"; }; then
    log "cargo install oha $OHA_VERSION"
    cargo install oha --version "$OHA_VERSION" --locked --root "$CI_CACHE/oha"
  fi
  if [[ "$MODE" != micro ]]; then
    # A relay given in RELAY_BIN is measured as it is: nothing to build for it.
    [[ -n "${RELAY_BIN:-}" ]] || CARGO_TARGET_DIR="$BENCH_TARGET" cargo build --release -p relay-server
    if [[ "$MODE" == intake || "$MODE" == all ]]; then
      CARGO_TARGET_DIR="$BENCH_TARGET" cargo build --release \
        --manifest-path bench/intake/noop-server/Cargo.toml
    fi
    CARGO_TARGET_DIR="$BENCH_TARGET" cargo build --release \
      --manifest-path bench/overload/loadgen/Cargo.toml
  fi
  [[ -f "$CAPTURE/body.bin" ]] || { echo "fixture missing: $CAPTURE" >&2; exit 1; }
  # What the machine was doing when the run started (other engineers compile here).
  {
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"nproc\": $(nproc),"
    echo "  \"cpu\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\","
    echo "  \"mem\": \"$(free -h | awk '/^Mem:/{print $2}')\","
    echo "  \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)\","
    echo "  \"duration_s\": $DURATION,"
    echo "  \"reps\": $REPS"
    echo "}"
  } > "$OUT/env.json"
}

# ==========================================================================================
bench_intake() {
  local dir="$OUT/intake"; mkdir -p "$dir"
  log "intake: noop ceiling vs relay vs relay with Redis quotas, $REPS x ${DURATION}s each, 64 connections (oha)"
  start_tansu
  # Debian's redis-server, no persistence: the quota counters of the Redis case.
  local redis_port; redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    > "$dir/redis.log" 2>&1 &
  local redis_pid=$!; PIDS+=("$redis_pid")
  wait_port "$redis_port" 30
  local noop_port; noop_port="$(free_port)"
  "$NOOP" "127.0.0.1:$noop_port" > "$dir/noop.log" 2>&1 &
  local noop_pid=$!; PIDS+=("$noop_pid")
  wait_port "$noop_port" 30
  local r
  for r in $(seq "$REPS"); do
    # Interleaved so that load from other work on the machine hits both alike.
    log "intake rep $r: noop"
    run_oha "http://127.0.0.1:$noop_port/api/$PROJECT_ID/envelope/" "$dir/noop-$r.json"
    log "intake rep $r: relay (full load)"
    rm -rf "$dir/relay-$r"
    start_relay "$dir/relay-$r" "127.0.0.1:$TANSU_PORT"
    sample_rss "$RELAY_PID" "$dir/relay-$r.rss"
    local before after
    before="$(metric "$DELIVERED")"
    run_oha "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" "$dir/relay-$r.json"
    after="$(metric "$DELIVERED")"
    stop_sampler
    echo "{\"delivered_during\": $(( ${after%.*} - ${before%.*} )), \"duration_s\": $DURATION, \"spool_bytes_after\": $(metric relay_spool_bytes)}" \
      > "$dir/relay-$r.kafka.json"
    stop_relay
    log "intake rep $r: relay with its quota counted in Redis (full load)"
    rm -rf "$dir/redis-$r"
    # A quota no run reaches: every request takes the Redis round trip (the dearest path;
    # refusals are answered from the relay's cache of limits, without Redis).
    PROJECT_YAML="    quotas: [{ id: errors, categories: [error], scope: project, limit: 1000000000, window: 3600 }]" \
      start_relay "$dir/redis-$r" "127.0.0.1:$TANSU_PORT" "redis: { url: \"redis://127.0.0.1:$redis_port\" }"
    run_oha "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" "$dir/redis-$r.json"
    curl -s "http://127.0.0.1:$RELAY_PORT/metrics" > "$dir/redis-$r.metrics.txt"
    stop_relay
  done
  stop_pid "$noop_pid"
  stop_pid "$redis_pid"
  local half
  half="$("$PY" bench/lib/report.py half-rate "$dir")"
  for r in $(seq "$REPS"); do
    log "intake rep $r: relay at half its max rate ($half req/s)"
    rm -rf "$dir/half-$r"
    start_relay "$dir/half-$r" "127.0.0.1:$TANSU_PORT"
    sample_rss "$RELAY_PID" "$dir/half-$r.rss"
    run_oha "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" "$dir/half-$r.json" -q "$half"
    stop_sampler
    stop_relay
  done
  stop_tansu
  "$PY" bench/lib/report.py intake "$OUT" "bench/run.sh $MODE"
}

# ==========================================================================================
KAFKA_MESSAGES="${KAFKA_MESSAGES:-100000}"
bench_kafka() {
  local dir="$OUT/kafka"; mkdir -p "$dir"
  log "kafka: pre-filling a spool with $KAFKA_MESSAGES envelopes (Kafka unreachable)"
  # Nothing listens on a fresh free port: the relay spools and cannot deliver.
  rm -rf "$dir/template"
  start_relay "$dir/template" "127.0.0.1:$(free_port)"
  "$LOADGEN" --url "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" \
    --body "$CAPTURE/body.bin" --headers "$CAPTURE/headers.json" --unique-ids \
    --connections 32 --count "$KAFKA_MESSAGES" --json-out "$dir/prefill.json" > /dev/null
  stop_relay
  local r
  for r in $(seq "$REPS"); do
    log "kafka rep $r: relay draining its spool"
    start_tansu
    rm -rf "$dir/relay-$r" "$dir/ready"
    cp -a "$dir/template" "$dir/relay-$r"
    local dump=()
    [[ "$r" == 1 ]] && dump=(--dump "$dir/messages.jsonl")
    "$PY" bench/kafka/consume.py --broker "127.0.0.1:$TANSU_PORT" --topic relay.events \
      --expect "$KAFKA_MESSAGES" --idle 20 --ready "$dir/ready" "${dump[@]}" \
      --json-out "$dir/relay-$r.json" > /dev/null &
    local consumer=$!; PIDS+=("$consumer")
    while [[ ! -e "$dir/ready" ]]; do sleep 0.1; done
    start_relay "$dir/relay-$r" "127.0.0.1:$TANSU_PORT"
    sample_rss "$RELAY_PID" "$dir/relay-$r.rss"
    "$PY" bench/kafka/watch_delivered.py --url "http://127.0.0.1:$RELAY_PORT/metrics" \
      --target "$KAFKA_MESSAGES" --json-out "$dir/relay-$r.delivered.json" > /dev/null
    wait "$consumer" || true
    stop_sampler
    stop_relay
    stop_tansu
    log "kafka rep $r: bare producer, same messages and settings"
    start_tansu
    rm -f "$dir/ready"
    "$PY" bench/kafka/consume.py --broker "127.0.0.1:$TANSU_PORT" --topic relay.events \
      --expect "$(( KAFKA_MESSAGES + 1 ))" --idle 20 --ready "$dir/ready" \
      --json-out "$dir/bare-$r.json" > /dev/null &
    consumer=$!; PIDS+=("$consumer")
    while [[ ! -e "$dir/ready" ]]; do sleep 0.1; done
    "$PY" bench/kafka/bare_producer.py --broker "127.0.0.1:$TANSU_PORT" --topic relay.events \
      --messages "$dir/messages.jsonl" --json-out "$dir/bare-$r.producer.json" > /dev/null
    wait "$consumer" || true
    stop_tansu
  done
  log "kafka: publish stage (relay-server/benches/kafka_publish.rs), $REPS reps"
  start_tansu
  FIXTURES="$FIXTURES" CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench -p relay-server \
    --bench kafka_publish -- --brokers "127.0.0.1:$TANSU_PORT" --capture "$CAPTURE" \
    --count "${KAFKA_STAGE_MESSAGES:-50000}" --reps "$REPS" --json-out "$dir/stage.json" \
    > "$dir/stage.log" 2>&1
  stop_tansu
  "$PY" bench/lib/report.py kafka "$OUT" "bench/run.sh $MODE"
}

# ==========================================================================================
bench_overload() {
  local dir="$OUT/overload"; mkdir -p "$dir"
  start_tansu
  rm -rf "$dir/relay"
  start_relay "$dir/relay" "127.0.0.1:$TANSU_PORT"
  local url="http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/"
  local gen=(--body "$CAPTURE/body.bin" --headers "$CAPTURE/headers.json" --unique-ids)
  log "overload: sustainable rate (closed loop, 64 connections, ${DURATION}s)"
  local before after
  before="$(metric "$DELIVERED")"
  "$LOADGEN" --url "$url" "${gen[@]}" --connections 64 --duration "$DURATION" \
    --ids-out "$dir/sustain.ids" --json-out "$dir/sustain.json" > /dev/null
  after="$(metric "$DELIVERED")"
  echo "{\"delivered_during\": $(( ${after%.*} - ${before%.*} )), \"duration_s\": $DURATION}" > "$dir/sustain.kafka.json"
  local rate
  rate="$("$PY" bench/lib/report.py overload-rate "$dir")"
  log "overload: $rate req/s (10x sustainable) for ${OVERLOAD_SECS}s, 2048 connections"
  sample_rss "$RELAY_PID" "$dir/relay.rss"
  "$LOADGEN" --url "$url" "${gen[@]}" --rate "$rate" --connections 2048 \
    --duration "$OVERLOAD_SECS" --timeout 60 \
    --ids-out "$dir/overload.ids" --json-out "$dir/overload.json" > /dev/null
  curl -s "http://127.0.0.1:$RELAY_PORT/metrics" > "$dir/metrics-after-load.txt"
  log "overload: waiting for every 200'd event in Kafka"
  cat "$dir/sustain.ids" "$dir/overload.ids" > "$dir/all.ids"
  "$PY" bench/kafka/consume.py --broker "127.0.0.1:$TANSU_PORT" --topic relay.events \
    --idle 60 --timeout 900 --ids "$dir/all.ids" --json-out "$dir/kafka.json" > /dev/null
  stop_sampler
  curl -s "http://127.0.0.1:$RELAY_PORT/metrics" > "$dir/metrics-end.txt"
  stop_relay
  stop_tansu
  "$PY" bench/lib/report.py overload "$OUT" "bench/run.sh $MODE"
}

# ==========================================================================================
EDGE_MESSAGES="${EDGE_MESSAGES:-20000}"
# prefill PORT JSON_OUT: EDGE_MESSAGES envelopes (unique event ids) into the relay on PORT.
prefill() {
  "$LOADGEN" --url "http://127.0.0.1:$1/api/$PROJECT_ID/envelope/" \
    --body "$CAPTURE/body.bin" --headers "$CAPTURE/headers.json" --unique-ids \
    --connections 32 --count "$EDGE_MESSAGES" --json-out "$2" > /dev/null
}
bench_edge() {
  local dir="$OUT/edge"; mkdir -p "$dir"
  log "edge: pre-filling a core's and an edge's spool with $EDGE_MESSAGES envelopes each"
  rm -rf "$dir/core-template" "$dir/edge-template"
  # Nothing listens on a fresh free port: the core cannot publish, the edge cannot forward.
  start_relay "$dir/core-template" "127.0.0.1:$(free_port)"
  prefill "$RELAY_PORT" "$dir/core-prefill.json"
  stop_relay
  start_edge "$dir/edge-template" "http://127.0.0.1:$(free_port)"
  prefill "$EDGE_PORT" "$dir/edge-prefill.json"
  stop_edge
  local r
  for r in $(seq "$REPS"); do
    # Interleaved so that load from other work on the machine hits both alike.
    log "edge rep $r: the core alone drains its spool into Kafka"
    start_tansu
    rm -rf "$dir/core-$r"
    cp -a "$dir/core-template" "$dir/core-$r"
    start_relay "$dir/core-$r" "127.0.0.1:$TANSU_PORT"
    "$PY" bench/kafka/watch_delivered.py --url "http://127.0.0.1:$RELAY_PORT/metrics" \
      --target "$EDGE_MESSAGES" --json-out "$dir/core-$r.json" > /dev/null
    stop_relay
    stop_tansu
    log "edge rep $r: an edge forwards its spool to a fresh core, which publishes"
    start_tansu
    rm -rf "$dir/upstream-$r" "$dir/edge-$r"
    start_relay "$dir/upstream-$r" "127.0.0.1:$TANSU_PORT"
    cp -a "$dir/edge-template" "$dir/edge-$r"
    start_edge "$dir/edge-$r" "http://127.0.0.1:$RELAY_PORT"
    sample_rss "$EDGE_PID" "$dir/edge-$r.rss"
    "$PY" bench/kafka/watch_delivered.py --url "http://127.0.0.1:$RELAY_PORT/metrics" \
      --target "$EDGE_MESSAGES" --json-out "$dir/edge-$r.json" > /dev/null
    stop_sampler
    curl -s "http://127.0.0.1:$EDGE_PORT/metrics" > "$dir/edge-$r.metrics.txt"
    stop_edge
    stop_relay
    stop_tansu
  done
  "$PY" bench/lib/report.py edge "$OUT" "bench/run.sh $MODE"
}

# ==========================================================================================
bench_micro() {
  local dir="$OUT/micro"; mkdir -p "$dir"
  log "micro: criterion, $REPS runs (release profile, $BENCH_TARGET)"
  local r
  for r in $(seq "$REPS"); do
    rm -rf "$BENCH_TARGET/criterion"
    FIXTURES="$FIXTURES" CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench -p relay-core \
      --bench envelope -- --noplot --warm-up-time 1 --measurement-time 3 > "$dir/core-$r.txt" 2>&1
    FIXTURES="$FIXTURES" CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench -p relay-processing \
      --bench processing -- --noplot --warm-up-time 1 --measurement-time 3 \
      > "$dir/processing-$r.txt" 2>&1
    FIXTURES_DIR="$FIXTURES/.." CARGO_TARGET_DIR="$BENCH_TARGET" cargo bench -p relay-processing \
      --bench symbolication -- --noplot --warm-up-time 1 --measurement-time 3 \
      > "$dir/symbolication-$r.txt" 2>&1
    cp -r "$BENCH_TARGET/criterion" "$dir/criterion-$r"
  done
  "$PY" bench/lib/report.py micro "$OUT" "bench/run.sh $MODE"
}

setup
case "$MODE" in
  intake) bench_intake ;;
  kafka) bench_kafka ;;
  overload) bench_overload ;;
  edge) bench_edge ;;
  micro) bench_micro ;;
  all) bench_intake; bench_kafka; bench_overload; bench_edge; bench_micro ;;
esac
log "results in $OUT; ${BENCH_DOC:-docs/benchmarks.md} updated"
