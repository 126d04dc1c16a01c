"""Producer-side timing of the relay: polls its /metrics for delivered messages.

    watch_delivered.py --url http://127.0.0.1:PORT/metrics --target N [--json-out FILE]

Polls `relay_kafka_messages_total{result="delivered",topic="relay.events"}` every 20 ms until
it reaches N (or 600 s pass) and reports the delivery-report rate between the first poll that
saw a delivery and the one that saw N: the same measure as bare_producer.py's (first to last
delivery report), give or take one polling interval at each end.
"""

import argparse
import json
import re
import time
import urllib.request

METRIC = re.compile(r'^relay_kafka_messages_total\{result="delivered",topic="relay\.events"\} (\S+)$', re.M)


def delivered(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            m = METRIC.search(r.read().decode())
    except OSError:
        return None
    return int(float(m.group(1))) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    start = time.monotonic()
    first = first_count = last = None
    count = 0
    while time.monotonic() - start < 600:
        n = delivered(args.url)
        now = time.monotonic()
        if n:
            if first is None:
                first, first_count = now, n
            count = n
            if n >= args.target:
                last = now
                break
        time.sleep(0.02)
    span = (last - first) if (first is not None and last is not None) else None
    result = {
        "delivered": count,
        "span_s": span,
        "delivered_per_s": ((count - first_count) / span) if span else None,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
