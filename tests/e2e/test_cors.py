"""CORS as a browser SDK on another origin meets it: the preflight, then the POST, both read
through `requests` (no browser): the headers a browser checks, and the event in Kafka."""

from __future__ import annotations

import pytest
import requests

from e2e_lib import (
    PROJECT_ID,
    Relay,
    assert_accepted,
    assert_detail,
    check_envelope_message,
    event_envelope,
    new_event_id,
    one_event,
    post_envelope,
)

ORIGIN = "https://app.example.com"
EXPOSED = "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After"


@pytest.fixture(scope="module")
def relay(tansu, tmp_path_factory):
    """Project 42 allows browsers from ORIGIN and from subdomains of example.org only."""
    extra = f'    allowed_origins: ["{ORIGIN}", "*.example.org"]\n'
    relay = Relay(tmp_path_factory.mktemp("relay-cors"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


def assert_cors(resp: requests.Response, origin: str) -> None:
    assert resp.headers.get("Access-Control-Allow-Origin") == origin, resp.headers
    assert resp.headers.get("Access-Control-Expose-Headers") == EXPOSED, resp.headers
    assert resp.headers.get("Vary") == "Origin", resp.headers


def test_preflight_then_post_reaches_kafka(relay, kafka):
    url = relay.url(f"/api/{PROJECT_ID}/envelope/")
    pre = requests.options(url, timeout=30, headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-sentry-auth, sentry-trace, baggage",
    })
    assert pre.status_code == 200, pre.text
    assert_cors(pre, ORIGIN)
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"]
    for name in ("content-type", "x-sentry-auth", "sentry-trace", "baggage",
                 "authorization", "content-encoding"):
        assert name in allowed, allowed
    assert pre.headers["Access-Control-Max-Age"] == "3600"

    eid = new_event_id()
    r = post_envelope(relay, event_envelope(eid, "from a browser"), headers={"Origin": ORIGIN})
    assert_accepted(r, eid)
    assert_cors(r, ORIGIN)
    check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)


def test_refusals_are_readable_and_other_origins_get_403(relay, kafka):
    # A 401 (no key) from an allowed origin: the browser may read it.
    r = requests.post(relay.url(f"/api/{PROJECT_ID}/store/"), data=b"{}", timeout=30,
                      headers={"Origin": "https://shop.example.org"})
    assert_detail(r, [401])
    assert_cors(r, "https://shop.example.org")

    r = post_envelope(relay, event_envelope(new_event_id(), "evil"),
                      headers={"Origin": "https://evil.test"})
    detail = assert_detail(r, [403])
    assert detail == f"origin https://evil.test is not allowed for project {PROJECT_ID}"
    assert_cors(r, "https://evil.test")

    # Server SDKs send no Origin and are never refused by allowed_origins.
    eid = new_event_id()
    r = post_envelope(relay, event_envelope(eid, "from a server"))
    assert_accepted(r, eid)
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    check_envelope_message(one_event(kafka, eid, relay=relay), "event", eid)
