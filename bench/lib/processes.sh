# Process helpers shared by the benchmark scripts (sourced, not run): ports, tansu, a relay
# with the benchmarks' one-project config, RSS sampling and /metrics reads. Every process
# started here is stopped on exit.
#
# The sourcing script sets: OUT (logs), TANSU (tansu binary), RELAY (relay binary),
# PROJECT_ID and PUBLIC_KEY (the config's one project); for run_oha also OHA (oha binary),
# CAPTURE (the SDK capture posted) and DURATION (seconds of load).

log() { printf '\n==> %s\n' "$*" >&2; }

# --- processes this script started (stopped by pid on exit) --------------------------------
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
stop_pid() { # pid: SIGTERM, then SIGKILL after 20 s
  local pid="$1" i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port, seconds
  local i
  for i in $(seq $(( $2 * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1 after $2 s" >&2; return 1
}
wait_http() { # url, seconds
  local i
  for i in $(seq $(( $2 * 10 ))); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" == 200 ]] && return 0
    sleep 0.1
  done
  echo "$1 did not answer 200 after $2 s" >&2; return 1
}

# --- tansu -------------------------------------------------------------------------------
TANSU_PORT=""
TANSU_PID=""
start_tansu() {
  TANSU_PORT="$(free_port)"
  RUST_LOG=warn "$TANSU" broker --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --storage-engine memory://tansu/ > "$OUT/tansu-$TANSU_PORT.log" 2>&1 &
  TANSU_PID=$!
  PIDS+=("$TANSU_PID")
  wait_port "$TANSU_PORT" 30
  local topic
  for topic in relay.events relay.attachments relay.outcomes relay.issues; do
    "$TANSU" topic create "$topic" --partitions 3 --broker "tcp://127.0.0.1:$TANSU_PORT" \
      >> "$OUT/tansu-$TANSU_PORT.log" 2>&1
  done
}
stop_tansu() { [[ -n "$TANSU_PID" ]] && stop_pid "$TANSU_PID"; TANSU_PID=""; }

# --- relay -------------------------------------------------------------------------------
RELAY_PORT=""
RELAY_PID=""
# start_relay DATA_DIR BROKERS [EXTRA_YAML]
# KAFKA_PRODUCER (optional): librdkafka overrides as YAML flow pairs, e.g. '"linger.ms": "50"'.
start_relay() {
  local data="$1" brokers="$2" extra="${3:-}"
  RELAY_PORT="$(free_port)"
  mkdir -p "$data"
  cat > "$data.yaml" <<YAML
listen: "127.0.0.1:$RELAY_PORT"
data_dir: "$data"
kafka:
  brokers: "$brokers"
  producer: {${KAFKA_PRODUCER:-}}
projects:
  - id: $PROJECT_ID
    keys: ["$PUBLIC_KEY"]
${PROJECT_YAML:-}
limits:
  per_ip_requests_per_second: 0
  max_concurrent_requests_per_ip: 0
$extra
YAML
  RELAY_LOG=warn "$RELAY" run --config "$data.yaml" > "$data.log" 2>&1 &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  wait_http "http://127.0.0.1:$RELAY_PORT/healthz/ready" 60
}
stop_relay() { [[ -n "$RELAY_PID" ]] && stop_pid "$RELAY_PID"; RELAY_PID=""; }

# start_edge DATA_DIR UPSTREAM_URL: a relay in forward mode (docs/edge.md), same project;
# EDGE_MAX_CONCURRENT (optional): upstream.max_concurrent (default 64, the relay's default).
EDGE_PORT=""
EDGE_PID=""
start_edge() {
  local data="$1" upstream="$2"
  EDGE_PORT="$(free_port)"
  mkdir -p "$data"
  cat > "$data.yaml" <<YAML
listen: "127.0.0.1:$EDGE_PORT"
data_dir: "$data"
upstream:
  url: "$upstream"
  max_concurrent: ${EDGE_MAX_CONCURRENT:-64}
projects:
  - id: $PROJECT_ID
    keys: ["$PUBLIC_KEY"]
limits:
  per_ip_requests_per_second: 0
  max_concurrent_requests_per_ip: 0
YAML
  RELAY_LOG=warn "$RELAY" run --config "$data.yaml" > "$data.log" 2>&1 &
  EDGE_PID=$!
  PIDS+=("$EDGE_PID")
  wait_http "http://127.0.0.1:$EDGE_PORT/healthz/ready" 60
}
stop_edge() { [[ -n "$EDGE_PID" ]] && stop_pid "$EDGE_PID"; EDGE_PID=""; }

# sample_rss PID FILE: VmRSS in kB once a second until the process exits or the sampler is
# stopped; the sampler's pid is in SAMPLER_PID.
SAMPLER_PID=""
sample_rss() {
  ( while [[ -r "/proc/$1/status" ]]; do
      awk -v t="$(date +%s.%N)" '/^VmRSS/{print t, $2}' "/proc/$1/status" 2>/dev/null || true
      sleep 1
    done ) > "$2" &
  SAMPLER_PID=$!
  PIDS+=("$SAMPLER_PID")
}
stop_sampler() { [[ -n "$SAMPLER_PID" ]] && { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; }; SAMPLER_PID=""; }

# --- load ------------------------------------------------------------------------------
oha_headers() { # the capture's headers as oha -H arguments (minus Host and Content-Length)
  python3 - "$CAPTURE/headers.json" <<'PY'
import json, sys
for k, v in json.load(open(sys.argv[1]))["headers"]:
    if k.lower() not in ("host", "content-length"):
        print(f"{k}: {v}")
PY
}

# run_oha URL OUTFILE [extra oha args...]
run_oha() {
  local url="$1" out="$2"; shift 2
  local args=() line
  while IFS= read -r line; do args+=(-H "$line"); done < <(oha_headers)
  "$OHA" --no-tui --output-format json -z "${DURATION}s" -c 64 -m POST -D "$CAPTURE/body.bin" \
    "${args[@]}" "$@" "$url" > "$out"
}

# cpu_of STAT_FILE: user + system CPU seconds of a process or thread (/proc/PID/stat or
# /proc/PID/task/TID/stat; clock ticks of 1/100 s)
cpu_of() { awk '{print ($14 + $15) / 100}' "$1"; }

# metric NAME_WITH_LABELS: the relay's /metrics value (0 when absent)
metric() {
  curl -s "http://127.0.0.1:$RELAY_PORT/metrics" | awk -v m="$1" '$1==m {print $2; f=1} END{if(!f) print 0}'
}
DELIVERED='relay_kafka_messages_total{result="delivered",topic="relay.events"}'
