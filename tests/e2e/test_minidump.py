"""Minidump uploads (Breakpad/Crashpad style) through /api/{project}/minidump/.

Uploads go through curl, the way crash handlers and shell scripts send them, with the key in
the query string. The fixture is FIXTURES_DIR/native/linux-x86_64/linux.dmp.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import uuid

import pytest
import requests

from e2e_lib import (
    CHUNK_SIZE,
    FIXTURES_DIR,
    PROJECT_ID,
    PUBLIC_KEY,
    check_envelope_message,
    collect_attachment,
    deterministic_bytes,
    one_event,
    tags_dict,
    which,
)

HYPHENATED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EXTRA_DATA = deterministic_bytes(CHUNK_SIZE + 100, seed=3)  # two chunks


@pytest.fixture(scope="module")
def dump_path(tmp_path_factory):
    src = FIXTURES_DIR / "native" / "linux-x86_64" / "linux.dmp"
    if not src.is_file():
        pytest.fail(f"fixture missing: {src} ")
    d = tmp_path_factory.mktemp("minidump")
    dst = d / "linux.dmp"
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    assert dst.read_bytes()[:4] == b"MDMP"
    return dst


def minidump_url(relay) -> str:
    return relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}")


def curl(args: list[str], timeout: float = 60) -> tuple[int, str, str]:
    """Run curl; return (status, content_type, body)."""
    r = subprocess.run(
        [which("curl"), "-sS", "--max-time", str(int(timeout)), "-o", "-",
         "-w", "\n%{http_code} %{content_type}", *args],
        capture_output=True, text=True, timeout=timeout + 10,
    )
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr}"
    body, _, tail = r.stdout.rpartition("\n")
    status, _, ctype = tail.partition(" ")
    return int(status), ctype, body


def accepted_event_id(status: int, ctype: str, body: str, what: str) -> str:
    assert status == 200, f"{what}: {status} {ctype} {body!r}"
    assert ctype.split(";")[0].strip() == "text/plain", f"{what}: content type {ctype!r}"
    text = body.strip()
    assert HYPHENATED.match(text), f"{what}: body should be a hyphenated UUID, got {body!r}"
    return text.replace("-", "")


def minidump_refs(v: dict) -> list[dict]:
    return [a for a in v.get("attachments") or [] if a.get("attachment_type") == "event.minidump"]


def test_multipart_with_sentry_fields_and_extra_file(relay, kafka, dump_path, tmp_path):
    extra = tmp_path / "extra.bin"
    extra.write_bytes(EXTRA_DATA)
    status, ctype, body = curl([
        "-F", f"upload_file_minidump=@{dump_path}",
        "-F", 'sentry={"release":"x@1"}',
        "-F", "sentry[tags][foo]=bar",
        "-F", f"extra_file=@{extra}",
        minidump_url(relay),
    ])
    eid = accepted_event_id(status, ctype, body, "multipart minidump")

    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    ev = v["event"]
    assert ev["platform"] == "native", ev
    assert ev.get("release") == "x@1", ev
    assert tags_dict(ev).get("foo") == "bar", ev.get("tags")

    refs = v.get("attachments") or []
    dumps = minidump_refs(v)
    assert len(dumps) == 1, refs
    assert dumps[0]["size"] == dump_path.stat().st_size, dumps[0]
    assert collect_attachment(kafka, eid, dumps[0], relay=relay) == dump_path.read_bytes()

    others = [a for a in refs if a is not dumps[0]]
    assert len(others) == 1, refs
    ref = others[0]
    # named after the uploaded file name (or, failing that, the form field)
    assert ref["name"] in ("extra.bin", "extra_file"), ref
    assert ref["attachment_type"] == "event.attachment", ref
    assert ref["size"] == len(EXTRA_DATA) and ref["chunks"] == 2, ref
    assert collect_attachment(kafka, eid, ref, relay=relay) == EXTRA_DATA


def test_raw_octet_stream(relay, kafka, dump_path):
    data = dump_path.read_bytes()
    r = requests.post(minidump_url(relay), data=data,
                      headers={"Content-Type": "application/octet-stream"}, timeout=30)
    eid = accepted_event_id(r.status_code, r.headers.get("content-type", ""), r.text, "raw")
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    assert v["event"]["platform"] == "native"
    dumps = minidump_refs(v)
    assert len(dumps) == 1, v.get("attachments")
    assert collect_attachment(kafka, eid, dumps[0], relay=relay) == data


@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_gzip_wrapped_minidump(relay, kafka, dump_path, tmp_path, how):
    data = dump_path.read_bytes()
    wrapped = gzip.compress(data)
    assert wrapped[:4] != b"MDMP"
    if how == "multipart":
        gz = tmp_path / "linux.dmp.gz"
        gz.write_bytes(wrapped)
        status, ctype, body = curl([
            "-F", f"upload_file_minidump=@{gz};type=application/octet-stream",
            "-F", f"sentry={json.dumps({'release': 'gz@1'})}",
            minidump_url(relay),
        ])
    else:
        r = requests.post(minidump_url(relay), data=wrapped,
                          headers={"Content-Type": "application/octet-stream"}, timeout=30)
        status, ctype, body = r.status_code, r.headers.get("content-type", ""), r.text
    eid = accepted_event_id(status, ctype, body, f"gzip-wrapped ({how})")
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    assert v["event"]["platform"] == "native"
    if how == "multipart":
        assert v["event"].get("release") == "gz@1"
    dumps = minidump_refs(v)
    assert len(dumps) == 1, v.get("attachments")
    got = collect_attachment(kafka, eid, dumps[0], relay=relay)
    # Downstream consumers get the unwrapped minidump.
    assert got == data, f"minidump attachment is not the unwrapped dump (starts {got[:8]!r})"


def test_minidump_event_ids_are_unique(relay, dump_path):
    ids = set()
    for _ in range(3):
        status, ctype, body = curl(["-F", f"upload_file_minidump=@{dump_path}",
                                    minidump_url(relay)])
        ids.add(accepted_event_id(status, ctype, body, "multipart"))
    assert len(ids) == 3, ids
    uuid.UUID(next(iter(ids)))
