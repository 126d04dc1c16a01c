"""Bad input against the real binary: each request gets a 4xx with a JSON `detail`, and relay
keeps working afterwards (a good envelope still gets 200 and reaches Kafka)."""

from __future__ import annotations

import json
import time
import zlib

import pytest
import requests

from e2e_lib import (
    PROJECT_ID,
    PUBLIC_KEY,
    UNKNOWN_KEY,
    assert_accepted,
    assert_detail,
    auth_header,
    check_envelope_message,
    describe,
    event_envelope,
    event_text,
    make_envelope,
    new_event_id,
    one_event,
    post_envelope,
    rss_mb,
    simple_event,
)

RSS_LIMIT_MB = 400
BOMB_BYTES = 1 << 30  # 1 GiB of zeros, decompressed


def gzip_bomb(size: int = BOMB_BYTES) -> bytes:
    """gzip of `size` zero bytes, produced streaming (~1 MB for 1 GiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    out = [c.compress(block) for _ in range(size // len(block))]
    out.append(c.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def bomb():
    return gzip_bomb()


def assert_still_works(relay, kafka, what: str) -> None:
    eid = new_event_id()
    text = f"still alive after {what} {eid}"
    r = post_envelope(relay, event_envelope(eid, text))
    assert_accepted(r, eid)
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    assert text in event_text(v["event"])


def envelope_url(relay, project=PROJECT_ID) -> str:
    return relay.url(f"/api/{project}/envelope/")


def _event_header(eid):
    return json.dumps({"event_id": eid}).encode()


def case_garbage(relay):
    return post_envelope(relay, b"\x00\x01\x02 this is not an envelope \xff\xfe\n\x00" * 20)


def case_truncated_envelope(relay):
    eid = new_event_id()
    full = event_envelope(eid, "truncated")
    # cut inside the item header line
    cut = full[: full.index(b'"type"') + 10]
    return post_envelope(relay, cut)


def case_item_length_too_long(relay):
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, "wrong length")).encode()
    body = b"\n".join([_event_header(eid),
                       json.dumps({"type": "event", "length": len(payload) + 500}).encode(),
                       payload]) + b"\n"
    return post_envelope(relay, body)


def case_item_length_too_short(relay):
    # `length` cuts the JSON payload in half: the rest is then read as an item header
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, "wrong length, short")).encode()
    body = b"\n".join([_event_header(eid),
                       json.dumps({"type": "event", "length": len(payload) // 2}).encode(),
                       payload]) + b"\n"
    return post_envelope(relay, body)


def case_bad_json_event(relay):
    eid = new_event_id()
    payload = b'{"event_id": "' + eid.encode() + b'", "message": "broken",'
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": eid})
    return post_envelope(relay, body)


def case_bad_envelope_header(relay):
    return post_envelope(relay, b'{"event_id": not-json}\n{"type":"event"}\n{}\n')


def case_unknown_key(relay):
    eid = new_event_id()
    return post_envelope(relay, event_envelope(eid, "unknown key"), headers=auth_header(UNKNOWN_KEY))


def case_missing_auth(relay):
    eid = new_event_id()
    return requests.post(envelope_url(relay), data=event_envelope(eid, "no auth"),
                         headers={"Content-Type": "application/x-sentry-envelope"}, timeout=30)


def case_unknown_project(relay):
    eid = new_event_id()
    return requests.post(
        envelope_url(relay, project=4242), data=event_envelope(eid, "wrong project"),
        headers={"Content-Type": "application/x-sentry-envelope", **auth_header()}, timeout=30)


def case_oversize_event(relay):
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, "oversize", extra={"blob": "x" * (1024 * 1024 + 1000)}))
    payload = payload.encode()
    assert len(payload) > 1024 * 1024
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": eid})
    return post_envelope(relay, body)


def case_oversize_store(relay):
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, "oversize", extra={"blob": "x" * (1024 * 1024 + 1000)}))
    return requests.post(relay.url(f"/api/{PROJECT_ID}/store/"), data=payload,
                         headers={"Content-Type": "application/json", **auth_header()}, timeout=30)


def case_bad_gzip(relay):
    eid = new_event_id()
    return post_envelope(relay, event_envelope(eid, "not gzip"),
                         headers={"Content-Encoding": "gzip"})


def case_store_bad_json(relay):
    return requests.post(relay.url(f"/api/{PROJECT_ID}/store/"), data=b'{"message": ',
                         headers={"Content-Type": "application/json", **auth_header()}, timeout=30)


def case_minidump_not_a_minidump(relay):
    return requests.post(
        relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}"),
        files={"upload_file_minidump": ("crash.dmp", b"this is not a minidump at all\n" * 50,
                                        "application/octet-stream")},
        timeout=30,
    )


def case_minidump_missing_file(relay):
    return requests.post(
        relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}"),
        files={"other_file": ("x.txt", b"hello", "text/plain")},
        timeout=30,
    )


CASES = {
    "garbage": (case_garbage, {400}),
    "truncated_envelope": (case_truncated_envelope, {400}),
    "item_length_too_long": (case_item_length_too_long, {400}),
    "item_length_too_short": (case_item_length_too_short, {400}),
    "bad_json_event_item": (case_bad_json_event, {400}),
    "bad_envelope_header": (case_bad_envelope_header, {400}),
    "unknown_key": (case_unknown_key, {401, 403}),
    "missing_auth": (case_missing_auth, {401}),
    "unknown_project": (case_unknown_project, {401, 403, 404}),
    "oversize_event": (case_oversize_event, {413}),
    "oversize_store_event": (case_oversize_store, {413}),
    "content_encoding_lies": (case_bad_gzip, {400}),
    "store_bad_json": (case_store_bad_json, {400}),
    "minidump_not_a_minidump": (case_minidump_not_a_minidump, {400}),
    "minidump_missing_file": (case_minidump_missing_file, {400}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rejected_then_still_works(relay, kafka, name):
    fn, statuses = CASES[name]
    r = fn(relay)
    assert_detail(r, statuses)
    assert_still_works(relay, kafka, name)


@pytest.mark.parametrize("endpoint", ["envelope", "store"])
def test_gzip_bomb(relay, kafka, bomb, endpoint):
    assert len(bomb) < 2 * 1024 * 1024
    ctype = "application/x-sentry-envelope" if endpoint == "envelope" else "application/json"
    t0 = time.monotonic()
    r = requests.post(
        relay.url(f"/api/{PROJECT_ID}/{endpoint}/"), data=bomb,
        headers={"Content-Type": ctype, "Content-Encoding": "gzip", **auth_header()},
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert_detail(r, {413})
    rss = rss_mb(relay.proc.pid)
    assert rss < RSS_LIMIT_MB, f"relay RSS {rss:.0f} MB after a gzip bomb ({elapsed:.1f}s)"
    assert_still_works(relay, kafka, f"gzip bomb to {endpoint}")
    rss = rss_mb(relay.proc.pid)
    assert rss < RSS_LIMIT_MB, f"relay RSS {rss:.0f} MB after a gzip bomb"


def test_concurrent_bombs_bounded_memory(relay, kafka, bomb):
    """Two bombs at once: memory stays bounded (decompression is streamed and capped)."""
    from concurrent.futures import ThreadPoolExecutor

    def send(_):
        return requests.post(
            relay.url(f"/api/{PROJECT_ID}/envelope/"), data=bomb,
            headers={"Content-Type": "application/x-sentry-envelope",
                     "Content-Encoding": "gzip", **auth_header()},
            timeout=180,
        )

    peak = 0.0
    with ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(send, i) for i in range(2)]
        while not all(f.done() for f in futs):
            peak = max(peak, rss_mb(relay.proc.pid))
            time.sleep(0.05)
        results = [f.result() for f in futs]
    for r in results:
        assert r.status_code == 413, describe(r)
    assert peak < RSS_LIMIT_MB, f"relay RSS peaked at {peak:.0f} MB under 2 concurrent bombs"
    assert_still_works(relay, kafka, "concurrent gzip bombs")
