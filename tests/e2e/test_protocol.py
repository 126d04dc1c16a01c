"""Intake protocol details with hand-made requests: auth variants, encodings, envelope framing,
unknown item types, the legacy store endpoint, and the Kafka message shape for each."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib

import brotli
import pytest
import requests
import zstandard

from e2e_lib import (
    PROJECT_ID,
    PUBLIC_KEY,
    assert_accepted,
    auth_header,
    check_envelope_message,
    collect_attachment,
    event_envelope,
    event_text,
    make_envelope,
    new_event_id,
    one_event,
    post_envelope,
    simple_event,
)


def envelope_url(relay, query: str = "") -> str:
    return relay.url(f"/api/{PROJECT_ID}/envelope/") + (f"?{query}" if query else "")


AUTH_VARIANTS = {
    "x_sentry_auth": lambda relay, body: requests.post(
        envelope_url(relay), data=body, headers=auth_header(), timeout=30),
    "authorization_header": lambda relay, body: requests.post(
        envelope_url(relay), data=body, timeout=30,
        headers={"Authorization": f"Sentry sentry_key={PUBLIC_KEY}, sentry_version=7"}),
    "query_string": lambda relay, body: requests.post(
        envelope_url(relay, f"sentry_key={PUBLIC_KEY}&sentry_version=7"), data=body, timeout=30),
}


@pytest.mark.parametrize("variant", list(AUTH_VARIANTS))
def test_auth_variants(relay, kafka, variant):
    eid = new_event_id()
    r = AUTH_VARIANTS[variant](relay, event_envelope(eid, f"auth {variant}"))
    assert_accepted(r, eid)
    check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)


def test_auth_by_envelope_dsn_header(relay, kafka):
    eid = new_event_id()
    payload = json.dumps(simple_event(eid, "dsn header auth")).encode()
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": eid, "dsn": relay.dsn})
    r = requests.post(envelope_url(relay), data=body, timeout=30)
    assert_accepted(r, eid)
    check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)


ENCODINGS = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # HTTP "deflate" is the zlib format
    "br": brotli.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_content_encodings(relay, kafka, encoding):
    eid = new_event_id()
    body = ENCODINGS[encoding](event_envelope(eid, f"encoded {encoding}"))
    headers = {} if encoding == "identity" else {"Content-Encoding": encoding}
    assert_accepted(post_envelope(relay, body, headers=headers), eid)
    v = check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
    assert f"encoded {encoding}" in event_text(v["event"])


def test_node_style_framing_chunked_no_length_no_trailing_newline(relay, kafka):
    """No Content-Type, chunked transfer, items without `length`, last item without newline."""
    eid = new_event_id()
    ev = json.dumps(simple_event(eid, "node framing")).encode()
    sess = json.dumps({"sid": uuid.uuid4().hex, "init": True, "status": "ok", "errors": 0,
                       "started": "2026-01-01T00:00:00Z", "timestamp": "2026-01-01T00:00:01Z",
                       "attrs": {"release": f"framing@{eid}"}}).encode()
    body = b"\n".join([json.dumps({"event_id": eid}).encode(),
                       b'{"type":"event"}', ev, b'{"type":"session"}', sess])

    def gen():  # a generator body makes requests send Transfer-Encoding: chunked
        for i in range(0, len(body), 100):
            yield body[i:i + 100]

    r = requests.post(envelope_url(relay, f"sentry_key={PUBLIC_KEY}&sentry_version=7"),
                      data=gen(), timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Type" not in r.request.headers
    assert_accepted(r, eid)
    check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
    s = kafka.events.wait_for(
        lambda k: k.value.get("type") == "session"
        and k.value["payload"]["attrs"]["release"] == f"framing@{eid}",
        "session item of the node-framed envelope", on_timeout=relay.log)
    check_envelope_message(s[0], "session", None)


def test_hyphenated_event_id_is_normalized(relay, kafka):
    u = uuid.uuid4()
    hyph, plain = str(u), u.hex
    payload = json.dumps(simple_event(hyph, "hyphenated id")).encode()
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)],
                         header={"event_id": hyph})
    r = post_envelope(relay, body)
    assert_accepted(r, plain)
    m = one_event(kafka, plain, relay=relay)
    check_envelope_message(m, "event", plain)
    assert m.key == plain


def test_unknown_item_types_pass_through(relay, kafka):
    eid = new_event_id()
    ev = json.dumps(simple_event(eid, "with unknown items")).encode()
    json_payload = json.dumps({"hello": "world", "n": 1}).encode()
    bin_payload = bytes(range(256)) + b"\n\x00binary"
    body = make_envelope([
        ({"type": "event", "length": len(ev)}, ev),
        ({"type": "made_up_json", "length": len(json_payload),
          "content_type": "application/json"}, json_payload),
        ({"type": "made_up_binary", "length": len(bin_payload),
          "content_type": "application/octet-stream", "custom": "x"}, bin_payload),
    ], header={"event_id": eid})
    assert_accepted(post_envelope(relay, body), eid)
    j = check_envelope_message(one_event(kafka, eid, "made_up_json", relay=relay),
                               "made_up_json", eid)
    assert j.get("payload") == {"hello": "world", "n": 1}, j
    b = check_envelope_message(one_event(kafka, eid, "made_up_binary", relay=relay),
                               "made_up_binary", eid)
    assert base64.b64decode(b["payload_base64"]) == bin_payload, b
    assert b["item_headers"].get("custom") == "x", b["item_headers"]
    check_envelope_message(one_event(kafka, eid, "event", relay=relay), "event", eid)


def test_attachment_with_explicit_type_and_empty_attachment(relay, kafka):
    eid = new_event_id()
    ev = json.dumps(simple_event(eid, "attachments by hand")).encode()
    view = b"<ViewHierarchy/>"
    body = make_envelope([
        ({"type": "event", "length": len(ev)}, ev),
        ({"type": "attachment", "length": len(view), "filename": "view.xml",
          "content_type": "application/xml", "attachment_type": "event.view_hierarchy"}, view),
        ({"type": "attachment", "length": 0, "filename": "empty.txt"}, b""),
    ], header={"event_id": eid})
    assert_accepted(post_envelope(relay, body), eid)
    v = check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
    refs = {a["name"]: a for a in v.get("attachments") or []}
    assert set(refs) == {"view.xml", "empty.txt"}, v.get("attachments")
    assert refs["view.xml"]["attachment_type"] == "event.view_hierarchy"
    assert refs["empty.txt"]["attachment_type"] == "event.attachment"  # the default
    assert refs["empty.txt"]["size"] == 0
    assert collect_attachment(kafka, eid, refs["view.xml"], relay=relay) == view
    assert collect_attachment(kafka, eid, refs["empty.txt"], relay=relay) == b""


def test_store_endpoint(relay, kafka):
    eid = new_event_id()
    ev = simple_event(eid, "legacy store", platform="javascript", level="warning")
    r = requests.post(relay.url(f"/api/{PROJECT_ID}/store/"), json=ev, headers=auth_header(),
                      timeout=30)
    assert_accepted(r, eid)
    v = check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
    assert v["event"]["platform"] == "javascript"
    assert v["event"]["level"] == "warning"
    assert "legacy store" in event_text(v["event"])


def test_event_without_id_gets_one(relay, kafka):
    ev = {"message": "no id given", "platform": "other"}
    payload = json.dumps(ev).encode()
    body = make_envelope([({"type": "event", "length": len(payload)}, payload)])
    r = post_envelope(relay, body)
    eid = assert_accepted(r)
    v = check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
    assert v["event"]["timestamp"], v["event"]
    assert v["event"]["level"] == "error", v["event"]  # default level
