"""Network-level hostile traffic against the real binary (issue 17, item 4).

Each case sends one kind of abuse and asserts the exact answer: a 4xx with a JSON `detail`,
or `200` followed by an `invalid` outcome where the check happens after the spool. After
every case a normal event must be answered 200 within 2 s and reach Kafka. What each case
gets, and which limit causes it, is written down in docs/security.md, "Hostile traffic".

Bytes that `requests` cannot produce (negative or 2^64 lengths, chunked-encoding lies, 1 MiB
of headers, 2,000 headers, trickled heads) go through raw sockets.
"""

from __future__ import annotations

import gzip
import json
import resource
import select
import socket
import struct
import threading
import time
import zlib

import pytest
import requests

from e2e_lib import (
    FIXTURES_DIR,
    PROJECT_ID,
    PUBLIC_KEY,
    Relay,
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
    raise_fd_limit,
    simple_event,
)

# Cases answered 200 and refused after the spool report their `invalid` outcome under a
# project (and key) of their own, so that each one's outcomes can be told apart.
OUTCOME_PROJECTS = {"deep_json": 4401, "invalid_utf8": 4402}


def project_key(project_id: int) -> str:
    return f"{project_id:08x}" * 4


STILL_WORKS_SECONDS = 2.0
U64_OVERFLOW = 2**64  # 18446744073709551616
DEPTH = 100_000


@pytest.fixture(scope="module")
def relay_module(tansu, tmp_path_factory):
    """Overrides conftest's: project 42 plus one project per outcome-checked case, and
    outcomes flushed every second."""
    extra = "".join(
        f"  - id: {pid}\n    keys: [\"{project_key(pid)}\"]\n" for pid in OUTCOME_PROJECTS.values()
    ) + "outcomes:\n  flush_interval_secs: 1\n"
    relay = Relay(tmp_path_factory.mktemp("relay-hostile"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def error_lines(relay) -> list[str]:
    return [line for line in relay.log().splitlines() if " ERROR " in line]


def assert_still_works(relay, kafka, what: str) -> None:
    """A normal event is answered 200 within 2 s and reaches Kafka."""
    eid = new_event_id()
    text = f"still alive after {what} {eid}"
    t0 = time.monotonic()
    r = requests.post(relay.url(f"/api/{PROJECT_ID}/envelope/"), data=event_envelope(eid, text),
                      headers={"Content-Type": "application/x-sentry-envelope", **auth_header()},
                      timeout=STILL_WORKS_SECONDS)
    took = time.monotonic() - t0
    assert_accepted(r, eid)
    assert took < STILL_WORKS_SECONDS, f"answered after {took:.2f}s"
    v = check_envelope_message(one_event(kafka, eid, "event", relay=relay), "event", eid)
    assert text in event_text(v["event"])


class Raw:
    """An HTTP/1.1 answer read from a raw socket."""

    def __init__(self, data: bytes, closed: bool, error: str | None = None):
        self.data = data
        self.closed = closed
        self.error = error
        head, sep, rest = data.partition(b"\r\n\r\n")
        self.status = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.extra = b""  # anything after the first answer (a second answer would be a bug)
        if not sep:
            return
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        n = int(self.headers.get("content-length", "0"))
        self.body, self.extra = rest[:n], rest[n:]

    def __repr__(self) -> str:
        return (f"<Raw status={self.status} closed={self.closed} error={self.error} "
                f"data={self.data[:600]!r}>")

    def detail(self, status: int) -> str:
        assert self.status == status, f"expected {status}: {self!r}"
        assert self.headers.get("content-type", "").startswith("application/json"), repr(self)
        body = json.loads(self.body)
        assert isinstance(body.get("detail"), str) and body["detail"], repr(self)
        assert self.extra == b"", f"more than one answer: {self!r}"
        return body["detail"]


def readable(s: socket.socket, timeout: float) -> bool:
    """poll(), not select(): select() fails on descriptors past 1024, which the slowloris case
    opens by the thousand."""
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(p.poll(int(timeout * 1000)))


def raw_exchange(port: int, chunks: list[bytes], *, shut_write: bool = False,
                 timeout: float = 10.0, pause: float = 0.0) -> Raw:
    """Sends `chunks` (stopping early if the server answers or closes), then reads the answer
    until the server closes the connection or `timeout` passes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data, error, closed = b"", None, False
    try:
        for chunk in chunks:
            if readable(s, 0):
                break
            try:
                s.sendall(chunk)
            except OSError as e:  # closed by the server mid-request
                error = f"send: {e!r}"
                break
            if pause:
                time.sleep(pause)
        if shut_write and error is None:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not readable(s, max(0.0, deadline - time.monotonic())):
                break
            try:
                part = s.recv(65536)
            except OSError as e:
                error = f"recv: {e!r}"
                closed = True
                break
            if not part:
                closed = True
                break
            data += part
            answer = Raw(data, False)
            if answer.status is not None and len(answer.body) >= int(
                    answer.headers.get("content-length", "0")) and shut_write is False \
                    and answer.headers.get("connection") != "close":
                # a complete keep-alive answer: wait briefly for a second one, then stop
                s.settimeout(0.5)
                try:
                    more = s.recv(65536)
                    data += more
                    closed = not more
                except OSError:
                    pass
                break
    finally:
        s.close()
    return Raw(data, closed, error)


def request_head(path: str, headers: dict[str, str], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


ENVELOPE_PATH = f"/api/{PROJECT_ID}/envelope/"
SENTRY_AUTH = auth_header()["X-Sentry-Auth"]
ENVELOPE_HEADERS = {"Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": SENTRY_AUTH}


def post_to(relay, project_id: int, body: bytes, endpoint: str = "envelope",
            headers: dict | None = None, key: str | None = None) -> requests.Response:
    ctype = {"envelope": "application/x-sentry-envelope", "store": "application/json"}[endpoint]
    h = {"Content-Type": ctype, **auth_header(key or PUBLIC_KEY), **(headers or {})}
    return requests.post(relay.url(f"/api/{project_id}/{endpoint}/"), data=body, headers=h,
                         timeout=30)


def outcome_sum(kafka, project_id: int, outcome: str, reason: str | None,
                category: str = "error") -> int:
    reader = kafka.reader("outcomes")
    reader.poll(0.3)
    return sum(m.value["quantity"] for m in reader.find(
        lambda m: m.value.get("project_id") == project_id
        and m.value.get("key_id") == project_key(project_id)
        and m.value.get("outcome") == outcome and m.value.get("reason") == reason
        and m.value.get("category") == category))


def wait_invalid_outcome(relay, kafka, project_id: int, expected: int) -> None:
    """Waits for `expected` invalid/invalid_event error outcomes of the project, then reads 3 s
    more: exactly that many, and none accepted."""
    deadline = time.monotonic() + 30
    while outcome_sum(kafka, project_id, "invalid", "invalid_event") < expected:
        assert time.monotonic() < deadline, (
            f"no invalid outcome for project {project_id} within 30 s; outcomes read: "
            f"{[m.value for m in kafka.reader('outcomes').messages][-20:]}\nrelay log:\n"
            + relay.log())
    end = time.monotonic() + 3
    while time.monotonic() < end:
        kafka.reader("outcomes").poll(0.5)
    assert outcome_sum(kafka, project_id, "invalid", "invalid_event") == expected
    assert outcome_sum(kafka, project_id, "accepted", None) == 0


def assert_not_published(kafka, event_id: str) -> None:
    kafka.events.poll(1.0)
    found = kafka.events.find(lambda m: m.value.get("event_id") == event_id)
    assert not found, f"a refused event was published: {found}"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ----------------------------------------------------------------------------------------------
# JSON nested 100,000 deep
# ----------------------------------------------------------------------------------------------


def test_deep_json_in_an_event_is_accepted_then_counted_invalid(relay, kafka):
    """The intake checks an event's JSON syntax without building it (no depth limit there);
    the pipeline's parser stops at 128 levels: 200, then an `invalid` outcome."""
    pid = OUTCOME_PROJECTS["deep_json"]
    eid = new_event_id()
    payload = (json.dumps(simple_event(eid, "deep"))[:-1] + ', "extra": {"deep": '
               + nested(DEPTH) + "}}").encode()
    json.loads(payload.replace(nested(DEPTH).encode(), b"[]"))  # well-formed apart from depth
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": eid})
    r = post_to(relay, pid, body, key=project_key(pid))
    assert_accepted(r, eid)
    wait_invalid_outcome(relay, kafka, pid, 1)
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "deep JSON in an event")


def test_deep_json_store_and_envelope_header_are_refused(relay, kafka):
    """Where the intake builds the JSON (a store event, an envelope header), serde_json's
    recursion limit refuses it: 400."""
    eid = new_event_id()
    deep_event = (json.dumps(simple_event(eid, "deep"))[:-1] + ', "extra": '
                  + nested(DEPTH) + "}").encode()
    detail = assert_detail(post_to(relay, PROJECT_ID, deep_event, "store"), {400})
    assert detail.startswith("event is not valid JSON: recursion limit exceeded"), detail
    assert_still_works(relay, kafka, "deep JSON to store")

    header = ('{"event_id": "%s", "deep": %s}' % (eid, nested(DEPTH))).encode()
    payload = json.dumps(simple_event(eid, "deep header")).encode()
    body = header + b"\n" + json.dumps({"type": "event", "length": len(payload)}).encode() \
        + b"\n" + payload + b"\n"
    detail = assert_detail(post_to(relay, PROJECT_ID, body), {400})
    assert detail.startswith("invalid envelope") and "recursion limit exceeded" in detail, detail
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "deep JSON in an envelope header")


# ----------------------------------------------------------------------------------------------
# 200,000 items; item lengths
# ----------------------------------------------------------------------------------------------


def test_200000_items_in_one_envelope(relay, kafka):
    eid = new_event_id()
    item = b'{"type":"attachment","length":0}\n\n'
    body = json.dumps({"event_id": eid}).encode() + b"\n" + item * 200_000
    assert len(body) < 20 * 1024 * 1024
    detail = assert_detail(post_to(relay, PROJECT_ID, body), {400})
    assert detail == "invalid envelope: envelope has more than 10000 items", detail
    assert_still_works(relay, kafka, "200,000 items")


ITEM_LENGTHS = {
    "beyond_the_body": (lambda n: n + 1_000_000, "declares length {v} but only"),
    "negative": (lambda n: -1, "invalid value: integer `-1`, expected u64"),
    "u64_max": (lambda n: 2**64 - 1, "declares length 18446744073709551615 but only"),
    # serde_json reads an integer past u64 as a float
    "two_to_the_64": (lambda n: U64_OVERFLOW,
                      "invalid type: floating point `1.8446744073709552e+19`, expected u64"),
}


@pytest.mark.parametrize("case", list(ITEM_LENGTHS))
def test_item_length_lies(relay, kafka, case):
    make, expected = ITEM_LENGTHS[case]
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, f"length {case}")).encode()
    length = make(len(payload))
    body = (json.dumps({"event_id": eid}) + "\n" + '{"type":"event","length":%d}' % length
            + "\n").encode() + payload + b"\n"
    detail = assert_detail(post_to(relay, PROJECT_ID, body), {400})
    assert detail.startswith("invalid envelope: ") and "item 0" in detail, detail
    assert expected.format(v=length) in detail, detail
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, f"item length {case}")


# Content-Length header lies, which `requests` will not send: actix-http refuses the head
# before any handler runs, with an empty 400 (see docs/security.md, "Hostile traffic").
CONTENT_LENGTHS = {"negative": "-1", "two_to_the_64": str(U64_OVERFLOW),
                   "two_values": "10, 20", "not_a_number": "12abc"}


@pytest.mark.parametrize("case", list(CONTENT_LENGTHS))
def test_content_length_lies(relay, kafka, case):
    head = request_head(ENVELOPE_PATH, {**ENVELOPE_HEADERS,
                                        "Content-Length": CONTENT_LENGTHS[case]})
    errors = error_lines(relay)
    answer = raw_exchange(relay.port, [head, b"{}\n"])
    assert answer.status == 400 and answer.body == b"" and answer.closed, answer
    assert_still_works(relay, kafka, f"Content-Length {case}")
    # actix-http logs each head it cannot parse as an ERROR; the relay's log filter drops them
    assert error_lines(relay) == errors


# ----------------------------------------------------------------------------------------------
# invalid UTF-8 inside an event
# ----------------------------------------------------------------------------------------------


def invalid_utf8_event(eid: str) -> bytes:
    return json.dumps(simple_event(eid, "PLACEHOLDER")).encode().replace(
        b"PLACEHOLDER", b"caf\xe9 \xff\xfe \xc3\x28")


def test_invalid_utf8_in_an_envelope_event_is_accepted_then_counted_invalid(relay, kafka):
    """The intake skips the strings it does not need without checking their UTF-8; the
    pipeline's parser checks the whole payload: 200, then an `invalid` outcome."""
    pid = OUTCOME_PROJECTS["invalid_utf8"]
    eid = new_event_id()
    payload = invalid_utf8_event(eid)
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": eid})
    assert_accepted(post_to(relay, pid, body, key=project_key(pid)), eid)
    wait_invalid_outcome(relay, kafka, pid, 1)
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "invalid UTF-8 in an envelope event")


def test_invalid_utf8_in_a_store_event_is_refused(relay, kafka):
    eid = new_event_id()
    detail = assert_detail(post_to(relay, PROJECT_ID, invalid_utf8_event(eid), "store"), {400})
    assert detail.startswith("event is not valid JSON: invalid unicode code point"), detail
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "invalid UTF-8 in a store event")


# ----------------------------------------------------------------------------------------------
# a 1 MiB header, 2,000 headers, a 10 KiB key, a project id past u64
# ----------------------------------------------------------------------------------------------


def test_one_mib_header(relay, kafka):
    """actix-http reads at most 128 KiB of request head, then answers 431 with an empty body
    and closes the connection, before any request exists to hand to a handler."""
    head = request_head(ENVELOPE_PATH, ENVELOPE_HEADERS)[:-2]  # without the final CRLF
    junk = b"X-Junk: " + b"a" * (1 << 20) + b"\r\n\r\n"
    chunks = [head] + [junk[i:i + 16384] for i in range(0, len(junk), 16384)]
    errors = error_lines(relay)
    answer = raw_exchange(relay.port, chunks)
    assert answer.status == 431 and answer.body == b"", answer
    assert_still_works(relay, kafka, "a 1 MiB header")
    assert error_lines(relay) == errors


def test_two_thousand_headers(relay, kafka):
    """httparse takes at most 96 headers; actix-http answers more with an empty 431."""
    headers = {**ENVELOPE_HEADERS, **{f"X-H{i}": "v" for i in range(2000)},
               "Content-Length": "3"}
    errors = error_lines(relay)
    answer = raw_exchange(relay.port, [request_head(ENVELOPE_PATH, headers), b"{}\n"])
    assert answer.status == 431 and answer.body == b"", answer
    assert_still_works(relay, kafka, "2,000 headers")
    assert error_lines(relay) == errors


def test_ten_kib_key(relay, kafka):
    key = "a" * 10240
    eid = new_event_id()
    r = post_to(relay, PROJECT_ID, event_envelope(eid, "10 KiB key"), key=key)
    detail = assert_detail(r, {401})
    assert detail == f"unknown public key {'a' * 64}... (10240 bytes)", detail
    # in the query string too
    r = requests.post(relay.url(f"{ENVELOPE_PATH}?sentry_key={key}"),
                      data=event_envelope(eid, "10 KiB key"),
                      headers={"Content-Type": "application/x-sentry-envelope"}, timeout=30)
    assert assert_detail(r, {401}) == detail
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "a 10 KiB key")


@pytest.mark.parametrize("endpoint", ["envelope", "store", "minidump"])
def test_project_id_past_u64(relay, kafka, endpoint):
    eid = new_event_id()
    path = f"/api/{U64_OVERFLOW}/{endpoint}/"
    r = requests.post(relay.url(path), data=event_envelope(eid, "project id past u64"),
                      headers=ENVELOPE_HEADERS, timeout=30)
    detail = assert_detail(r, {400})
    assert detail.startswith(f"invalid project id in {path}:"), detail
    assert detail.endswith("(expected a number from 0 to 18446744073709551615)"), detail
    assert_still_works(relay, kafka, f"a project id past u64 ({endpoint})")


# ----------------------------------------------------------------------------------------------
# chunked-encoding lies
# ----------------------------------------------------------------------------------------------


def chunked_head(extra: dict[str, str] | None = None) -> bytes:
    return request_head(ENVELOPE_PATH, {**ENVELOPE_HEADERS, "Transfer-Encoding": "chunked",
                                        **(extra or {})})


def good_chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


# name -> (bytes after the head, close the write side, expected)
# expected: ("json", status, detail prefix) from a handler; ("bare", status) from actix-http.
CHUNKED = {
    # a chunk announced longer than what arrives before the client half-closes
    "short_chunk_then_eof": (b"1000\r\n" + b"x" * 100, True,
                             ("json", 400, "cannot read request body")),
    "size_not_hex": (b"zz\r\n{}\r\n0\r\n\r\n", False,
                     ("json", 400, "cannot read request body")),
    "size_past_u64": (b"fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", False,
                      ("json", 400, "cannot read request body")),
    "data_longer_than_size": (b"2\r\n{}EXTRA\r\n0\r\n\r\n", False,
                              ("json", 400, "cannot read request body")),
    "no_terminating_chunk_then_eof": (good_chunk(b"{}\n"), True,
                                      ("json", 400, "cannot read request body")),
}


@pytest.mark.parametrize("case", list(CHUNKED))
def test_chunked_encoding_lies(relay, kafka, case):
    rest, shut, expected = CHUNKED[case]
    errors = error_lines(relay)
    answer = raw_exchange(relay.port, [chunked_head(), rest], shut_write=shut)
    if expected[0] == "json":
        detail = answer.detail(expected[1])
        assert detail.startswith(expected[2]), answer
    else:
        assert answer.status == expected[1] and answer.body == b"", answer
    assert_still_works(relay, kafka, f"chunked lie {case}")
    assert error_lines(relay) == errors


def test_chunked_and_content_length_together(relay, kafka):
    """Both framings at once (request smuggling): actix-http refuses the head, empty 400."""
    head = chunked_head({"Content-Length": "3"})
    errors = error_lines(relay)
    answer = raw_exchange(relay.port, [head, good_chunk(b"{}\n") + b"0\r\n\r\n"])
    assert answer.status == 400 and answer.body == b"" and answer.closed, answer
    assert_still_works(relay, kafka, "chunked plus Content-Length")
    assert error_lines(relay) == errors


# ----------------------------------------------------------------------------------------------
# gzip inside gzip
# ----------------------------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([c.compress(block) for _ in range(size // len(block))] + [c.flush()])


def test_gzip_inside_gzip(relay, kafka):
    """One Content-Encoding is undone, once: what is inside must be the envelope."""
    eid = new_event_id()
    twice = gzip.compress(gzip.compress(event_envelope(eid, "gzip in gzip")))
    detail = assert_detail(post_to(relay, PROJECT_ID, twice, headers={"Content-Encoding": "gzip"}),
                           {400})
    assert detail.startswith("invalid envelope: invalid envelope header"), detail

    # a bomb inside a gzip: 1 GiB of zeros -> ~1 MB gzip -> ~4 KB outer gzip
    bomb = gzip.compress(gzip_of_zeros(1 << 30))
    assert len(bomb) < 100_000
    detail = assert_detail(post_to(relay, PROJECT_ID, bomb, headers={"Content-Encoding": "gzip"}),
                           {400})
    assert detail.startswith("invalid envelope: invalid envelope header"), detail

    # two encodings named: refused before decoding
    r = post_to(relay, PROJECT_ID, twice, headers={"Content-Encoding": "gzip, gzip"})
    detail = assert_detail(r, {415})
    assert "gzip, gzip" in detail, detail

    # a minidump in gzip in gzip: the container is unwrapped once
    dump = (FIXTURES_DIR / "native" / "linux-x86_64" / "linux.dmp").read_bytes()
    r = requests.post(relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}"),
                      files={"upload_file_minidump": ("crash.dmp",
                                                      gzip.compress(gzip.compress(dump)))},
                      timeout=30)
    detail = assert_detail(r, {400})
    assert detail.startswith("upload is not a minidump: expected the file to start with MDMP"), \
        detail
    assert_not_published(kafka, eid)
    assert_still_works(relay, kafka, "gzip inside gzip")


# ----------------------------------------------------------------------------------------------
# a minidump with 65,535 streams pointing past the file
# ----------------------------------------------------------------------------------------------

MDMP_VERSION = 0xA793


def hostile_minidump(directory_inside: bool) -> bytes:
    """An MDMP header claiming 65,535 streams. With `directory_inside`, the directory is
    there (65,535 entries of 12 bytes) and every stream's location points past the file;
    otherwise the directory's own RVA points past the file."""
    count = 65535
    if not directory_inside:
        header = struct.pack("<4sIIIIIQ", b"MDMP", MDMP_VERSION, count, 0x7FFF_0000, 0, 0, 0)
        return header + b"\0" * 64
    header = struct.pack("<4sIIIIIQ", b"MDMP", MDMP_VERSION, count, 32, 0, 0, 0)
    size = 32 + count * 12
    # stream type 3 (thread list), 4 (module list), 7 (system info), then arbitrary ones
    entries = b"".join(
        struct.pack("<III", (3, 4, 7)[i] if i < 3 else 0x1000 + i, 0x1000_0000, size + 1000 * i)
        for i in range(count))
    return header + entries


MINIDUMP_ERRORS = {
    "directory_past_the_file": "corrupt minidump: Missing stream directory",
    "streams_past_the_file": "cannot walk the minidump: The thread list stream was not found",
}


@pytest.mark.parametrize("variant", list(MINIDUMP_ERRORS))
def test_minidump_pointing_past_the_file(relay, kafka, variant):
    """The intake checks only the signature (the dump is read after the spool): 200 and the
    event id; the walk fails, and the event is published with a `native_bad_dump` error and
    the dump attached, as for any dump that cannot be walked (an `accepted` outcome, not
    `invalid`: the event itself is good)."""
    dump = hostile_minidump(variant == "streams_past_the_file")
    t0 = time.monotonic()
    r = requests.post(
        relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}"),
        files={"upload_file_minidump": ("crash.dmp", dump, "application/octet-stream")},
        timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain", describe(r)
    eid = r.text.strip().replace("-", "")
    assert len(eid) == 32, describe(r)
    v = check_envelope_message(one_event(kafka, eid, "event", relay=relay, timeout=30),
                               "event", eid)
    took = time.monotonic() - t0
    errors = v["event"].get("errors") or []
    assert [e.get("type") for e in errors] == ["native_bad_dump"], errors
    assert errors[0]["details"].startswith(MINIDUMP_ERRORS[variant]), errors
    refs = v.get("attachments") or []
    assert [(a["attachment_type"], a["size"]) for a in refs] == [("event.minidump", len(dump))], v
    assert took < 10, f"the dump took {took:.1f}s to reach Kafka"
    assert_still_works(relay, kafka, f"a minidump ({variant})")


# ----------------------------------------------------------------------------------------------
# a multipart body with 50,000 fields
# ----------------------------------------------------------------------------------------------


def test_multipart_with_50000_fields(relay, kafka):
    """Each text field of a minidump upload becomes an `extra` value: 50,000 of them are
    refused (413) before an event is built, rather than spooled as a 50,000-key event."""
    boundary = "hostileboundary"
    dump = (FIXTURES_DIR / "native" / "linux-x86_64" / "linux.dmp").read_bytes()
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n'
             .encode() for i in range(50_000)]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="upload_file_minidump"; '
                 f'filename="crash.dmp"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + dump + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    t0 = time.monotonic()
    r = requests.post(relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}"),
                      data=body, headers={
                          "Content-Type": f"multipart/form-data; boundary={boundary}"},
                      timeout=60)
    took = time.monotonic() - t0
    detail = assert_detail(r, {413})
    assert "fields" in detail, detail
    assert took < 5, f"answered after {took:.1f}s"
    assert_still_works(relay, kafka, "50,000 multipart fields")


# ----------------------------------------------------------------------------------------------
# slowloris: 2,000 connections trickling header bytes while real clients are served
# ----------------------------------------------------------------------------------------------

SLOW_SOCKETS = 2000
SLOW_SECONDS = 40
HEAD_TIMEOUT = 5  # actix's client_request_timeout, set in service.rs


class Trickle:
    """Connections from 127.0.0.1 each sending its request head a byte a second; one the
    relay answers or closes is replaced, as an attacker would."""

    def __init__(self, port: int, sockets: int):
        self.port = port
        self.target = sockets
        self.socks: dict[socket.socket, tuple[float, int]] = {}  # -> (opened at, bytes sent)
        self.opened = 0
        self.answered_408 = 0
        self.other_answers: list[bytes] = []
        self.lifetimes: list[float] = []
        self.stop = threading.Event()
        self.error: str | None = None
        self.head = request_head(ENVELOPE_PATH, ENVELOPE_HEADERS)[:-2]  # never complete

    def open_one(self) -> None:
        s = socket.socket()
        s.settimeout(2)
        try:
            s.bind(("127.0.0.1", 0))
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self.socks[s] = (time.monotonic(), 0)
        self.opened += 1

    def closed(self, s: socket.socket, opened: float, data: bytes) -> None:
        self.lifetimes.append(time.monotonic() - opened)
        if data.startswith(b"HTTP/1.1 408"):
            self.answered_408 += 1
        elif data:
            self.other_answers.append(data[:200])
        s.close()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test, not lost with the thread
            self.error = repr(e)
            raise

    def _run(self) -> None:
        while not self.stop.is_set():
            tick = time.monotonic()
            for s, (opened, sent) in list(self.socks.items()):
                try:
                    data = s.recv(4096)  # non-blocking: an answer, or b"" once closed
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data is None:
                    try:
                        s.send(self.head[sent % len(self.head):][:1])
                        self.socks[s] = (opened, sent + 1)
                        continue
                    except OSError:
                        data = b""
                del self.socks[s]
                self.closed(s, opened, data)
            for _ in range(min(400, self.target - len(self.socks))):
                self.open_one()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
        for s in self.socks:
            s.close()


def timed_post_from(port: int, source: str) -> tuple[int, float, str]:
    import http.client
    eid = new_event_id()
    body = event_envelope(eid, "served during slowloris")
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=STILL_WORKS_SECONDS,
                                      source_address=(source, 0))
    try:
        conn.request("POST", ENVELOPE_PATH, body=body, headers=ENVELOPE_HEADERS)
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.monotonic() - start, eid


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit for {pid}")


@pytest.fixture
def relay_started_at_1024_files(tansu, tmp_path):
    """A relay started with the common soft limit of 1024 open files (and this process's hard
    limit): the relay raises it to the hard limit itself. At 1024, 2,000 trickling connections
    made accept() fail (EMFILE) and shut every other client out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        relay = Relay(tmp_path / "relay-slowloris", tansu.bootstrap)
        relay.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield relay
    finally:
        relay.stop()


def test_slowloris_while_real_clients_are_served(relay_started_at_1024_files, kafka):
    relay = relay_started_at_1024_files
    soft, hard = open_files_limit(relay.proc.pid)
    assert soft == hard, f"the relay kept a soft limit of {soft} open files (hard {hard})"
    assert soft >= SLOW_SOCKETS + 1000, f"the hard limit {hard} is too low for this test"
    raise_fd_limit(SLOW_SOCKETS + 1000)
    flood = Trickle(relay.port, SLOW_SOCKETS)
    for _ in range(SLOW_SOCKETS):
        flood.open_one()
    flooder = threading.Thread(target=flood.run, daemon=True)
    flooder.start()
    failures, served = [], []
    try:
        end = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < end:
            try:
                status, took, eid = timed_post_from(relay.port, "127.0.0.2")
            except OSError as e:
                failures.append(f"{SLOW_SECONDS - (end - time.monotonic()):.1f}s: {e!r}")
            else:
                if status != 200 or took > STILL_WORKS_SECONDS:
                    failures.append(f"{status} after {took:.2f}s")
                else:
                    served.append(eid)
            time.sleep(0.25)
    finally:
        flood.stop.set()
        flooder.join(20)
    print(f"{flood.opened} trickling sockets opened, {flood.answered_408} answered 408, "
          f"longest lived {max(flood.lifetimes, default=0):.1f}s; {len(served)} served")
    assert flood.error is None, flood.error
    assert flood.opened >= SLOW_SOCKETS
    assert not failures, f"{len(failures)} of {len(served) + len(failures)}: {failures[:10]}"
    assert len(served) >= SLOW_SECONDS * 2, len(served)
    # The relay, not the test, ended the trickling connections: 408 after the head timeout.
    assert flood.answered_408 >= SLOW_SOCKETS, flood.answered_408
    assert not flood.other_answers, flood.other_answers[:5]
    assert max(flood.lifetimes) < HEAD_TIMEOUT + 4, max(flood.lifetimes)
    # Every event answered 200 during the flood reaches Kafka.
    ids = set(served)
    kafka.events.wait_for(lambda m: m.value.get("event_id") in ids and
                          m.value.get("type") == "event", "events served during slowloris",
                          count=len(ids), timeout=60)
    assert_still_works(relay, kafka, "slowloris")
    assert relay.proc.alive(), relay.log()
