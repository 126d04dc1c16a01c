"""The real sentry-python SDK sends to relay; everything it sent must come out of Kafka.

tests/clients/python_client.py runs as a subprocess with the venv's python and prints the event
ids the SDK returned. sentry-python gzips every envelope (br when the brotli module is installed; our venv has it, so
the client selects the algorithm explicitly) and authenticates with X-Sentry-Auth.
"""

from __future__ import annotations

import uuid

import pytest

from e2e_lib import (
    CHUNK_SIZE,
    HEX32,
    REPO_ROOT,
    VENV_PYTHON,
    check_envelope_message,
    collect_attachment,
    deterministic_bytes,
    event_text,
    exception_values,
    one_event,
    run_client,
)

CLIENT = REPO_ROOT / "tests" / "clients" / "python_client.py"

# hello.bin spans two Kafka chunks (1 MiB + a bit); hello.txt is small non-ASCII text.
BIN_DATA = deterministic_bytes(CHUNK_SIZE + 12345, seed=1)
TXT_DATA = ("hello from the python e2e client \u2713\n" * 10).encode("utf-8")


@pytest.fixture(scope="module")
def sent(relay_module, tmp_path_factory):
    d = tmp_path_factory.mktemp("python-client")
    (d / "hello.bin").write_bytes(BIN_DATA)
    (d / "hello.txt").write_bytes(TXT_DATA)
    return run_client(
        [VENV_PYTHON, str(CLIENT), relay_module.dsn],
        {
            "E2E_RUN_ID": uuid.uuid4().hex[:12],
            "E2E_ATTACHMENT_BIN": str(d / "hello.bin"),
            "E2E_ATTACHMENT_TXT": str(d / "hello.txt"),
        },
    )


def test_sdk_got_event_ids(relay, sent):
    assert sent["sdk"] == "2.75.0"
    for k in ("message", "exception", "transaction", "attachments", "session_event"):
        assert isinstance(sent.get(k), str) and HEX32.match(sent[k]), (k, sent)


def test_message(relay, kafka, sent):
    m = one_event(kafka, sent["message"], "event", relay=relay)
    v = check_envelope_message(m, "event", sent["message"])
    ev = v["event"]
    assert sent["message_text"] in event_text(ev), ev
    assert ev["platform"] == "python"
    assert ev["level"] == "info"
    assert ev.get("release") == sent["release"]
    assert "payload" not in v and "payload_base64" not in v, "event items carry `event` only"
    assert v.get("attachments", []) == []


def test_exception(relay, kafka, sent):
    m = one_event(kafka, sent["exception"], "event", relay=relay)
    ev = check_envelope_message(m, "event", sent["exception"])["event"]
    values = exception_values(ev)
    assert any(x.get("type") == "ZeroDivisionError" for x in values), values
    zde = [x for x in values if x.get("type") == "ZeroDivisionError"][0]
    assert "division by zero" in (zde.get("value") or "")
    frames = (zde.get("stacktrace") or {}).get("frames") or []
    assert frames, f"stack trace lost: {zde}"
    assert ev["level"] == "error"


def test_transaction(relay, kafka, sent):
    m = one_event(kafka, sent["transaction"], "transaction", relay=relay)
    ev = check_envelope_message(m, "transaction", sent["transaction"])["event"]
    assert ev.get("transaction") == sent["transaction_name"], ev
    spans = ev.get("spans") or []
    assert any(s.get("op") == "db" and s.get("description") == "SELECT 1" for s in spans), spans
    assert (ev.get("contexts") or {}).get("trace", {}).get("trace_id"), ev.get("contexts")


def test_attachments(relay, kafka, sent):
    eid = sent["attachments"]
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    assert sent["attachment_text"] in event_text(v["event"])
    refs = {a["name"]: a for a in v.get("attachments") or []}
    assert set(refs) == {"hello.bin", "hello.txt"}, v.get("attachments")
    expected = {
        "hello.bin": (BIN_DATA, "application/octet-stream", 2),
        "hello.txt": (TXT_DATA, "text/plain", 1),
    }
    ids = set()
    for name, (data, ctype, chunks) in expected.items():
        ref = refs[name]
        assert HEX32.match(ref["id"]), ref
        ids.add(ref["id"])
        assert ref["size"] == len(data), ref
        assert ref["content_type"] == ctype, ref
        assert ref["attachment_type"] == "event.attachment", ref
        assert ref["chunks"] == chunks, ref
        got = collect_attachment(kafka, eid, ref, relay=relay)
        assert got == data, f"{name}: reassembled bytes differ ({len(got)} vs {len(data)})"
    assert len(ids) == 2, "attachment ids must be distinct"
    # Attachment items go to the attachments topic only, never as their own events message.
    stray = kafka.events.find(lambda k: k.value.get("event_id") == eid
                              and k.value.get("type") != "event")
    assert not stray, stray


def test_session(relay, kafka, sent):
    # The error captured inside the session is an ordinary event...
    m = one_event(kafka, sent["session_event"], "event", relay=relay)
    ev = check_envelope_message(m, "event", sent["session_event"])["event"]
    assert any(x.get("type") == "KeyError" for x in exception_values(ev))
    # ...and the session itself arrives as a `session` item (sentry-python 2.75.0 sends
    # application-mode sessions individually, not aggregated `sessions`).
    msgs = kafka.events.wait_for(
        lambda k: k.value.get("type") == "session"
        and k.value["payload"]["attrs"]["release"] == sent["release"],
        f"session for release {sent['release']}",
        on_timeout=relay.log,
    )
    v = check_envelope_message(msgs[0], "session", None)
    payload = v["payload"]
    assert "event" not in v
    if sent.get("session_sid"):
        assert payload["sid"] == sent["session_sid"], payload
    assert payload["errors"] >= 1, payload
    assert payload["status"] in ("exited", "errored", "ok"), payload


@pytest.mark.parametrize("compression", ["br", "none"])
def test_other_transport_compressions(relay, kafka, compression):
    """sentry-python with brotli installed sends Content-Encoding: br; `none` sends plain."""
    out = run_client([VENV_PYTHON, str(CLIENT), relay.dsn],
                     {"E2E_RUN_ID": uuid.uuid4().hex[:12], "E2E_SCENARIOS": "message",
                      "E2E_PY_COMPRESSION": compression})
    assert out["compression"] == compression
    m = one_event(kafka, out["message"], "event", relay=relay)
    ev = check_envelope_message(m, "event", out["message"])["event"]
    assert out["message_text"] in event_text(ev)
