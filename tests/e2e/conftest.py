"""Fixtures: a real tansu broker (per session), a real relay binary (per module), Kafka readers.

Paths come from the environment (scripts/test.sh sets them):
  RELAY_BIN     the relay binary (default $CARGO_TARGET_DIR/debug/relay)
  TANSU_BIN     the tansu broker (default ~/.cache/relay-ci/tansu/bin/tansu)
The data files (dumps, symbols, source maps, SDK captures) are the repository's tests/fixtures.
"""

from __future__ import annotations

import json
import os

import pytest

from e2e_lib import TOPICS, Kafka, Relay, Tansu


@pytest.fixture(scope="session")
def tansu(tmp_path_factory):
    broker = Tansu(tmp_path_factory.mktemp("tansu")).start()
    try:
        for topic in TOPICS.values():
            broker.create_topic(topic)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka(tansu):
    k = Kafka(tansu.bootstrap)
    yield k
    dump = os.environ.get("E2E_DUMP_KAFKA")
    if dump:  # debugging aid: every message the tests read, one JSON line each
        with open(dump, "w") as f:
            for reader in k._readers.values():
                for m in reader.messages:
                    f.write(json.dumps({"topic": m.topic, "partition": m.partition,
                                        "offset": m.offset, "key": m.key,
                                        "value": m.value if m.value is not None
                                        else m.raw.decode("utf-8", "replace")}) + "\n")
    k.close()


@pytest.fixture(scope="module")
def relay_module(request, tansu, tmp_path_factory):
    name = request.module.__name__.rsplit(".", 1)[-1]
    relay = Relay(tmp_path_factory.mktemp(f"relay-{name}"), tansu.bootstrap).start()
    _started_relays.append(relay)
    try:
        yield relay
    finally:
        relay.stop()
        _started_relays.remove(relay)


@pytest.fixture
def relay(relay_module):
    """The module's relay, checked to be alive before and after each test."""
    if not relay_module.proc.alive():
        pytest.fail(f"relay is not running (exit {relay_module.proc.popen.returncode}); "
                    f"log:\n{relay_module.log()}")
    yield relay_module
    if not relay_module.proc.alive():
        pytest.fail(f"relay died during the test (exit {relay_module.proc.popen.returncode}); "
                    f"log:\n{relay_module.log()}")


_started_relays: list[Relay] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the logs of the relays the test used."""
    rep = yield
    if rep.failed:
        seen = set()
        for value in list(item.funcargs.values()) + list(_started_relays):
            if isinstance(value, Relay) and id(value) not in seen:
                seen.add(id(value))
                rep.sections.append(
                    (f"relay log ({value.workdir})", value.log())
                )
    return rep
