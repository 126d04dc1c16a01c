"""`relay run` with no configuration file: it makes a data directory and a default project,
prints the project's DSN, and (no brokers configured) starts an embedded Kafka-protocol broker
whose address it prints, so any Kafka client can consume. The listen address and data dir are
given as flags only to stay off the fixed default port 3000. A SIGTERM stops it cleanly: exit
code 0, no broker-down errors, and its log (a file) has no colour codes."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

import requests

from e2e_lib import (
    HEX32,
    RELAY_BIN,
    Proc,
    TopicReader,
    describe,
    event_envelope,
    free_port,
    new_event_id,
    wait_until,
)

DSN_RE = re.compile(r"DSN:\s*(http://\S+)")
BROKER_RE = re.compile(r"embedded broker at\s+([0-9.]+:\d+)")


def start(tmp_path, port):
    # NO_COLOR left out on purpose: a log that is not a terminal gets no colour codes anyway.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RELAY_") and k != "NO_COLOR"}
    proc = Proc("relay", [str(RELAY_BIN), "run", "--listen", f"127.0.0.1:{port}",
                          "--data-dir", str(tmp_path / "data")],
                tmp_path / "relay.log", env=env).start()
    base = f"http://127.0.0.1:{port}"

    def ready():
        if not proc.alive():
            raise AssertionError(f"relay exited {proc.popen.returncode}:\n{proc.log()}")
        try:
            return requests.get(base + "/healthz/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, 60, "zero-config relay ready", interval=0.2, on_timeout=proc.log)
    text = wait_until(lambda: DSN_RE.search(proc.log()) and BROKER_RE.search(proc.log())
                      and proc.log(), 10, "DSN and broker address in relay output",
                      on_timeout=proc.log)
    return proc, base, DSN_RE.search(text).group(1), BROKER_RE.search(text).group(1)


def test_zero_config_run_with_embedded_broker(tmp_path):
    port = free_port()
    proc, base, dsn, broker = start(tmp_path, port)
    reader = None
    try:
        u = urlparse(dsn)
        assert u.hostname == "127.0.0.1" and u.port == port, dsn
        assert HEX32.match(u.username or ""), dsn
        project = u.path.strip("/")
        assert project.isdigit(), dsn
        assert (tmp_path / "data").is_dir()

        eid = new_event_id()
        r = requests.post(f"{base}/api/{project}/envelope/?sentry_key={u.username}",
                          data=event_envelope(eid, "zero config"), timeout=30)
        assert r.status_code == 200, describe(r)
        assert r.json()["id"] == eid

        reader = TopicReader(broker, "relay.events", partitions=None)
        msgs = reader.wait_for(lambda m: m.value.get("event_id") == eid,
                               f"event {eid} on the embedded broker", on_timeout=proc.log)
        assert msgs[0].value["type"] == "event"
        assert msgs[0].value["project_id"] == int(project)
    finally:
        if reader:
            reader.close()
        rc = proc.stop()

    # SIGTERM: a clean stop, and the embedded broker outlives the producer, so nothing reports
    # it down. The log went to a file: no colour codes.
    log = proc.log_path.read_bytes()
    assert rc == 0, proc.log()
    assert b"\x1b" not in log, proc.log()
    for down in (b"AllBrokersDown", b"brokers are down", b"Kafka brokers unreachable"):
        assert down not in log, proc.log()

    # The default project (and so the DSN) survives a restart on the same data dir.
    proc2, _, dsn2, _ = start(tmp_path, port)
    try:
        assert dsn2 == dsn, (dsn, dsn2)
    finally:
        proc2.stop()
