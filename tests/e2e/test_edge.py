"""Forward mode (issue 20): an edge relay in front of a core relay, real binaries both.

sentry-python / curl -> edge relay (upstream: the core) -> core relay -> tansu. The edge spools
before its 200 and forwards each entry to the core's envelope endpoint, releasing it only on
the core's 2xx; the core does the processing (symbolication, grouping) and publishes.

- the SDK's events, exception and attachments through the edge, grouped by the core;
- the client's address (X-Forwarded-For from a trusted proxy) reaches the core;
- the core stopped for 20 s while 1,000 events reach the edge: all 200, all in Kafka after;
- kill -9 of the edge while its requests hang at a SIGSTOPped core: nothing lost after restart;
- a minidump uploaded to the edge is symbolicated by the core;
- a key quota at the core (5 errors/min): sentry-python gets the 429 + X-Sentry-Rate-Limits
  from the edge and backs off; the edge answers later errors itself (the core's request count
  equals what the edge accepted);
- accept_unknown_keys: the core's 401 for a key is remembered and answered at the edge;
- a key added to the edge's file is accepted there after SIGHUP (config reload);
- TLS: sentry-python with an https:// DSN and ca_certs through the edge's HTTPS listener,
  curl --http2 answered over h2, the edge forwarding to an https:// core (upstream.ca_file),
  a new certificate served after SIGHUP; the CA and certificates are made at test time
  with the openssl CLI;
- the edge's spool full while the upstream is away: 503 + Retry-After, readiness false, both
  back once the upstream returns and the spool drains;
- `relay config check` names `kafka` when it is configured beside `upstream`;
- process: scrub: a capture upstream (a small HTTP server recording decompressed bodies)
  never sees a password from frame vars, the user's IP or X-Forwarded-For; the same envelope
  through an edge without scrubbing shows they would have been there.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import zstandard

from e2e_lib import (
    FIXTURES_DIR,
    HEX32,
    PROJECT_ID,
    PUBLIC_KEY,
    RELAY_BIN,
    REPO_ROOT,
    VENV_PYTHON,
    Relay,
    auth_header,
    check_envelope_message,
    collect_attachment,
    curl_minidump,
    event_envelope,
    event_text,
    exception_values,
    free_port,
    make_envelope,
    metric_samples,
    new_event_id,
    one_event,
    post_envelope,
    relay_config_yaml,
    run_client,
    wait_until,
    which,
)

PY_CLIENT = REPO_ROOT / "tests" / "clients" / "python_client.py"
PY_RATELIMIT_CLIENT = REPO_ROOT / "tests" / "clients" / "python_ratelimit_client.py"
NATIVE = FIXTURES_DIR / "native"
LINUX_DUMP = NATIVE / "linux-x86_64" / "linux.dmp"
ENVELOPE_ENDPOINT = "/api/{project_id}/envelope/"

# Short retries, so that a returning upstream is noticed within seconds.
EDGE_UPSTREAM = {"max_backoff_secs": 2, "timeout_secs": 5}
# The test client plays the load balancer in front of the edge, the edge the core's proxy.
TRUST_LOCALHOST = 'limits:\n  trusted_proxies: ["127.0.0.1"]\n'


def edge_of(workdir, upstream_url: str, extra: str = "", **upstream) -> Relay:
    return Relay(workdir, "", extra_config=extra,
                 upstream={"url": upstream_url, **EDGE_UPSTREAM, **upstream}).start()


def with_key(relay: Relay, key: str, brokers: str = "", upstream: dict | None = None,
             extra: str = "") -> Relay:
    """Rewrites the relay's configuration so that project 42 has `key` instead of the default."""
    yaml = relay_config_yaml(relay.port, relay.data_dir, brokers, extra, upstream=upstream)
    relay.config_path.write_text(yaml.replace(PUBLIC_KEY, key))
    relay.dsn = f"http://{key}@127.0.0.1:{relay.port}/{PROJECT_ID}"
    return relay


def envelope_requests(relay: Relay) -> Counter:
    """relay_requests_total of the envelope endpoint, by status."""
    return Counter({labels["status"]: int(v)
                    for labels, v in metric_samples(relay, "relay_requests_total")
                    if labels.get("endpoint") == ENVELOPE_ENDPOINT})


def metric(relay: Relay, name: str, **labels) -> float:
    return sum(v for l, v in metric_samples(relay, name)
               if all(l.get(k) == want for k, want in labels.items()))


def wait_forwarded(edge: Relay, timeout: float = 60) -> None:
    """Until the edge's spool holds nothing waiting to be forwarded."""
    wait_until(lambda: metric(edge, "relay_spool_pending_entries") == 0, timeout,
               "the edge's spool to drain", on_timeout=edge.log)


def wait_all_events(kafka, ids: set[str], what: str, timeout: float = 120,
                    relay: Relay | None = None) -> dict[str, dict]:
    """Every id of `ids` as an event message in Kafka (duplicates allowed); id -> value."""
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while True:
        kafka.events.poll(0.5)
        for m in kafka.events.find(lambda m: isinstance(m.value, dict)
                                   and m.value.get("event_id") in ids
                                   and m.value.get("type") == "event"):
            found.setdefault(m.value["event_id"], m.value)
        if len(found) == len(ids):
            return found
        if time.monotonic() > deadline:
            missing = sorted(ids - set(found))
            raise AssertionError(f"{what}: {len(missing)} of {len(ids)} events missing from "
                                 f"Kafka, e.g. {missing[:5]}\n"
                                 + (f"log:\n{relay.log()}" if relay else ""))


def post_events(edge: Relay, ids: list[str], label: str) -> Counter:
    def post(eid: str) -> int:
        return post_envelope(edge, event_envelope(eid, f"edge {label} {eid}")).status_code
    with ThreadPoolExecutor(16) as pool:
        return Counter(pool.map(post, ids))


@pytest.fixture(scope="module")
def core(tansu, tmp_path_factory):
    """The core relay: Kafka output, the fixture debug files for project 42."""
    dirs = [NATIVE / "linux-x86_64", NATIVE / "rust-minidump" / "symbols"]
    extra = f"    native_symbols: {json.dumps([str(d) for d in dirs])}\n" + TRUST_LOCALHOST
    relay = Relay(tmp_path_factory.mktemp("core"), tansu.bootstrap, extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def edge(core, tmp_path_factory):
    relay = edge_of(tmp_path_factory.mktemp("edge"), core.base, TRUST_LOCALHOST)
    try:
        yield relay
    finally:
        relay.stop()


def test_sentry_python_through_the_edge_is_processed_by_the_core(core, edge, kafka, tmp_path):
    assert "forwarding to " + core.base in edge.log()
    bin_data = os.urandom(1024 * 1024 + 4321)  # two attachment chunks at the core
    (tmp_path / "hello.bin").write_bytes(bin_data)
    sent = run_client([VENV_PYTHON, str(PY_CLIENT), edge.dsn],
                      {"E2E_RUN_ID": uuid.uuid4().hex[:12],
                       "E2E_SCENARIOS": "message,exception,attachments",
                       "E2E_ATTACHMENT_BIN": str(tmp_path / "hello.bin")})

    message = check_envelope_message(one_event(kafka, sent["message"], relay=edge), "event",
                                     sent["message"])
    assert sent["message_text"] in event_text(message["event"])
    assert HEX32.match(message.get("group_id") or ""), message

    exc = check_envelope_message(one_event(kafka, sent["exception"], relay=edge), "event",
                                 sent["exception"])
    values = exception_values(exc["event"])
    zde = [x for x in values if x.get("type") == "ZeroDivisionError"]
    assert zde and zde[0]["stacktrace"]["frames"], values
    assert HEX32.match(exc.get("group_id") or ""), exc
    assert exc["event"]["sdk"]["name"] == "sentry.python", exc["event"].get("sdk")

    att = check_envelope_message(one_event(kafka, sent["attachments"], relay=edge), "event",
                                 sent["attachments"])
    refs = {a["name"]: a for a in att.get("attachments") or []}
    assert collect_attachment(kafka, sent["attachments"], refs["hello.bin"]) == bin_data

    # The core saw the SDK's client name and User-Agent, not the edge's.
    assert metric(core, "relay_requests_total", endpoint=ENVELOPE_ENDPOINT, status="200") >= 3
    assert metric(edge, "relay_upstream_requests_total", result="2xx") >= 3
    assert metric(edge, "relay_upstream_duration_seconds_count") >= 3


def test_the_client_address_reaches_the_core(core, edge, kafka):
    eid = new_event_id()
    payload = json.dumps({"event_id": eid, "message": "where from",
                          "user": {"ip_address": "{{auto}}"}}).encode()
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)])
    resp = post_envelope(edge, body, headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 200, resp.text
    ev = check_envelope_message(one_event(kafka, eid, relay=edge), "event", eid)["event"]
    # Filled in by the core from the X-Forwarded-For the edge sent.
    assert ev["user"]["ip_address"] == "203.0.113.9", ev.get("user")


def test_core_stopped_for_20s_while_1000_events_arrive(core, edge, kafka):
    core.stop()
    stopped = time.monotonic()
    try:
        ids = [new_event_id() for _ in range(1000)]
        statuses = post_events(edge, ids, "outage")
        assert statuses == Counter({200: 1000}), statuses
        # The spool absorbs the outage: still ready, entries waiting.
        assert requests.get(edge.url("/healthz/ready"), timeout=5).status_code == 200
        assert metric(edge, "relay_spool_pending_entries") > 0
        assert metric(edge, "relay_upstream_requests_total", result="error") > 0
        assert time.monotonic() - stopped < 20, "sending took the whole outage"
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        assert metric(edge, "relay_spool_pending_entries") > 0
    finally:
        core.start()
    wait_all_events(kafka, set(ids), "after the core's outage", relay=edge)
    wait_forwarded(edge)
    # One line when the outage began and one when it ended, not one per retried entry.
    log = edge.log()
    assert 1 <= log.count("upstream unavailable") <= 3, log[-3000:]
    assert "upstream answering again" in log


def test_kill_9_of_the_edge_mid_forward_loses_nothing(core, edge, kafka):
    before = [new_event_id() for _ in range(100)]
    assert post_events(edge, before, "before-kill") == Counter({200: 100})
    os.kill(core.proc.pid, signal.SIGSTOP)
    try:
        during = [new_event_id() for _ in range(200)]
        assert post_events(edge, during, "kill") == Counter({200: 200})
        # Requests to the stopped core are open now: kill the edge in the middle of them.
        wait_until(lambda: metric(edge, "relay_spool_pending_entries") > 0, 10,
                   "entries waiting at the edge")
        edge.kill()
    finally:
        os.kill(core.proc.pid, signal.SIGCONT)
    edge.start()
    wait_all_events(kafka, set(before + during), "after kill -9 of the edge", relay=edge)
    wait_forwarded(edge)


def test_minidump_through_the_edge_is_symbolicated_by_the_core(core, edge, kafka, tmp_path):
    dump = tmp_path / "linux.dmp"
    dump.write_bytes(LINUX_DUMP.read_bytes())
    eid = curl_minidump(edge, dump, f'sentry={{"release":"edge-native@{uuid.uuid4().hex[:8]}"}}')
    v = check_envelope_message(one_event(kafka, eid, relay=core, timeout=120), "event", eid)
    ev = v["event"]
    assert ev["platform"] == "native", ev.get("platform")
    threads = ev["threads"]["values"] if isinstance(ev.get("threads"), dict) else ev["threads"]
    crashed = [t for t in threads if t.get("crashed")]
    assert len(crashed) == 1, threads
    frames = crashed[0]["stacktrace"]["frames"]
    innermost = frames[-1]
    assert innermost.get("status") == "symbolicated", innermost
    assert (innermost.get("filename") or "").endswith("main.cpp"), innermost
    assert innermost.get("lineno") == 23, innermost
    assert HEX32.match(v.get("group_id") or ""), v


QUOTA_YAML = (
    "    quotas:\n"
    "      - { id: errors-per-key, categories: [error], scope: key, limit: 5, window: 60,"
    " reason: key_quota }\n"
)


def test_the_cores_quota_reaches_the_sdk_at_the_edge(tansu, kafka, tmp_path):
    key = uuid.uuid4().hex
    core = with_key(Relay(tmp_path / "core", tansu.bootstrap), key, tansu.bootstrap,
                    extra=QUOTA_YAML).start()
    edge = Relay(tmp_path / "edge", "")
    with_key(edge, key, upstream={"url": core.base, **EDGE_UPSTREAM}).start()
    try:
        sent = run_client([VENV_PYTHON, str(PY_RATELIMIT_CLIENT), edge.dsn],
                          {"E2E_RUN_ID": uuid.uuid4().hex[:12], "E2E_TRANSACTIONS": "3",
                           # The edge learns of the quota when it forwards the sixth error:
                           # errors spread over 6 s leave it the time to, on a busy machine.
                           "E2E_PACE_SECS": "0.3"})
        posted = [r for r in sent["requests"] if r.get("status") is not None]
        error_reqs = [r for r in posted if "event" in r["items"]]
        first = next((i for i, r in enumerate(posted)
                      if "event" in r["items"] and r["status"] == 429), None)
        assert first is not None, f"no error answered 429 at the edge: {posted}"
        limited = posted[first]
        assert re.fullmatch(r"\d+:error:key:key_quota", limited["rate_limits"] or ""), limited
        assert int(limited["retry_after"]) >= 1, limited
        # The SDK backs off: no error request after the 429; transactions still go out.
        later = posted[first + 1:]
        assert not [r for r in later if "event" in r["items"]], later
        assert all(r["status"] == 200 for r in posted if "transaction" in r["items"]), posted

        wait_forwarded(edge)
        at_edge = envelope_requests(edge)
        at_core = envelope_requests(core)
        # Everything the edge accepted was forwarded once; its 429s never reached the core.
        assert sum(at_core.values()) == at_edge["200"], (at_edge, at_core)
        assert at_edge["429"] >= 1, at_edge
        # The core refused what went past its quota; the edge learned from the first refusal.
        accepted_errors = sum(1 for r in error_reqs if r["status"] == 200)
        assert at_core["429"] == accepted_errors - 5 >= 1, (at_core, error_reqs)
        assert metric(edge, "relay_upstream_requests_total", result="429") >= at_core["429"]
        assert metric(edge, "relay_outcomes_total", outcome="rate_limited",
                      category="error") >= at_core["429"]
    finally:
        edge.stop()
        core.stop()


def test_a_key_the_core_refuses_is_refused_at_the_edge(core, kafka, tmp_path):
    edge = edge_of(tmp_path / "edge", core.base, accept_unknown_keys=True, key_refusal_secs=300)
    try:
        unknown = uuid.uuid4().hex
        headers = auth_header(unknown)
        eid = new_event_id()
        first = post_envelope(edge, event_envelope(eid, "unknown key"), headers=headers)
        assert first.status_code == 200, first.text  # the edge lets the core decide
        core_401 = lambda: envelope_requests(core)["401"]  # noqa: E731
        wait_until(lambda: metric(edge, "relay_spool_dropped_total",
                                  reason="upstream_refused") >= 1, 30,
                   "the core's refusal at the edge", on_timeout=edge.log)
        refused_at_core = core_401()
        assert refused_at_core >= 1
        assert re.search(r"reason=\"?upstream_refused.*401: unknown public key", edge.log()), \
            edge.log()
        again = post_envelope(edge, event_envelope(new_event_id(), "again"), headers=headers)
        assert again.status_code == 401, again.text
        assert "refused by the upstream" in again.json()["detail"], again.text
        time.sleep(1)
        assert core_401() == refused_at_core, "the edge forwarded a refused key again"
        # A known key still goes through this edge.
        ok = new_event_id()
        assert post_envelope(edge, event_envelope(ok, "known key")).status_code == 200
        one_event(kafka, ok, relay=edge)
        assert metric(edge, "relay_outcomes_total", outcome="invalid",
                      reason="upstream_refused") >= 1
    finally:
        edge.stop()


def test_a_key_added_at_the_edge_by_reload_is_accepted(core, kafka, tmp_path):
    """The edge starts knowing another key for project 42; SIGHUP after the file names the
    core's key puts it in force at the edge, and its events reach the core and Kafka."""
    upstream = {"url": core.base, **EDGE_UPSTREAM}
    edge = with_key(Relay(tmp_path / "edge", ""), uuid.uuid4().hex, upstream=upstream).start()
    try:
        before = post_envelope(edge, event_envelope(new_event_id(), "before the reload"))
        assert before.status_code == 401, before.text
        assert before.json()["detail"], before.text

        edge.config_path.write_text(relay_config_yaml(edge.port, edge.data_dir, "",
                                                      upstream=upstream))
        os.kill(edge.proc.pid, signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in edge.log(), 10,
                   "the edge's reload logged", on_timeout=edge.log)
        eid = new_event_id()
        after = post_envelope(edge, event_envelope(eid, "after the reload"))
        assert after.status_code == 200, after.text
        check_envelope_message(one_event(kafka, eid, relay=core), "event", eid)
    finally:
        edge.stop()


class Capture:
    """A stand-in upstream recording every request it gets, bodies decompressed."""

    def __init__(self, port: int | None = None):
        self.requests: list[dict] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "zstd":
                    body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
                capture.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                         "encoding": encoding, "body": body})
                answer = b'{"id": null}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_scrub_keeps_passwords_and_addresses_at_the_edge(tmp_path):
    capture = Capture()
    pii = "    pii: { ip_addresses: true }\n"
    scrubbing = edge_of(tmp_path / "scrub", capture.url, pii, process="scrub",
                        compression="gzip")
    plain = edge_of(tmp_path / "plain", capture.url, pii)
    try:
        secret, address = f"hunter2-{uuid.uuid4().hex[:8]}", "198.51.100.23"
        event = {
            "event_id": new_event_id(), "platform": "python", "level": "error",
            "user": {"ip_address": address, "id": "bob"},
            "exception": {"values": [{"type": "LoginError", "value": "bad login",
                                      "stacktrace": {"frames": [{
                                          "function": "login", "filename": "app.py",
                                          "lineno": 3,
                                          "vars": {"password": secret, "user": "bob"}}]}}]},
        }
        payload = json.dumps(event).encode()
        body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                             header={"event_id": event["event_id"]})
        for relay in (scrubbing, plain):
            assert post_envelope(relay, body).status_code == 200
        wait_until(lambda: len(capture.requests) >= 2, 30, "both edges to forward")
        by_encoding = {r["encoding"]: r for r in capture.requests}
        scrubbed, unscrubbed = by_encoding["gzip"], by_encoding["zstd"]
        assert scrubbed["path"] == unscrubbed["path"] == f"/api/{PROJECT_ID}/envelope/"
        # Without scrubbing, the secret and both addresses would leave the edge...
        assert secret.encode() in unscrubbed["body"]
        assert address.encode() in unscrubbed["body"]
        assert unscrubbed["headers"].get("x-forwarded-for") == "127.0.0.1"
        # ... with it, none of them does, and the rest of the event does.
        assert secret.encode() not in scrubbed["body"], scrubbed["body"]
        assert address.encode() not in scrubbed["body"], scrubbed["body"]
        assert "x-forwarded-for" not in scrubbed["headers"], scrubbed["headers"]
        assert b"127.0.0.1" not in scrubbed["body"]
        assert b"LoginError" in scrubbed["body"] and b'"bob"' in scrubbed["body"]
        assert scrubbed["headers"]["x-sentry-auth"].startswith(
            f"Sentry sentry_key={PUBLIC_KEY}, sentry_version=7, sentry_client=relay-e2e/1.0")
    finally:
        scrubbing.stop()
        plain.stop()
        capture.close()


def openssl(*args: str) -> None:
    r = subprocess.run([which("openssl"), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {args}: {r.stderr}"


class Pki:
    """A CA and server certificates for 127.0.0.1 signed by it, made with the openssl CLI."""

    def __init__(self, directory):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca, ca_key = directory / "ca.pem", directory / "ca.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(ca_key), "-out", str(self.ca), "-days", "2",
                "-subj", "/CN=relay e2e test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.ca_key = ca_key
        self.cert, self.key = directory / "server.pem", directory / "server.key"

    def issue(self, name: str) -> bytes:
        """A new server certificate (CN `name`) written to `cert`/`key`; returns it as DER."""
        csr, ext = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        key = self.dir / f"{name}.key"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        pem = self.dir / f"{name}.pem"
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                "-CAcreateserial", "-out", str(pem), "-days", "2", "-extfile", str(ext))
        # Replaced by rename, as a certificate manager would: a reload never sees half a file.
        for src, dst in ((pem, self.cert), (key, self.key)):
            tmp = dst.with_suffix(".tmp")
            tmp.write_bytes(src.read_bytes())
            os.replace(tmp, dst)
        return ssl.PEM_cert_to_DER_cert(pem.read_text())

    def tls_yaml(self, port: int) -> str:
        return (f'tls:\n  listen: "127.0.0.1:{port}"\n'
                f'  cert: "{self.cert}"\n  key: "{self.key}"\n')


def served_certificate(port: int, ca) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def test_tls_at_the_edge_and_to_the_core(tansu, kafka, tmp_path):
    pki = Pki(tmp_path / "pki")
    first = pki.issue("relay-e2e-first")
    core_tls, edge_tls = free_port(), free_port()
    core = Relay(tmp_path / "core", tansu.bootstrap, extra_config=pki.tls_yaml(core_tls)).start()
    edge = edge_of(tmp_path / "edge", f"https://127.0.0.1:{core_tls}", pki.tls_yaml(edge_tls),
                   ca_file=str(pki.ca))
    try:
        assert f"listening on https://127.0.0.1:{edge_tls}" in edge.log()
        https_dsn = f"https://{PUBLIC_KEY}@127.0.0.1:{edge_tls}/{PROJECT_ID}"
        sent = run_client([VENV_PYTHON, str(PY_CLIENT), https_dsn],
                          {"E2E_RUN_ID": uuid.uuid4().hex[:12],
                           "E2E_SCENARIOS": "message,exception", "E2E_CA_CERTS": str(pki.ca)})
        for kind in ("message", "exception"):
            check_envelope_message(one_event(kafka, sent[kind], relay=edge), "event", sent[kind])
        # The edge reached the core only through its https:// URL.
        assert metric(edge, "relay_upstream_requests_total", result="2xx") >= 2
        assert metric(edge, "relay_upstream_requests_total", result="error") == 0, edge.log()

        # curl over HTTP/2 (ALPN h2), verified against the test CA.
        eid = new_event_id()
        body = tmp_path / "envelope"
        body.write_bytes(event_envelope(eid, "over h2"))
        args = [which("curl"), "-sS", "--http2", "--cacert", str(pki.ca), "--max-time", "30",
                "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                "-H", "Content-Type: application/x-sentry-envelope",
                "-H", f"X-Sentry-Auth: {auth_header()['X-Sentry-Auth']}",
                "--data-binary", f"@{body}",
                f"https://127.0.0.1:{edge_tls}/api/{PROJECT_ID}/envelope/"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=40)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "200 2", r.stdout
        one_event(kafka, eid, relay=edge)

        # SIGHUP: the next handshake gets the new certificate; the process keeps running.
        assert served_certificate(edge_tls, pki.ca) == first
        second = pki.issue("relay-e2e-second")
        assert second != first
        os.kill(edge.proc.pid, signal.SIGHUP)
        wait_until(lambda: served_certificate(edge_tls, pki.ca) == second, 10,
                   "the reloaded certificate", on_timeout=edge.log)
        assert edge.proc.alive()
        assert "TLS certificate reloaded" in edge.log()
    finally:
        edge.stop()
        core.stop()


def test_a_full_spool_answers_503_until_the_upstream_returns(tmp_path):
    port = free_port()  # nothing listens here until the capture upstream starts
    spool = "spool:\n  max_disk_bytes: 65536\n  segment_bytes: 16384\n"
    edge = edge_of(tmp_path / "edge", f"http://127.0.0.1:{port}", spool)
    capture = None
    try:
        accepted, refused = [], None
        for _ in range(1000):
            eid = new_event_id()
            resp = post_envelope(edge, event_envelope(eid, "spool full " + "x" * 300))
            if resp.status_code == 503:
                refused = resp
                break
            assert resp.status_code == 200, resp.text
            accepted.append(eid)
        assert refused is not None, "the 64 KiB spool never filled"
        assert int(refused.headers["Retry-After"]) >= 1, refused.headers
        assert "detail" in refused.json()
        assert requests.get(edge.url("/healthz/ready"), timeout=5).status_code == 503
        assert len(accepted) > 20, len(accepted)

        capture = Capture(port)
        def forwarded() -> set[str]:
            return {eid for eid in accepted
                    if any(eid.encode() in r["body"] for r in list(capture.requests))}
        wait_until(lambda: len(forwarded()) == len(accepted), 60,
                   "every accepted event at the upstream", on_timeout=edge.log)
        wait_until(lambda: requests.get(edge.url("/healthz/ready"), timeout=5).status_code
                   == 200, 30, "readiness after the drain", on_timeout=edge.log)
        assert post_envelope(edge, event_envelope(new_event_id(), "again")).status_code == 200
    finally:
        edge.stop()
        if capture:
            capture.close()


def test_config_check_names_kafka_beside_upstream(tmp_path):
    config = tmp_path / "both.yaml"
    config.write_text('upstream:\n  url: "http://127.0.0.1:1"\nkafka:\n'
                      '  brokers: "127.0.0.1:9092"\n')
    r = subprocess.run([str(RELAY_BIN), "config", "check", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r
    assert "kafka: must not be configured together with upstream" in r.stderr, r.stderr
    config.write_text('upstream:\n  url: "http://127.0.0.1:1"\n  compression: gzip\n')
    r = subprocess.run([str(RELAY_BIN), "config", "check", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
