"""Bounded work per event (issue 17): a minidump built to be slow to walk is cut off at the
symbolication budget, and the next event on the same symbolication thread is symbolicated
normally.

One relay with a single symbolication thread and `symbolication.timeout_secs: 1`; the
per-thread frame and memory bounds are raised so that the deadline is the bound the hostile
dump hits (tests/e2e/hostile_dump.py: 8 threads sharing a 1 MiB stack of plausible return
addresses, about a million frames to walk). Its event reaches Kafka with the crashing thread's
frames walked so far and an `errors` entry `native_walk_cut_off` with reason `timeout`; the
Linux fixture dump uploaded right after comes out with its symbolicated crashing frame and no
such entry.
"""

from __future__ import annotations

import json

import pytest

from e2e_lib import (
    FIXTURES_DIR,
    KAFKA_WAIT,
    Relay,
    check_envelope_message,
    curl_minidump,
    exception_values,
    one_event,
)
from hostile_dump import hostile_dump

NATIVE = FIXTURES_DIR / "native"
LINUX_DUMP = NATIVE / "linux-x86_64" / "linux.dmp"


def cut_offs(ev: dict) -> list[dict]:
    return [e for e in ev.get("errors") or [] if e.get("type") == "native_walk_cut_off"]


def crashing_frames(ev: dict) -> list[dict]:
    return (exception_values(ev)[0].get("stacktrace") or {}).get("frames") or []


def test_slow_dump_is_cut_off_and_the_next_is_symbolicated(tansu, kafka, tmp_path):
    if not LINUX_DUMP.is_file():
        pytest.fail(f"fixture missing: {LINUX_DUMP}")
    slow = tmp_path / "slow.dmp"
    slow.write_bytes(hostile_dump(threads=8, stack_bytes=1 << 20))
    extra = (
        f"    native_symbols: {json.dumps([str(NATIVE / 'linux-x86_64')])}\n"
        "pipeline:\n"
        "  symbolicator_threads: 1\n"
        "symbolication:\n"
        "  timeout_secs: 1\n"
        "  max_frames_per_thread: 1000000\n"
        "  max_walk_bytes: 8589934592\n"
    )
    relay = Relay(tmp_path / "relay", tansu.bootstrap, extra_config=extra).start()
    try:
        slow_id = curl_minidump(relay, slow)
        normal_id = curl_minidump(relay, LINUX_DUMP)

        ev = check_envelope_message(
            one_event(kafka, slow_id, "event", relay=relay, timeout=KAFKA_WAIT), "event",
            slow_id)["event"]
        notes = cut_offs(ev)
        assert [n.get("reason") for n in notes] == ["timeout"], (ev.get("errors"), relay.log())
        # what was walked before the deadline is kept: the crashing thread was walked first
        frames = crashing_frames(ev)
        assert len(frames) > 1, frames
        assert all(f.get("package") == "/hostile/libslow.so" for f in frames), frames[:3]

        ev = check_envelope_message(
            one_event(kafka, normal_id, "event", relay=relay, timeout=KAFKA_WAIT), "event",
            normal_id)["event"]
        assert cut_offs(ev) == [], ev.get("errors")
        top = crashing_frames(ev)[-1]
        assert top.get("function") == "crash", top
        assert top.get("status") == "symbolicated", top
    finally:
        relay.stop()
