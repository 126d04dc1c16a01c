"""Resource exhaustion (issue 21, items 5 and 6): bytes in flight and slow clients.

- 40 parallel minidump uploads with a 60 MB attachment each: every one is answered 200 or
  503 + Retry-After, the relay's peak RSS stays under 800 MB with the default
  `limits.max_inflight_bytes`, every accepted attachment arrives whole in Kafka, and RSS falls
  back under 300 MB within 30 s.
- 1,100 connections from 127.0.0.1 sending a body one byte a second: a client on 127.0.0.2
  is answered 200 within 1 s throughout.

Each test starts its own relay, so that its peak RSS (VmHWM) is its own.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from e2e_lib import (
    FIXTURES_DIR,
    PROJECT_ID,
    PUBLIC_KEY,
    Relay,
    auth_header,
    check_envelope_message,
    collect_attachment,
    event_envelope,
    new_event_id,
    one_event,
    raise_fd_limit,
    which,
)

UPLOADS = 40
ATTACHMENT_BYTES = 60 * 1000 * 1000
PEAK_RSS_LIMIT_MB = 800
SETTLED_RSS_LIMIT_MB = 300

SLOW_SOCKETS = 1100
SLOW_SECONDS = 60  # the 60 s of slow-body connections


def proc_status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no {field} for pid {pid}")


def metric(relay: Relay, name: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include `labels`."""
    text = requests.get(relay.url("/metrics"), timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def fresh_relays(tansu, tmp_path_factory):
    started: list[Relay] = []

    def start(name: str, extra_config: str = "") -> Relay:
        relay = Relay(tmp_path_factory.mktemp(name), tansu.bootstrap, extra_config).start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()


# ----------------------------------------------------------------------------------------------
# bytes in flight
# ----------------------------------------------------------------------------------------------


def upload(url: str, dump: Path, attachment: Path, workdir: Path, index: int) -> dict:
    """One multipart upload with curl (which streams the files); status, headers and body."""
    headers = workdir / f"headers-{index}.txt"
    r = subprocess.run(
        [which("curl"), "-sS", "--max-time", "50", "-o", "-", "-D", str(headers),
         "-w", "\n%{http_code}",
         "-F", f"upload_file_minidump=@{dump}",
         "-F", f"big=@{attachment};type=application/octet-stream",
         url],
        capture_output=True, text=True, timeout=60,
    )
    body, _, status = r.stdout.rpartition("\n")
    head = headers.read_text(errors="replace") if headers.exists() else ""
    # With `Expect: 100-continue` curl may see a `100` block first; the last block is the answer.
    final = head.strip().split("\r\n\r\n")[-1]
    return {"rc": r.returncode, "stderr": r.stderr, "status": int(status or 0),
            "headers": final, "body": body}


def test_parallel_large_uploads_stay_within_the_budget(fresh_relays, kafka, tmp_path):
    relay = fresh_relays("relay-inflight")
    pid = relay.proc.pid
    dump = FIXTURES_DIR / "native" / "linux-x86_64" / "linux.dmp"
    attachment = tmp_path / "big.bin"
    data = os.urandom(ATTACHMENT_BYTES)
    attachment.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    del data
    url = relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}")
    rss_before = proc_status_mb(pid, "VmRSS")

    with ThreadPoolExecutor(UPLOADS) as pool:
        results = list(pool.map(lambda i: upload(url, dump, attachment, tmp_path, i),
                                range(UPLOADS)))
    burst_end = time.monotonic()
    peak = proc_status_mb(pid, "VmHWM")

    accepted = []
    for i, r in enumerate(results):
        what = f"upload {i}: rc={r['rc']} {r['stderr']!r} {r['status']} {r['body'][:300]!r}"
        assert r["rc"] == 0, what
        assert r["status"] in (200, 503), what
        if r["status"] == 503:
            assert re.search(r"(?im)^retry-after:\s*\d+", r["headers"]), what
            assert "detail" in json.loads(r["body"]), what
        else:
            accepted.append(r["body"].strip().replace("-", ""))
    refused = UPLOADS - len(accepted)
    print(f"accepted {len(accepted)}, refused {refused}; RSS before {rss_before:.0f} MB, "
          f"peak (VmHWM) {peak:.0f} MB")
    assert accepted, "no upload was accepted"
    assert peak < PEAK_RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"

    # Every accepted upload arrives whole: the dump and all chunks of the 60 MB attachment.
    for eid in accepted:
        v = check_envelope_message(one_event(kafka, eid, "event", relay=relay), "event", eid)
        refs = {a["attachment_type"]: a for a in v.get("attachments") or []}
        assert set(refs) == {"event.minidump", "event.attachment"}, v.get("attachments")
        got = collect_attachment(kafka, eid, refs["event.attachment"], timeout=60, relay=relay)
        assert len(got) == ATTACHMENT_BYTES and hashlib.sha256(got).hexdigest() == digest, eid
        del got
        got_dump = collect_attachment(kafka, eid, refs["event.minidump"], relay=relay)
        assert got_dump == dump.read_bytes(), eid
    # The readers keep every message; drop the chunks read so far (hundreds of MB of base64).
    kafka.attachments.messages.clear()

    settled = None
    while time.monotonic() < burst_end + 30:
        settled = proc_status_mb(pid, "VmRSS")
        if settled < SETTLED_RSS_LIMIT_MB:
            break
        time.sleep(1)
    print(f"RSS {settled:.0f} MB {time.monotonic() - burst_end:.0f} s after the burst")
    assert settled < SETTLED_RSS_LIMIT_MB, f"RSS still {settled:.0f} MB 30 s after the burst"
    assert metric(relay, "relay_rejections_total", reason="inflight_bytes") == refused


# ----------------------------------------------------------------------------------------------
# slow clients
# ----------------------------------------------------------------------------------------------


class SlowFlood:
    """Sockets from 127.0.0.1, each with a declared body sent one byte a second; a socket
    the relay answers or closes is replaced, as an attacker would."""

    def __init__(self, port: int, sockets: int):
        self.port = port
        self.target = sockets
        self.socks: list[socket.socket] = []
        self.opened = 0
        self.stop = threading.Event()
        path = f"/api/{PROJECT_ID}/store/?sentry_key={PUBLIC_KEY}"
        self.head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()

    def open_one(self) -> None:
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(self.head)
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self.socks.append(s)
        self.opened += 1

    def run(self) -> None:
        while not self.stop.is_set():
            tick = time.monotonic()
            alive = []
            for s in self.socks:
                try:
                    s.send(b" ")
                    alive.append(s)
                except OSError:  # answered (503/408) and closed, or reset
                    s.close()
            self.socks = alive
            # Top up to the target, a few hundred a second (the listen backlog is finite).
            for _ in range(min(300, self.target - len(self.socks))):
                self.open_one()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
        for s in self.socks:
            s.close()


def timed_post_from(port: int, source: str) -> tuple[int, float]:
    body = event_envelope(new_event_id(), "from another address")
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1,
                                      source_address=(source, 0))
    try:
        conn.request("POST", f"/api/{PROJECT_ID}/envelope/", body=body,
                     headers={**auth_header(), "Content-Type": "application/x-sentry-envelope"})
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.monotonic() - start


def test_slow_bodies_from_one_address_leave_others_served(fresh_relays):
    raise_fd_limit(SLOW_SOCKETS + 1000)
    relay = fresh_relays("relay-slow")
    flood = SlowFlood(relay.port, SLOW_SOCKETS)
    for _ in range(SLOW_SOCKETS):
        flood.open_one()
    flooder = threading.Thread(target=flood.run, daemon=True)
    flooder.start()
    failures, answers = [], 0
    try:
        end = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < end:
            try:
                status, took = timed_post_from(relay.port, "127.0.0.2")
            except OSError as e:
                failures.append(f"{time.monotonic() - end + SLOW_SECONDS:.1f}s: {e!r}")
            else:
                answers += 1
                if status != 200 or took > 1.0:
                    failures.append(f"{status} after {took:.2f}s")
            time.sleep(0.25)
    finally:
        flood.stop.set()
        flooder.join(10)
    print(f"{flood.opened} slow sockets opened; {answers} answers to 127.0.0.2")
    assert flood.opened >= SLOW_SOCKETS
    assert not failures, f"{len(failures)} of {answers + len(failures)}: {failures[:10]}"
    # The flood was refused per address, and the slot holders timed out.
    assert metric(relay, "relay_rejections_total", reason="per_ip_concurrency") > 0
    assert metric(relay, "relay_rejections_total", reason="body_timeout") > 0
