"""A fleet of relays sharing quotas in Redis (issue 19, "Must show"): three real relays, one
real tansu broker (the session's), one Debian redis-server started here.

1. With `redis`: one project with a quota of 300 errors per 60 s, 1,500 events sent
   round-robin to the three relays: about 300 answered 200 in all, the rest 429 with
   `X-Sentry-Rate-Limits`; the outcomes on `relay.outcomes` add up to 1,500.
2. Without `redis`: the same traffic to three relays that count on their own lets each relay's
   own 300 (and what its limiter refills meanwhile) through: about three times as much.
3. Redis killed under load: no 5xx, every event answered 200 reaches Kafka, every relay says
   it counts locally (`relay_quota_fallback 1`, one log line); Redis restarted: every relay is
   back on Redis within 5 s and a fresh project is again limited to 300 across the fleet.
4. Redis slow (every client paused for longer than `redis.timeout_ms`): answers still come
   within the timeout and a little, all 200, the timeouts counted, and every relay back on
   Redis once it answers.
5. A key rolled out while events flow: each relay's file gets a new key in place of an old
   one and is reloaded (SIGHUP, or POST /api/relay/reload/ on the admin listener); the new
   key is accepted, the old one answered 401, the steady key's events all answered 200 and
   found in Kafka. A broken file on reload is refused and the config in force stays.

Each test uses its own project (its own Redis counters) with a fresh random key, so its
outcomes can be told apart from everything else on the session's broker.

Redis counts a window from the first unit taken (docs/rate-limits.md, "Redis"), so a test that
finishes within the 60 s sees exactly one window: the 285-315 bound holds the quota's 300
without slack for a minute boundary.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from e2e_lib import (
    Kafka,
    KMsg,
    RedisServer,
    Relay,
    event_envelope,
    free_port,
    new_event_id,
    relay_config_yaml,
    wait_until,
)

QUOTA = 300
EVENTS = 1_500
SENDERS = 12
# The projects of the tests, each with its own quota counters in Redis.
GLOBAL, LOCAL, OUTAGE, RESUMED, ROLLOUT, SLOW = 101, 102, 103, 104, 105, 106
KEYS = {project: uuid.uuid4().hex
        for project in (GLOBAL, LOCAL, OUTAGE, RESUMED, ROLLOUT, SLOW)}
CHECK_TIMEOUT_MS = 2000
# The rollout project's other keys: one removed by the reload, one added by it.
OLD_KEY, NEW_KEY = uuid.uuid4().hex, uuid.uuid4().hex
RESUME_WITHIN = 5.0


def fleet_yaml(redis_url: str | None) -> str:
    """The projects (appended to the projects list of relay_config_yaml), fast outcome flushes
    and, for a shared fleet, the `redis` section."""
    projects = "".join(
        f"  - id: {project}\n"
        f'    keys: ["{key}"]\n'
        "    quotas:\n"
        f"      - {{ id: errors, categories: [error], scope: project, limit: {QUOTA},"
        " window: 60, reason: fleet_quota }\n"
        for project, key in KEYS.items() if project != ROLLOUT
    )
    projects += f'  - id: {ROLLOUT}\n    keys: ["{KEYS[ROLLOUT]}", "{OLD_KEY}"]\n'
    # A generous per-check timeout: on a loaded CI machine a 100 ms check can time out and
    # count locally for a moment, which would blur the 300. A killed Redis fails at once.
    redis = (f'redis:\n  url: "{redis_url}"\n  timeout_ms: {CHECK_TIMEOUT_MS}\n'
             if redis_url else "")
    return projects + "outcomes:\n  flush_interval_secs: 1\n" + redis


def start_fleet(tmp_path_factory, tansu, name: str, redis_url: str | None) -> list[Relay]:
    """Three relays, each with an admin listener (`relay.admin`) and its extra config kept
    (`relay.extra`) to rewrite its file."""
    relays = []
    try:
        for i in range(3):
            workdir = tmp_path_factory.mktemp(f"fleet-{name}-{i}")
            admin_port = free_port()
            extra = fleet_yaml(redis_url) + f'admin:\n  listen: "127.0.0.1:{admin_port}"\n'
            relay = Relay(workdir, tansu.bootstrap, extra)
            relay.admin = f"http://127.0.0.1:{admin_port}"
            relay.extra = extra
            relays.append(relay.start())
    except BaseException:
        for relay in relays:
            relay.stop()
        raise
    return relays


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, tansu, redis_server):
    relays = start_fleet(tmp_path_factory, tansu, "redis", redis_server.url)
    yield relays
    for relay in relays:
        relay.stop()


class Sent:
    """Answers to events sent round-robin, by status; the event ids answered 200."""

    def __init__(self):
        self.statuses: Counter = Counter()
        self.accepted: list[str] = []
        self.per_relay: Counter = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def record(self, relay: Relay, event_id: str, resp: requests.Response) -> None:
        with self.lock:
            self.statuses[resp.status_code] += 1
            if resp.status_code == 200:
                self.accepted.append(event_id)
                self.per_relay[relay.port] += 1
            elif resp.status_code != 429 or "X-Sentry-Rate-Limits" not in resp.headers:
                self.failures.append(f"{resp.status_code} {dict(resp.headers)} {resp.text[:200]}")
            elif not re.match(r"^\d+:error:project:fleet_quota$",
                              resp.headers["X-Sentry-Rate-Limits"]):
                self.failures.append(f"header {resp.headers['X-Sentry-Rate-Limits']!r}")


def envelope_headers(key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/x-sentry-envelope",
        "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, "
                         "sentry_client=relay-e2e-fleet/1.0",
    }


def send_round_robin(relays: list[Relay], project: int, count: int, sent: Sent,
                     pause: float = 0.0) -> Sent:
    """Sends `count` events to `project`, event i to relay i % 3, from SENDERS threads; each
    thread pauses `pause` seconds between its events."""
    local = threading.local()
    headers = envelope_headers(KEYS[project])

    def send(i: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        relay = relays[i % len(relays)]
        event_id = new_event_id()
        body = event_envelope(event_id, f"fleet event {i}")
        try:
            resp = session.post(relay.url(f"/api/{project}/envelope/"), data=body,
                                headers=headers, timeout=30)
        except requests.RequestException as e:
            with sent.lock:
                sent.failures.append(f"request error: {e}")
            return
        sent.record(relay, event_id, resp)
        if pause:
            time.sleep(pause)

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, range(count)))
    return sent


def project_outcomes(kafka: Kafka, project: int) -> list[KMsg]:
    def mine(m: KMsg) -> bool:
        return m.value["key_id"] == KEYS[project] and m.value["category"] == "error"

    return kafka.reader("outcomes").find(mine)


def outcome_total(kafka: Kafka, project: int) -> Counter:
    """Error units per outcome for the project's key, summed over the fleet's relays (as
    docs/kafka.md tells consumers to)."""
    totals: Counter = Counter()
    for m in project_outcomes(kafka, project):
        totals[m.value["outcome"]] += m.value["quantity"]
    return totals


def wait_outcomes(kafka: Kafka, project: int, expected: int) -> Counter:
    reader = kafka.reader("outcomes")
    state = {}

    def complete():
        reader.poll(0.5)
        state["totals"] = outcome_total(kafka, project)
        return sum(state["totals"].values()) >= expected

    wait_until(complete, 60, f"error outcomes of project {project} adding up to {expected}",
               on_timeout=lambda: f"so far: {state.get('totals')}")
    # Anything more than expected would arrive with the next flushes.
    reader.poll(2.5)
    return outcome_total(kafka, project)


def metric(relay: Relay, name: str) -> float:
    text = requests.get(relay.url("/metrics"), timeout=5).text
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} missing from /metrics of {relay.base}"
    return total


def redis_errors(relay: Relay, reason: str) -> float:
    """relay_quota_redis_errors_total{reason=...}; 0 before the first such error."""
    prefix = f'relay_quota_redis_errors_total{{reason="{reason}"}} '
    text = requests.get(relay.url("/metrics"), timeout=5).text
    return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))


def fleet_logs(relays: list[Relay]) -> str:
    return "\n\n".join(f"--- relay {r.base}\n{r.log()[-4000:]}" for r in relays)


def test_fleet_shares_one_quota(fleet, kafka):
    sent = send_round_robin(fleet, GLOBAL, EVENTS, Sent())
    assert not sent.failures, sent.failures[:5]
    accepted = sent.statuses[200]
    assert 285 <= accepted <= 315, f"{sent.statuses}, per relay {sent.per_relay}"
    assert sent.statuses[429] == EVENTS - accepted, sent.statuses
    assert len(sent.per_relay) == 3, f"every relay accepted some: {sent.per_relay}"

    totals = wait_outcomes(kafka, GLOBAL, EVENTS)
    assert totals["rate_limited"] == EVENTS - accepted, totals
    assert sum(totals.values()) == EVENTS, totals
    # Each relay's share is told apart by its instance id (default: hostname:port).
    instances = {m.value["instance_id"] for m in project_outcomes(kafka, GLOBAL)}
    ports = {int(i.rsplit(":", 1)[1]) for i in instances}
    assert ports == {r.port for r in fleet}, instances
    for relay in fleet:
        assert metric(relay, "relay_quota_fallback") == 0, fleet_logs(fleet)


def test_without_redis_each_relay_counts_alone(tmp_path_factory, tansu, kafka):
    relays = start_fleet(tmp_path_factory, tansu, "local", None)
    try:
        sent = send_round_robin(relays, LOCAL, EVENTS, Sent())
    finally:
        for relay in relays:
            relay.stop()
    assert not sent.failures, sent.failures[:5]
    # Each relay's governor lets its own 300 through (plus one unit per 200 ms it refills
    # while the test runs): three times what the shared quota allows.
    for relay in relays:
        assert sent.per_relay[relay.port] >= 285, sent.per_relay
    assert sent.statuses[200] >= 3 * 285, f"{sent.statuses} vs about {QUOTA} with Redis"
    totals = wait_outcomes(kafka, LOCAL, EVENTS)
    assert sum(totals.values()) == EVENTS, totals


def test_redis_outage_falls_back_and_resumes(fleet, redis_server, kafka):
    sent = Sent()
    # ~600 events over several seconds; Redis is killed while they flow.
    sender = threading.Thread(
        target=send_round_robin, args=(fleet, OUTAGE, 600, sent, 0.1), daemon=True)
    sender.start()
    wait_until(lambda: sum(sent.statuses.values()) >= 150, 30, "the first 150 answers")
    logs_before = [len(relay.proc.log_path.read_text()) for relay in fleet]
    redis_server.kill()
    wait_until(lambda: all(metric(r, "relay_quota_fallback") == 1 for r in fleet), 10,
               "every relay reporting the fallback", on_timeout=lambda: fleet_logs(fleet))
    for relay in fleet:
        ready = requests.get(relay.url("/healthz/ready"), timeout=5)
        assert ready.status_code == 200, f"readiness stays true without Redis: {ready.text}"
    sender.join(120)
    assert not sender.is_alive()
    assert not sent.failures, sent.failures[:5]
    assert not [s for s in sent.statuses if s >= 500], sent.statuses
    assert sent.statuses[200] >= 1, sent.statuses

    # Every event answered 200 reaches Kafka.
    accepted = set(sent.accepted)
    events = kafka.events
    events.wait_for(lambda m: m.key in accepted, f"{len(accepted)} accepted events",
                    count=len(accepted), timeout=90)
    found = {m.key for m in events.find(lambda m: m.key in accepted)}
    assert found == accepted, f"lost: {sorted(accepted - found)[:5]}"

    for relay, before in zip(fleet, logs_before):
        since_kill = relay.proc.log_path.read_text()[before:]
        warnings = since_kill.count("Redis quota check failed")
        assert warnings == 1, f"logged once per outage, not {warnings}\n{since_kill[-3000:]}"

    redis_server.start()
    restarted = time.monotonic()
    wait_until(lambda: all(metric(r, "relay_quota_fallback") == 0 for r in fleet),
               RESUME_WITHIN, "every relay back on Redis", on_timeout=lambda: fleet_logs(fleet))
    back_after = time.monotonic() - restarted
    assert back_after <= RESUME_WITHIN

    # Global again: a fresh project's quota holds across the three relays.
    resumed = send_round_robin(fleet, RESUMED, 600, Sent())
    assert not resumed.failures, resumed.failures[:5]
    assert 285 <= resumed.statuses[200] <= 315, f"{resumed.statuses} {resumed.per_relay}"


def test_slow_redis_times_out_to_local_and_returns(fleet, redis_server):
    send_round_robin(fleet, SLOW, 30, Sent())  # connections and script in place
    timeouts_before = [redis_errors(r, "timeout") for r in fleet]
    pause_ms = CHECK_TIMEOUT_MS + 1500
    subprocess.run(["redis-cli", "-p", str(redis_server.port), "CLIENT", "PAUSE",
                    str(pause_ms)], check=True, capture_output=True, timeout=10)
    paused = time.monotonic()

    latencies, sent = [], Sent()

    def timed(i: int) -> None:
        started = time.monotonic()
        send_round_robin(fleet[i:i + 1], SLOW, 1, sent)
        latencies.append(time.monotonic() - started)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(timed, [i % 3 for i in range(12)]))
    assert time.monotonic() - paused < pause_ms / 1000, "the checks ended during the pause"
    assert not sent.failures, sent.failures[:5]
    assert sent.statuses == Counter({200: 12}), sent.statuses
    # Each waited for its check's timeout at most, not for Redis (generous slack for CI).
    assert max(latencies) < CHECK_TIMEOUT_MS / 1000 + 1.5, latencies
    for relay, before in zip(fleet, timeouts_before):
        assert redis_errors(relay, "timeout") > before, fleet_logs(fleet)
    wait_until(lambda: all(metric(r, "relay_quota_fallback") == 0 for r in fleet), 15,
               "every relay back on Redis after the pause", on_timeout=lambda: fleet_logs(fleet))


def post_with_key(relay: Relay, key: str) -> requests.Response:
    event_id = new_event_id()
    return requests.post(relay.url(f"/api/{ROLLOUT}/envelope/"),
                         data=event_envelope(event_id, "rollout probe"),
                         headers=envelope_headers(key), timeout=10)


def rewrite_config(relay: Relay, tansu, extra: str) -> None:
    relay.config_path.write_text(relay_config_yaml(relay.port, relay.data_dir, tansu.bootstrap,
                                                   extra))


def reload_by_signal(relay: Relay) -> None:
    os.kill(relay.proc.pid, signal.SIGHUP)


def reload_by_request(relay: Relay) -> requests.Response:
    return requests.post(relay.admin + "/api/relay/reload/", timeout=10)


def test_reload_rolls_out_a_key_while_events_flow(fleet, tansu, kafka):
    for relay in fleet:
        assert post_with_key(relay, OLD_KEY).status_code == 200
        assert post_with_key(relay, NEW_KEY).status_code == 401

    # The steady key's events flow through every reload: all must be answered 200.
    sent, stop = Sent(), threading.Event()

    def steady():
        while not stop.is_set():
            send_round_robin(fleet, ROLLOUT, 30, sent, pause=0.02)

    sender = threading.Thread(target=steady, daemon=True)
    sender.start()
    try:
        for i, relay in enumerate(fleet):
            rewrite_config(relay, tansu, relay.extra.replace(OLD_KEY, NEW_KEY))
            if i == 1:
                answer = reload_by_request(relay)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"reloaded": True, "not_applied": []}, answer.text
            else:
                reload_by_signal(relay)
            wait_until(lambda: post_with_key(relay, NEW_KEY).status_code == 200, 5,
                       f"the new key accepted by {relay.base}", on_timeout=relay.log)
            refused = post_with_key(relay, OLD_KEY)
            assert refused.status_code == 401, refused.text
            assert refused.json()["detail"], refused.text

        # A broken file is refused, over either way in; the config in force stays.
        for relay in fleet[:2]:
            rewrite_config(relay, tansu, "  - id: not-a-number\n" + relay.extra)
        answer = reload_by_request(fleet[0])
        assert answer.status_code == 400, answer.text
        assert "projects" in answer.json()["detail"], answer.text
        reload_by_signal(fleet[1])
        wait_until(lambda: "configuration reload refused" in fleet[1].log(), 5,
                   "the refused SIGHUP reload logged", on_timeout=fleet[1].log)
        for relay in fleet:
            assert post_with_key(relay, NEW_KEY).status_code == 200
            assert post_with_key(relay, OLD_KEY).status_code == 401
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(30)

    assert not sent.failures, sent.failures[:5]
    assert set(sent.statuses) == {200}, sent.statuses
    assert len(sent.accepted) >= 90, sent.statuses
    accepted = set(sent.accepted)
    kafka.events.wait_for(lambda m: m.key in accepted, f"{len(accepted)} steady events",
                          count=len(accepted), timeout=90)
