"""The real @sentry/node SDK sends to relay; everything it sent must come out of Kafka.

@sentry/node 11.12.0 sends chunked bodies with no Content-Type, authenticates in the query
string, gzips only bodies above 32 KiB (our 1 MiB attachment envelope is gzipped), often omits
item `length`, and leaves the last item without a trailing newline.

tests/clients/node_client.js runs twice:
  static  traceLifecycle 'static': message, exception, transaction, attachments, session
  stream  the SDK default: a span tree goes out as ONE `span` item (span v2 JSON, item_count)
"""

from __future__ import annotations

import uuid

import pytest

from e2e_lib import (
    CHUNK_SIZE,
    HEX32,
    REPO_ROOT,
    check_envelope_message,
    collect_attachment,
    deterministic_bytes,
    event_text,
    exception_values,
    one_event,
    run_client,
    which,
)

CLIENT = REPO_ROOT / "tests" / "clients" / "node_client.js"

BIN_DATA = deterministic_bytes(CHUNK_SIZE + 777, seed=2)
TXT_DATA = ("hello from the node e2e client \u00e9\n" * 10).encode("utf-8")


@pytest.fixture(scope="module")
def node_bin():
    if not (REPO_ROOT / "tests" / "node" / "node_modules" / "@sentry" / "node").is_dir():
        pytest.fail("tests/node/node_modules is missing: run scripts/test.sh (npm ci)")
    return which("node")


@pytest.fixture(scope="module")
def sent(relay_module, node_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("node-client")
    (d / "hello.bin").write_bytes(BIN_DATA)
    (d / "hello.txt").write_bytes(TXT_DATA)
    return run_client(
        [node_bin, str(CLIENT), relay_module.dsn, "static"],
        {
            "E2E_RUN_ID": uuid.uuid4().hex[:12],
            "E2E_ATTACHMENT_BIN": str(d / "hello.bin"),
            "E2E_ATTACHMENT_TXT": str(d / "hello.txt"),
        },
    )


@pytest.fixture(scope="module")
def sent_stream(relay_module, node_bin):
    return run_client([node_bin, str(CLIENT), relay_module.dsn, "stream"],
                      {"E2E_RUN_ID": uuid.uuid4().hex[:12]})


def test_sdk_got_event_ids(relay, sent):
    assert sent["sdk"] == "11.12.0"
    for k in ("message", "exception", "transaction", "attachments"):
        assert isinstance(sent.get(k), str) and HEX32.match(sent[k]), (k, sent)


def test_message(relay, kafka, sent):
    m = one_event(kafka, sent["message"], "event", relay=relay)
    ev = check_envelope_message(m, "event", sent["message"])["event"]
    # node puts the text in `message` and (attachStacktrace) a synthetic exception without type
    assert sent["message_text"] in event_text(ev) or any(
        sent["message_text"] in (x.get("value") or "") for x in exception_values(ev)), ev
    assert ev["platform"] == "node"
    assert ev["level"] == "info"
    assert ev.get("release") == sent["release"]


def test_exception(relay, kafka, sent):
    m = one_event(kafka, sent["exception"], "event", relay=relay)
    ev = check_envelope_message(m, "event", sent["exception"])["event"]
    values = exception_values(ev)
    matching = [x for x in values if x.get("type") == "E2ENodeError"]
    assert matching, values
    assert matching[0].get("value") == sent["exception_value"]
    frames = (matching[0].get("stacktrace") or {}).get("frames") or []
    assert any("node_client.js" in (f.get("filename") or f.get("abs_path") or "")
               for f in frames), frames
    assert ev["level"] == "error"


def test_transaction(relay, kafka, sent):
    m = one_event(kafka, sent["transaction"], "transaction", relay=relay)
    ev = check_envelope_message(m, "transaction", sent["transaction"])["event"]
    assert ev.get("transaction") == sent["transaction_name"]
    spans = ev.get("spans") or []
    assert any(s.get("op") == "db" and s.get("description") == "SELECT 1" for s in spans), spans


def test_attachments(relay, kafka, sent):
    eid = sent["attachments"]
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    refs = {a["name"]: a for a in v.get("attachments") or []}
    assert set(refs) == {"hello.bin", "hello.txt"}, v.get("attachments")
    for name, data, ctype, chunks in (
        ("hello.bin", BIN_DATA, "application/octet-stream", 2),
        ("hello.txt", TXT_DATA, "text/plain", 1),
    ):
        ref = refs[name]
        assert ref["size"] == len(data), ref
        assert ref["content_type"] == ctype, ref
        assert ref["attachment_type"] == "event.attachment", ref
        assert ref["chunks"] == chunks, ref
        assert collect_attachment(kafka, eid, ref, relay=relay) == data, name


def test_session(relay, kafka, sent):
    msgs = kafka.events.wait_for(
        lambda k: k.value.get("type") == "session"
        and k.value["payload"]["attrs"]["release"] == sent["release"],
        f"session for release {sent['release']}",
        on_timeout=relay.log,
    )
    v = check_envelope_message(msgs[0], "session", None)
    assert HEX32.match(v["payload"]["sid"]), v["payload"]
    # node sends the session update when the first error happens: errors >= 1
    assert max(k.value["payload"]["errors"] for k in msgs) >= 1


def test_span_stream(relay, kafka, sent_stream):
    def is_ours(k):
        p = k.value["payload"]
        return k.value.get("type") == "span" and any(
            s.get("span_id") == sent_stream["segment_span_id"] for s in p["items"])

    msgs = kafka.events.wait_for(is_ours, f"span item of trace {sent_stream['trace_id']}",
                                 on_timeout=relay.log)
    v = check_envelope_message(msgs[0], "span", None)
    items = v["payload"]["items"]
    by_id = {s["span_id"]: s for s in items}
    assert sent_stream["child_span_id"] in by_id, items
    assert by_id[sent_stream["segment_span_id"]]["name"] == sent_stream["span_name"]
    assert all(s["trace_id"] == sent_stream["trace_id"] for s in items)
    assert v["item_headers"].get("item_count") == len(items), v["item_headers"]
    assert v["item_headers"].get("content_type") == "application/vnd.sentry.items.span.v2+json"
    assert "event" not in v
