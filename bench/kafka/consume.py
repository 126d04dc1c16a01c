"""Consumer side of the benchmarks: reads a topic from the beginning and times the arrivals.

    consume.py --broker HOST:PORT --topic T [--expect N] [--idle SECS] [--timeout SECS]
               [--ready FILE] [--dump FILE] [--ids FILE] [--json-out FILE]

Assigns every partition at the beginning (no consumer group), polls in batches with a short
fetch wait, and stops after --expect messages, or after --idle seconds without a message, or at
--timeout. Reports the count, distinct keys, and the arrival rate between the first and the last
message (wall clock on this side). --ready is touched once the partitions are assigned and
polled. --dump writes the messages (key, value) as JSON lines for the bare producer. --ids
checks that every id in that file (one 32-hex id a line) arrived as a message key, and stops
as soon as all have.
"""

import argparse
import json
import os
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--ready")
    ap.add_argument("--dump")
    ap.add_argument("--ids")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.broker,
        "group.id": "relay-bench",  # required by the client; offsets are assigned, not committed
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
        "fetch.min.bytes": 1,
        "queued.min.messages": 100000,
    })
    meta = consumer.list_topics(args.topic, timeout=10)
    partitions = sorted(meta.topics[args.topic].partitions)
    if not partitions:
        sys.exit(f"topic {args.topic} has no partitions")
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])

    wanted = None
    if args.ids:
        with open(args.ids) as f:
            wanted = {line.strip().encode() for line in f if line.strip()}
    count = 0
    keys = set()
    first = last = None
    dump = open(args.dump, "w") if args.dump else None
    start = time.monotonic()
    last_seen = start
    errors = 0
    while True:
        now = time.monotonic()
        if args.expect and count >= args.expect:
            break
        if wanted is not None and count >= len(wanted) and wanted <= keys:
            break  # every id looked for has arrived
        if now - start > args.timeout:
            break
        if first is not None and now - last_seen > args.idle:
            break
        if first is None and now - start > max(args.idle, 60.0):
            break
        batch = consumer.consume(num_messages=10000, timeout=0.05)
        if args.ready and not os.path.exists(args.ready):
            # The first poll has returned: the consumer is fetching; the sender may start.
            open(args.ready, "w").close()
        if not batch:
            continue
        t = time.monotonic()
        for msg in batch:
            if msg.error():
                errors += 1
                continue
            count += 1
            key = msg.key()
            keys.add(key)
            if dump:
                dump.write(json.dumps({"key": key.decode(), "value": msg.value().decode()}) + "\n")
        if first is None:
            first = t
        last = last_seen = t
    consumer.close()
    if dump:
        dump.close()

    span = (last - first) if first is not None else 0.0
    result = {
        "messages": count,
        "distinct_keys": len(keys),
        "errors": errors,
        "span_s": span,
        "rate_per_s": (count / span) if span > 0 else None,
    }
    if wanted is not None:
        ids = wanted
        missing = ids - keys
        result["ids_expected"] = len(ids)
        result["ids_missing"] = len(missing)
        result["ids_missing_sample"] = sorted(m.decode() for m in missing)[:10]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
