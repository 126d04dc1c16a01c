#!/usr/bin/env bash
# Full intake load against several relay builds or configurations, alternating, to compare
# them in one run (bench/run.sh intake measures one build against the noop ceiling).
#
#   bench/intake/compare.sh SPEC [SPEC ...]      SPEC = RELAY_BIN[::EXTRA_YAML]
#
# e.g. bench/intake/compare.sh /tmp/relay-old /tmp/relay-new '/tmp/relay-new::pipeline: {lanes: 1}'
#
# Each round runs every SPEC once: a fresh tansu (in memory), a fresh relay (its config plus
# EXTRA_YAML), then oha posting the python/0002_event capture over 64 connections for SECS
# (default 10) seconds. Prints per run: requests/s answered 200, p99, events delivered to
# Kafka during the load, and the relay's CPU seconds during it. ROUNDS (default 2) rounds.
#
# Needs the tools of bench/run.sh (run it once): tansu and oha under ~/.cache/relay-ci.
# Loads only 127.0.0.1.
set -euo pipefail

[[ $# -ge 1 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${SECS:-10}
ROUNDS=${ROUNDS:-2}
TANSU=${TANSU_BIN:-$HOME/.cache/relay-ci/tansu/bin/tansu}
OHA=$HOME/.cache/relay-ci/oha/bin/oha
CAPTURE=${FIXTURES:-$root/tests/fixtures/sdk}/python/0002_event
PROJECT_ID=42
PUBLIC_KEY=abc123def456abc123def456abc123de
OUT=$(mktemp -d /tmp/relay-intake-compare.XXXXXX)
# shellcheck source=bench/lib/processes.sh
source "$root/bench/lib/processes.sh"

for round in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    RELAY=${spec%%::*}
    extra=""
    [[ "$spec" == *::* ]] && extra=${spec#*::}
    start_tansu
    start_relay "$OUT/run" "127.0.0.1:$TANSU_PORT" "$extra"
    before=$(metric "$DELIVERED")
    cpu_before=$(cpu_of "/proc/$RELAY_PID/stat")
    run_oha "http://127.0.0.1:$RELAY_PORT/api/$PROJECT_ID/envelope/" "$OUT/oha.json"
    delivered=$(( $(metric "$DELIVERED" | cut -d. -f1) - ${before%.*} ))
    cpu=$(python3 -c "print(f'{$(cpu_of "/proc/$RELAY_PID/stat") - $cpu_before:.1f}')")
    stop_relay
    stop_tansu
    rm -rf "$OUT/run"
    python3 - "$OUT/oha.json" "$DURATION" "$delivered" "$cpu" "$round" "$spec" <<'PY'
import json, sys
report, secs, delivered, cpu, rnd, spec = sys.argv[1:]
d = json.load(open(report))
ok = d.get("statusCodeDistribution", {}).get("200", 0)
p99 = d["latencyPercentiles"]["p99"] * 1000
print(f"round {rnd} | {spec} | {ok / float(secs):,.0f} req/s answered 200 | p99 {p99:.1f} ms | "
      f"delivered {int(delivered) / float(secs):,.0f}/s ({int(delivered) / max(ok, 1):.0%}) | "
      f"relay CPU {cpu} s")
PY
  done
done
rm -rf "$OUT"
