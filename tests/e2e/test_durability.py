""""200 means kept": events answered 200 while Kafka is unreachable are delivered once it is
back, even if relay is SIGKILLed and restarted in between (the spool is durable).

Uses its own broker (on a port chosen up front, started late) and its own relay.
"""

from __future__ import annotations

import time

import requests

from e2e_lib import (
    TOPICS,
    Kafka,
    Relay,
    Tansu,
    assert_accepted,
    check_envelope_message,
    describe,
    event_envelope,
    event_text,
    free_port,
    new_event_id,
    one_event,
    post_envelope,
)

N_EVENTS = 5


def test_kafka_down_kill_restart_then_delivered(tmp_path):
    kport = free_port()
    relay = Relay(tmp_path / "relay", f"127.0.0.1:{kport}")
    broker = None
    kafka = None
    try:
        # Kafka is not there yet: relay must still start and answer liveness.
        relay.start(ready_path="/healthz/live")
        sent = {}
        for i in range(N_EVENTS):
            eid = new_event_id()
            text = f"kept while kafka was down {i} {eid}"
            r = post_envelope(relay, event_envelope(eid, text), timeout=90)
            if r.status_code == 503:
                # allowed by the contract only when the spool is full: it is not, here
                raise AssertionError(f"503 with an empty spool\n{describe(r)}")
            assert_accepted(r, eid)
            sent[eid] = text

        # Crash: no graceful shutdown, nothing flushed.
        relay.kill()
        relay.proc.start()
        relay_ready = requests.Session()
        for _ in range(300):
            try:
                if relay_ready.get(relay.url("/healthz/live"), timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"relay did not come back after restart:\n{relay.log()}")

        # Now Kafka appears.
        broker = Tansu(tmp_path / "tansu", port=kport).start()
        for topic in TOPICS.values():
            broker.create_topic(topic)
        kafka = Kafka(broker.bootstrap)
        for eid, text in sent.items():
            m = one_event(kafka, eid, "event", relay=relay, timeout=90)
            v = check_envelope_message(m, "event", eid)
            assert text in event_text(v["event"])

        # And new traffic flows normally.
        eid = new_event_id()
        assert_accepted(post_envelope(relay, event_envelope(eid, "after recovery")), eid)
        one_event(kafka, eid, "event", relay=relay)
    finally:
        if kafka:
            kafka.close()
        relay.stop()
        if broker:
            broker.stop()
