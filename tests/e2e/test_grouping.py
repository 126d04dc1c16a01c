"""Issue 7 end to end: grouping into issues, windowed aggregates, inbound filters, PII.

The real sentry-python SDK (tests/clients/python_grouping_client.py) sends, to a project of
its own (so outcomes and aggregates of other tests cannot mix in):

  10 x ZeroDivisionError in compute_ratio(), called from three different lines
  10 x KeyError in lookup_account(), each with another missing key (other exception values)
  10 x capture_message(f"grouping e2e: user {i} logged in")
(interleaved, one of each per round, pausing 1.5 s after every third round), and then
   1 x a message with user.ip_address 127.0.0.1        (project filter `localhost: true`)
   1 x a ValueError whose frame holds `password` = a secret generated at run time
       (include_local_variables; the SDK's own scrubber disabled, so the relay must do it)

Must show: exactly 3 group ids on the 30 event messages (one per kind); issue aggregates on
relay.issues whose counts per group add up to 10/10/10 across windows (2 s windows here); the
localhost event gives a `filtered` outcome with reason `localhost` and no event; the secret is
in no message of any topic (raw bytes searched).
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from e2e_lib import (
    HEX32,
    REPO_ROOT,
    VENV_PYTHON,
    KMsg,
    Relay,
    event_text,
    exception_values,
    run_client,
)

CLIENT = REPO_ROOT / "tests" / "clients" / "python_grouping_client.py"

GROUP_PROJECT = 4207
GROUP_KEY = "4207e2e0" * 4
WINDOW_SECS = 2
PACE_SECS = 1.5  # the client pauses 3 times: each kind's events span > 2 x WINDOW_SECS
PER_KIND = 10
KINDS = ("zero_division", "key_error", "message")


@pytest.fixture(scope="module")
def relay_module(tansu, tmp_path_factory):
    """Overrides conftest's relay_module: the usual project 42, plus this test's project with
    the localhost filter and PII scrubbing (on by default; stated for clarity), 2 s issue
    windows and outcomes flushed every second."""
    extra = (
        f"  - id: {GROUP_PROJECT}\n"
        f'    keys: ["{GROUP_KEY}"]\n'
        "    filters: {localhost: true}\n"
        "    pii: {enabled: true, sensitive_keys: true}\n"
        "processing:\n"
        f"  aggregator: {{window_secs: {WINDOW_SECS}}}\n"
        "outcomes:\n"
        "  flush_interval_secs: 1\n"
    )
    relay = Relay(tmp_path_factory.mktemp("relay-grouping"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


def project_dsn(relay: Relay) -> str:
    return f"http://{GROUP_KEY}@127.0.0.1:{relay.port}/{GROUP_PROJECT}"


@pytest.fixture(scope="module")
def sent(relay_module):
    out = run_client([VENV_PYTHON, str(CLIENT), project_dsn(relay_module)],
                     {"E2E_RUN_ID": uuid.uuid4().hex[:12], "E2E_PER_KIND": str(PER_KIND),
                      "E2E_PACE_SECS": str(PACE_SECS)})
    assert out["sdk"] == "2.75.0", out["sdk"]
    for kind in KINDS:
        ids = out["ids"][kind]
        assert len(ids) == PER_KIND and all(isinstance(i, str) and HEX32.match(i) for i in ids), \
            (kind, ids)
    assert len({i for k in KINDS for i in out["ids"][k]}) == 3 * PER_KIND
    return out


def _eid(m: KMsg):
    v = m.value
    return v.get("event_id") if isinstance(v, dict) else None


@pytest.fixture(scope="module")
def event_msgs(sent, relay_module, kafka):
    """The event message of each of the 30 events + the password event, by event id."""
    wanted = {i for k in KINDS for i in sent["ids"][k]} | {sent["password_event"]}
    reader = kafka.events
    reader.wait_for(
        lambda m: _eid(m) in wanted and m.value.get("type") == "event",
        f"{len(wanted)} grouping events", count=len(wanted), timeout=120,
        on_timeout=lambda: "relay log:\n" + relay_module.log(),
    )
    by_id: dict[str, KMsg] = {}
    for m in reader.find(lambda m: _eid(m) in wanted and m.value.get("type") == "event"):
        by_id.setdefault(_eid(m), m)  # at-least-once: a duplicate would carry the same content
    assert set(by_id) == wanted
    return by_id


def groups_by_kind(sent, event_msgs) -> dict[str, str]:
    out = {}
    for kind in KINDS:
        gids = {event_msgs[i].value.get("group_id") for i in sent["ids"][kind]}
        assert len(gids) == 1, f"{kind}: the {PER_KIND} events got {len(gids)} group ids: {gids}"
        gid = gids.pop()
        assert isinstance(gid, str) and HEX32.match(gid), (kind, gid)
        out[kind] = gid
    return out


def test_thirty_events_three_group_ids(relay, sent, event_msgs):
    for kind in KINDS:
        for eid in sent["ids"][kind]:
            v = event_msgs[eid].value
            assert v["project_id"] == GROUP_PROJECT, v
            assert v["public_key"] == GROUP_KEY, v
            ev = v["event"]
            assert ev["platform"] == "python"
            assert ev.get("release") == sent["release"]
            if kind == "message":
                assert event_text(ev).startswith("grouping e2e: user "), ev
                assert not exception_values(ev), ev
            else:
                exc = exception_values(ev)
                assert exc and exc[-1]["type"] == {"zero_division": "ZeroDivisionError",
                                                   "key_error": "KeyError"}[kind], exc
    # the three kinds really varied where grouping must not look: lines and values
    lines = set()
    for eid in sent["ids"]["zero_division"]:
        frames = exception_values(event_msgs[eid].value["event"])[-1]["stacktrace"]["frames"]
        case = [f for f in frames if f.get("function") == "zero_division_case"]
        assert case, frames
        lines.add(case[-1]["lineno"])
    assert len(lines) == 3, f"ZeroDivisionError call lines: {lines}"
    values = {exception_values(event_msgs[e].value["event"])[-1].get("value")
              for e in sent["ids"]["key_error"]}
    assert len(values) == PER_KIND, values

    groups = groups_by_kind(sent, event_msgs)
    assert len(set(groups.values())) == 3, groups
    pw_group = event_msgs[sent["password_event"]].value.get("group_id")
    assert HEX32.match(pw_group) and pw_group not in groups.values(), (pw_group, groups)


def test_issue_aggregates_add_up_to_10_10_10(relay, kafka, sent, event_msgs):
    groups = groups_by_kind(sent, event_msgs)
    pw_group = event_msgs[sent["password_event"]].value["group_id"]
    expected = {groups[k]: PER_KIND for k in KINDS}
    expected[pw_group] = 1
    issues = kafka.reader("issues")

    def ours(m: KMsg) -> bool:
        return isinstance(m.value, dict) and m.value.get("project_id") == GROUP_PROJECT

    def totals() -> dict[str, int]:
        t: dict[str, int] = {}
        for m in issues.find(ours):
            t[m.value["group_id"]] = t.get(m.value["group_id"], 0) + m.value["count"]
        return t

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        issues.poll(0.5)
        if all(totals().get(g, 0) >= n for g, n in expected.items()):
            break
    # let any late window close and arrive: a duplicate count would show up now
    end = time.monotonic() + 3 * WINDOW_SECS + 2
    while time.monotonic() < end:
        issues.poll(0.5)
    msgs = issues.find(ours)
    assert totals() == expected, (
        f"issue counts per group {totals()} != {expected} (kinds: {groups}, password: "
        f"{pw_group})\nmessages:\n" + "\n".join(repr(m) for m in msgs)
        + "\nrelay log:\n" + relay.log())

    by_group: dict[str, list[dict]] = {}
    for m in msgs:
        assert m.key == m.value["group_id"], f"issues are keyed by group id: {m}"
        by_group.setdefault(m.value["group_id"], []).append(m.value)
    all_windows = [v for vs in by_group.values() for v in vs]
    for v in all_windows:
        assert v["window_end"] - v["window_start"] == pytest.approx(WINDOW_SECS), v
        assert v["window_start"] % WINDOW_SECS == pytest.approx(0, abs=1e-6), v
        assert v["count"] >= 1 and v["first_seen"] <= v["last_seen"], v
    # at most one message per group and window
    keys = [(v["group_id"], v["window_start"]) for v in all_windows]
    assert len(keys) == len(set(keys)), keys
    # the client paused 3 x PACE_SECS > WINDOW_SECS: every kind spans at least two windows,
    # so the 10s above are sums across windows
    for kind in KINDS:
        assert len(by_group[groups[kind]]) >= 2, (kind, by_group[groups[kind]])

    def first(kind: str) -> dict:
        return min(by_group[groups[kind]], key=lambda v: v["window_start"])

    zd, ke, msg = first("zero_division"), first("key_error"), first("message")
    assert zd["title"] == "ZeroDivisionError: division by zero", zd
    assert "compute_ratio" in zd["culprit"], zd
    assert ke["title"].startswith("KeyError: "), ke
    assert "lookup_account" in ke["culprit"], ke
    assert re.fullmatch(r"grouping e2e: user \d+ logged in", msg["title"]), msg
    for kind, v in (("zero_division", zd), ("key_error", ke)):
        assert v["level"] == "error" and v["platform"] == "python", v
        assert v["sample_event_id"] in sent["ids"][kind], v
    assert msg["level"] == "info" and msg["sample_event_id"] in sent["ids"]["message"], msg
    for kind in KINDS:
        ids = sent["ids"][kind]
        for v in by_group[groups[kind]]:
            assert v["sample_event_id"] in ids, (kind, v)


def test_localhost_event_filtered_with_outcome_and_not_published(relay, kafka, sent, event_msgs):
    eid = sent["localhost"]
    assert HEX32.match(eid), sent
    outcomes = kafka.reader("outcomes")

    def filtered(m: KMsg) -> bool:
        v = m.value
        return (isinstance(v, dict) and v.get("project_id") == GROUP_PROJECT
                and v.get("outcome") == "filtered")

    outcomes.wait_for(filtered, "a filtered outcome for the grouping project", timeout=60,
                      settle=3, on_timeout=lambda: "relay log:\n" + relay.log())
    msgs = outcomes.find(filtered)
    assert all(m.value.get("reason") == "localhost" for m in msgs), msgs
    assert sum(m.value["quantity"] for m in msgs) == 1, msgs
    for m in msgs:
        v = m.value
        assert v["key_id"] == GROUP_KEY and v["category"] == "error", m
        assert v["version"] == 1, m

    # Everything sent after it (the password event) is already on the topic; keep reading a
    # little longer anyway: the filtered event must not be anywhere on relay.events.
    end = time.monotonic() + 3
    while time.monotonic() < end:
        kafka.events.poll(0.5)
    leaked = kafka.events.find(lambda m: _eid(m) == eid)
    assert not leaked, leaked
    raw = [m for m in kafka.events.messages if eid.encode() in m.raw]
    assert not raw, raw
    # and the 30 were not caught by the filter (no user IP: nothing to filter)
    assert len(event_msgs) == 3 * PER_KIND + 1


def test_password_in_frame_vars_never_reaches_kafka(relay, kafka, sent, event_msgs):
    secret = sent["secret"]
    assert isinstance(secret, str) and secret.startswith("pw-") and len(secret) == 35, sent
    # the SDK really sent it (its own scrubber was disabled)
    assert secret in (sent["password_var_sent"] or ""), sent

    m = event_msgs[sent["password_event"]]
    exc = exception_values(m.value["event"])
    assert exc and exc[-1]["type"] == "ValueError", exc
    frames = exc[-1]["stacktrace"]["frames"]
    auth = [f for f in frames if f.get("function") == "authenticate"]
    assert auth, frames
    vars_ = auth[-1].get("vars") or {}
    assert vars_.get("password") == "[Filtered]", vars_
    assert "alice" in str(vars_.get("username")), vars_  # not a key that names a secret

    # every message the relay wrote, on every topic, as raw bytes
    readers = [kafka.reader(k) for k in ("events", "attachments", "outcomes", "issues")]
    end = time.monotonic() + 3
    while time.monotonic() < end:
        for r in readers:
            r.poll(0.25)
    total = 0
    needle = secret.encode()
    for r in readers:
        for msg in r.messages:
            total += 1
            assert needle not in msg.raw, f"the secret reached Kafka: {msg!r}"
            assert msg.key is None or secret not in msg.key, msg
    assert total > 3 * PER_KIND, total
    assert secret not in relay.log(), "the secret is in the relay's log"
