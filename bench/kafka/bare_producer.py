"""The baseline of the Kafka publish benchmark: a bare confluent-kafka (librdkafka) producer.

    bare_producer.py --broker HOST:PORT --topic T --messages FILE [--json-out FILE]

Sends the messages of FILE (JSON lines {"key", "value"}, as consume.py --dump wrote them from
the relay's own output) with the relay's producer defaults (relay-server/src/kafka/mod.rs):
enable.idempotence=true, acks=all, compression.type=lz4, linger.ms=5,
message.max.bytes=8388608, queue.buffering.max.kbytes=131072. After one warm-up message (connection,
metadata, producer id), reports messages delivered per second from the first produce() of the
batch to the end of flush() (the benchmark's headline), and between the first and the last
delivery report (which runs ahead: librdkafka acknowledges whole batches at once).
"""

import argparse
import json
import time

from confluent_kafka import Producer

SETTINGS = {
    "enable.idempotence": "true",
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": "5",
    "message.max.bytes": "8388608",
    "queue.buffering.max.kbytes": "131072",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--messages", required=True)
    ap.add_argument("--json-out")
    args = ap.parse_args()

    with open(args.messages) as f:
        messages = [json.loads(line) for line in f]
    messages = [(m["key"].encode(), m["value"].encode()) for m in messages]

    producer = Producer({"bootstrap.servers": args.broker, **SETTINGS})
    delivered = failed = 0
    first = last = None

    def report(err, _msg):
        nonlocal delivered, failed, first, last
        if err is None:
            delivered += 1
            last = time.monotonic()
            if first is None:
                first = last
        else:
            failed += 1

    # Warm-up: connection, metadata and the idempotent producer id, outside the timing (the
    # relay's timing, from its first delivery on, excludes its start-up likewise).
    producer.produce(args.topic, value=b"{}", key=b"warmup")
    producer.flush(30)

    start = time.monotonic()
    for key, value in messages:
        while True:
            try:
                producer.produce(args.topic, value=value, key=key, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.monotonic() - start
    result = {
        "messages": len(messages),
        "delivered": delivered,
        "failed": failed,
        "elapsed_s": elapsed,
        "delivered_per_s": delivered / elapsed if elapsed else None,
        # First to last delivery report: the measure watch_delivered.py takes of the relay.
        "reports_span_s": (last - first) if first is not None else None,
        "reports_per_s": ((delivered - 1) / (last - first)) if first is not None and last > first else None,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
