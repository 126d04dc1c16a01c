"""Helpers for the relay end-to-end tests: processes, ports, HTTP and Kafka.

Everything binds to 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_ID = 42
PUBLIC_KEY = "abc123def456abc123def456abc123de"
UNKNOWN_KEY = "ffffffffffffffffffffffffffffffff"
TOPICS = {
    "events": "relay.events",
    "attachments": "relay.attachments",
    "outcomes": "relay.outcomes",
    "issues": "relay.issues",
}
PARTITIONS = 3
CHUNK_SIZE = 1024 * 1024
HEX32 = re.compile(r"^[0-9a-f]{32}$")

# How long to wait for a message to show up in Kafka after relay answered 200.
KAFKA_WAIT = float(os.environ.get("E2E_KAFKA_WAIT", "60"))


def _default_target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "relay-target"))


RELAY_BIN = Path(os.environ.get("RELAY_BIN", _default_target_dir() / "debug" / "relay"))
TANSU_BIN = Path(
    os.environ.get("TANSU_BIN", Path.home() / ".cache" / "relay-ci" / "tansu" / "bin" / "tansu")
)
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
VENV_PYTHON = os.environ.get("RELAY_E2E_VENV_PYTHON", sys.executable)


# ----------------------------------------------------------------------------------------------
# processes and ports
# ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, max_bytes: int = 20000) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    if len(data) > max_bytes:
        data = b"...[cut]...\n" + data[-max_bytes:]
    return data.decode("utf-8", "replace")


@dataclass
class Proc:
    """A child process whose stdout+stderr go to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # appended across restarts
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return tail(self.log_path)

    def stop(self, timeout: float = 10) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        return self.popen.returncode


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
               on_timeout: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}")
        time.sleep(interval)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for pid {pid}")


# ----------------------------------------------------------------------------------------------
# tansu
# ----------------------------------------------------------------------------------------------


class Tansu:
    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = Proc(
            "tansu",
            [
                str(TANSU_BIN), "broker",
                "--listener-url", self.url,
                "--advertised-listener-url", self.url,
                "--storage-engine", "memory://tansu/",
            ],
            workdir / "tansu.log",
            env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
        )

    def start(self) -> "Tansu":
        if not TANSU_BIN.exists():
            raise RuntimeError(f"tansu binary not found at {TANSU_BIN} (run scripts/test.sh)")
        self.proc.start()
        wait_until(
            lambda: (not self.proc.alive() and _raise(f"tansu exited:\n{self.proc.log()}"))
            or port_open(self.port),
            30, f"tansu on port {self.port}", on_timeout=self.proc.log,
        )
        return self

    def create_topic(self, name: str, partitions: int = PARTITIONS) -> None:
        r = subprocess.run(
            [str(TANSU_BIN), "topic", "create", name, "--partitions", str(partitions),
             "--broker", self.url],
            capture_output=True, text=True, timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError(f"tansu topic create {name} failed ({r.returncode}):\n"
                               f"{r.stdout}\n{r.stderr}\n{self.proc.log()}")

    def stop(self) -> None:
        self.proc.stop()


def _raise(msg: str):
    raise RuntimeError(msg)


# ----------------------------------------------------------------------------------------------
# Kafka reading
# ----------------------------------------------------------------------------------------------


@dataclass
class KMsg:
    topic: str
    partition: int
    offset: int
    key: str | None
    raw: bytes
    value: Any  # parsed JSON, or None if not JSON
    error: str | None = None

    def __repr__(self) -> str:
        v = self.raw[:400].decode("utf-8", "replace")
        return f"<KMsg {self.topic}[{self.partition}]@{self.offset} key={self.key!r} {v}>"


class TopicReader:
    """One consumer per topic, assigned to all partitions from the beginning.

    Messages accumulate in `self.messages`, so repeated waits do not re-read the topic.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int | None = PARTITIONS):
        """partitions=None: ask the broker's metadata (waits up to 30 s for the topic)."""
        self.topic = topic
        self.messages: list[KMsg] = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"relay-e2e-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "socket.timeout.ms": 10000,
            "log_level": 3,
        })
        if partitions is None:
            partitions = self._discover_partitions(30)
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )

    def _discover_partitions(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                md = self.consumer.list_topics(self.topic, timeout=5)
                t = md.topics.get(self.topic)
                if t is not None and t.error is None and t.partitions:
                    return len(t.partitions)
                last = t.error if t is not None else "missing"
            except KafkaException as e:
                last = e
            time.sleep(0.5)
        raise AssertionError(f"topic {self.topic} has no partitions in metadata: {last}")

    def poll(self, budget: float = 0.5) -> int:
        n = 0
        deadline = time.monotonic() + budget
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            m = self.consumer.poll(min(remaining, 0.25))
            if m is None:
                continue
            if m.error():
                # transient broker errors are retried by librdkafka; keep polling
                continue
            raw = m.value() or b""
            try:
                value = json.loads(raw)
                err = None
            except ValueError as e:
                value, err = None, f"not JSON: {e}"
            key = m.key()
            self.messages.append(KMsg(
                m.topic(), m.partition(), m.offset(),
                key.decode("utf-8", "replace") if key is not None else None, raw, value, err,
            ))
            n += 1
        return n

    def find(self, pred: Callable[[KMsg], bool]) -> list[KMsg]:
        out = []
        for m in self.messages:
            try:
                if pred(m):
                    out.append(m)
            except (KeyError, TypeError, AttributeError):
                pass
        return out

    def wait_for(self, pred: Callable[[KMsg], bool], what: str, count: int = 1,
                 timeout: float = KAFKA_WAIT, settle: float = 0.0,
                 on_timeout: Callable[[], str] | None = None) -> list[KMsg]:
        """Poll until at least `count` messages match `pred`; then keep polling `settle` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(pred)
            if len(found) >= count:
                if settle:
                    end = time.monotonic() + settle
                    while time.monotonic() < end:
                        self.poll(0.25)
                    found = self.find(pred)
                return found
            if time.monotonic() > deadline:
                recent = "\n".join(repr(m) for m in self.messages[-15:])
                extra = on_timeout() if on_timeout else ""
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {count} message(s) on "
                    f"{self.topic}: {what}; got {len(found)} matching of "
                    f"{len(self.messages)} read. Last messages:\n{recent}\n{extra}"
                )
            self.poll(0.5)

    def close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            pass


class Kafka:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self._readers: dict[str, TopicReader] = {}

    def reader(self, kind: str) -> TopicReader:
        topic = TOPICS[kind]
        if topic not in self._readers:
            self._readers[topic] = TopicReader(self.bootstrap, topic)
        return self._readers[topic]

    @property
    def events(self) -> TopicReader:
        return self.reader("events")

    @property
    def attachments(self) -> TopicReader:
        return self.reader("attachments")

    def close(self) -> None:
        for r in self._readers.values():
            r.close()


# ----------------------------------------------------------------------------------------------
# redis
# ----------------------------------------------------------------------------------------------


class RedisServer:
    """Debian's redis-server on a free 127.0.0.1 port, without persistence: a restart (after
    `kill`) comes back empty on the same port, like a Redis that lost its data."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = Proc("redis", [which("redis-server"), "--port", str(self.port),
                                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", str(workdir)], workdir / "redis.log")

    def start(self, timeout: float = 15) -> "RedisServer":
        self.proc.start()
        wait_until(lambda: port_open(self.port), timeout, f"redis-server on {self.port}",
                   on_timeout=self.proc.log)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.popen.wait(10)

    def stop(self) -> None:
        self.proc.stop()


# ----------------------------------------------------------------------------------------------
# relay
# ----------------------------------------------------------------------------------------------


def relay_config_yaml(port: int, data_dir: Path, brokers: str, extra: str = "",
                      kafka_producer: dict[str, str] | None = None,
                      upstream: dict | None = None) -> str:
    """`extra`: more top-level YAML; `kafka_producer`: librdkafka properties (kafka.producer);
    `upstream`: the upstream section (forward mode), written instead of the kafka section."""
    if upstream is not None:
        return (
            f'listen: "127.0.0.1:{port}"\n'
            f'data_dir: "{data_dir}"\n'
            f"upstream: {json.dumps(upstream)}\n"
            "projects:\n"
            f"  - id: {PROJECT_ID}\n"
            f'    keys: ["{PUBLIC_KEY}"]\n'
            f"{extra}"
        )
    producer = ""
    if kafka_producer:
        producer = "  producer:\n" + "".join(
            f"    {k}: {json.dumps(str(v))}\n" for k, v in kafka_producer.items())
    return (
        f'listen: "127.0.0.1:{port}"\n'
        f'data_dir: "{data_dir}"\n'
        "kafka:\n"
        f'  brokers: "{brokers}"\n'
        "  topics:\n"
        f"    events: {TOPICS['events']}\n"
        f"    attachments: {TOPICS['attachments']}\n"
        f"    outcomes: {TOPICS['outcomes']}\n"
        f"    issues: {TOPICS['issues']}\n"
        f"{producer}"
        "projects:\n"
        f"  - id: {PROJECT_ID}\n"
        f'    keys: ["{PUBLIC_KEY}"]\n'
        f"{extra}"
    )


class Relay:
    def __init__(self, workdir: Path, brokers: str, extra_config: str = "",
                 kafka_producer: dict[str, str] | None = None, upstream: dict | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/{PROJECT_ID}"
        self.config_path = workdir / "relay.yaml"
        self.data_dir = workdir / "relay-data"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            relay_config_yaml(self.port, self.data_dir, brokers, extra_config, kafka_producer,
                              upstream)
        )
        env = {**os.environ}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = Proc("relay", [str(RELAY_BIN), "run", "--config", str(self.config_path)],
                         workdir / "relay.log", env=env)

    def start(self, timeout: float = 60, ready_path: str = "/healthz/ready") -> "Relay":
        if not RELAY_BIN.exists():
            raise RuntimeError(f"relay binary not found at {RELAY_BIN} "
                               "(cargo build -p relay-server)")
        self.proc.start()

        def ready():
            if not self.proc.alive():
                raise RuntimeError(f"relay exited with {self.proc.popen.returncode} before "
                                   f"ready:\n{self.proc.log()}")
            try:
                return requests.get(self.base + ready_path, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout, f"relay {ready_path} on {self.base}", interval=0.2,
                   on_timeout=lambda: "relay log:\n" + self.proc.log())
        return self

    def url(self, path: str) -> str:
        return self.base + path

    def log(self) -> str:
        return self.proc.log()

    def stop(self) -> None:
        self.proc.stop()

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no flushing."""
        if self.proc.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.popen.wait(10)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_samples(relay: Relay, name: str) -> list[tuple[dict, float]]:
    """The samples of metric `name` in the relay's /metrics: (labels, value) pairs."""
    text = requests.get(relay.url("/metrics"), timeout=10).text
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m and m.group(1) == name:
            out.append((dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def auth_header(key: str = PUBLIC_KEY, client: str = "relay-e2e/1.0") -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client={client}"}


# ----------------------------------------------------------------------------------------------
# envelopes and assertions
# ----------------------------------------------------------------------------------------------


def new_event_id() -> str:
    return uuid.uuid4().hex


def make_envelope(items: Iterable[tuple[dict, bytes]], header: dict | None = None,
                  trailing_newline: bool = True) -> bytes:
    parts = [json.dumps(header or {}).encode()]
    for h, payload in items:
        parts.append(json.dumps(h).encode())
        parts.append(payload)
    body = b"\n".join(parts)
    return body + (b"\n" if trailing_newline else b"")


def simple_event(event_id: str, message: str, **extra) -> dict:
    ev = {
        "event_id": event_id,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "message": message,
    }
    ev.update(extra)
    return ev


def event_envelope(event_id: str, message: str) -> bytes:
    payload = json.dumps(simple_event(event_id, message)).encode()
    return make_envelope(
        [({"type": "event", "length": len(payload), "content_type": "application/json"},
          payload)],
        header={"event_id": event_id},
    )


def post_envelope(relay: Relay, body: bytes, headers: dict | None = None,
                  timeout: float = 30, **kw) -> requests.Response:
    h = {"Content-Type": "application/x-sentry-envelope", **auth_header()}
    if headers is not None:
        h.update(headers)
    h = {k: v for k, v in h.items() if v is not None}
    return requests.post(relay.url(f"/api/{PROJECT_ID}/envelope/"), data=body, headers=h,
                         timeout=timeout, **kw)


def describe(resp: requests.Response) -> str:
    req = resp.request
    body = req.body if isinstance(req.body, (bytes, bytearray)) else (req.body or b"")
    if isinstance(body, str):
        body = body.encode()
    return (
        f"{req.method} {req.url} -> {resp.status_code}\n"
        f"request headers: {dict(req.headers)}\n"
        f"request body ({len(body)} bytes): {bytes(body[:300])!r}\n"
        f"response headers: {dict(resp.headers)}\n"
        f"response body: {resp.text[:1000]!r}"
    )


def assert_detail(resp: requests.Response, statuses: Iterable[int]) -> str:
    statuses = set(statuses)
    assert resp.status_code in statuses, f"expected one of {sorted(statuses)}\n{describe(resp)}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON\n{describe(resp)}")
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], \
        f"error body lacks a 'detail' string\n{describe(resp)}"
    return body["detail"]


def assert_accepted(resp: requests.Response, event_id: str | None = None) -> str:
    assert resp.status_code == 200, describe(resp)
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"200 body is not JSON\n{describe(resp)}")
    got = body.get("id")
    assert isinstance(got, str) and HEX32.match(got), f"bad id in 200 body\n{describe(resp)}"
    if event_id is not None:
        assert got == event_id.replace("-", "").lower(), describe(resp)
    return got


def event_messages(kafka: Kafka, event_id: str, *, types: Iterable[str] | None = None,
                   timeout: float = KAFKA_WAIT, count: int = 1,
                   relay: Relay | None = None) -> list[KMsg]:
    eid = event_id.replace("-", "").lower()
    types = set(types) if types else None

    def pred(m: KMsg) -> bool:
        v = m.value
        return (isinstance(v, dict) and v.get("event_id") == eid
                and (types is None or v.get("type") in types))

    return kafka.events.wait_for(
        pred, f"event_id={eid} types={types}", count=count, timeout=timeout,
        on_timeout=(lambda: "relay log:\n" + relay.log()) if relay else None,
    )


def one_event(kafka: Kafka, event_id: str, type_: str = "event", relay: Relay | None = None,
              timeout: float = KAFKA_WAIT) -> KMsg:
    msgs = event_messages(kafka, event_id, types=[type_], relay=relay, timeout=timeout)
    return msgs[0]


def check_envelope_message(m: KMsg, type_: str, event_id: str | None) -> dict:
    """Assert the common fields of an events-topic message; returns its value."""
    v = m.value
    assert m.error is None and isinstance(v, dict), m
    assert v.get("version") == 1, m
    assert v.get("type") == type_, m
    assert v.get("project_id") == PROJECT_ID, m
    assert v.get("public_key") == PUBLIC_KEY, m
    assert isinstance(v.get("received"), str) and _rfc3339(v["received"]), m
    assert isinstance(v.get("item_headers"), dict), m
    if event_id is not None:
        eid = event_id.replace("-", "").lower()
        assert v.get("event_id") == eid, m
        assert m.key == eid, f"kafka key should be the event id: {m}"
    if type_ in ("event", "transaction"):
        ev = v.get("event")
        assert isinstance(ev, dict), f"missing normalized event: {m}"
        for k in ("event_id", "timestamp", "platform", "level"):
            assert k in ev, f"normalized event lacks {k!r}: {m}"
        if event_id is not None:
            assert ev["event_id"].replace("-", "").lower() == event_id.replace("-", "").lower(), m
    return v


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339(s: str) -> bool:
    return bool(_RFC3339.match(s))


def event_text(ev: dict) -> str:
    """The message of a normalized event, wherever normalization put it."""
    le = ev.get("logentry") or {}
    msg = ev.get("message")
    if isinstance(msg, dict):
        le = le or msg
        msg = None
    candidates = [le.get("formatted"), le.get("message"), msg]
    return " | ".join(c for c in candidates if isinstance(c, str))


def exception_values(ev: dict) -> list[dict]:
    exc = ev.get("exception")
    if isinstance(exc, dict):
        exc = exc.get("values")
    return exc or []


def tags_dict(ev: dict) -> dict:
    tags = ev.get("tags") or {}
    if isinstance(tags, list):
        out = {}
        for t in tags:
            if isinstance(t, (list, tuple)) and len(t) == 2:
                out[t[0]] = t[1]
            elif isinstance(t, dict) and "key" in t:
                out[t["key"]] = t.get("value")
        return out
    return dict(tags)


def collect_attachment(kafka: Kafka, event_id: str, ref: dict,
                       timeout: float = KAFKA_WAIT, relay: Relay | None = None) -> bytes:
    """Read all chunks of one attachment reference and return the reassembled bytes.

    Checks every chunk's envelope fields against the reference in the event message.
    """
    eid = event_id.replace("-", "").lower()
    aid = ref["id"]
    n = ref["chunks"]
    assert isinstance(n, int) and isinstance(ref["size"], int), ref
    if ref["size"] > 0:
        assert n == -(-ref["size"] // CHUNK_SIZE), f"chunks should be ceil(size / 1 MiB): {ref}"
    else:
        assert n in (0, 1), f"empty attachment should have 0 or 1 chunks: {ref}"

    def pred(m: KMsg) -> bool:
        v = m.value
        return isinstance(v, dict) and v.get("attachment_id") == aid and v.get("event_id") == eid

    if n == 0:
        return b""
    msgs = kafka.attachments.wait_for(
        pred, f"chunks of attachment {aid} ({ref.get('name')})", count=n, timeout=timeout,
        on_timeout=(lambda: "relay log:\n" + relay.log()) if relay else None,
    )
    by_index: dict[int, dict] = {}
    for m in msgs:
        v = m.value
        assert v.get("version") == 1, m
        assert v.get("project_id") == PROJECT_ID, m
        assert v.get("name") == ref["name"], m
        assert v.get("content_type") == ref.get("content_type"), m
        assert v.get("attachment_type") == ref.get("attachment_type"), m
        assert v.get("size") == ref["size"], m
        assert v.get("chunk_count") == n, m
        assert m.key == eid, f"chunk key should be the event id: {m}"
        by_index.setdefault(v["chunk_index"], v)  # at-least-once: duplicates allowed
    assert sorted(by_index) == list(range(n)), f"chunk indexes {sorted(by_index)} != 0..{n-1}"
    parts = [base64.b64decode(by_index[i]["data"], validate=True) for i in range(n)]
    for i, p in enumerate(parts[:-1]):
        assert len(p) == CHUNK_SIZE, f"chunk {i} of {aid} has {len(p)} bytes, expected 1 MiB"
    data = b"".join(parts)
    assert len(data) == ref["size"], f"reassembled {len(data)} bytes, reference says {ref}"
    return data


def deterministic_bytes(n: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(n)


def run_client(argv: list[str], env_extra: dict[str, str], timeout: float = 120) -> dict:
    env = {**os.environ, **env_extra}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (f"client {argv} failed ({r.returncode})\nstdout:\n{r.stdout}\n"
                               f"stderr:\n{r.stderr}")
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
    assert lines, f"client printed no JSON\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    out = json.loads(lines[-1])
    out["_stderr"] = r.stderr
    return out


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def curl_minidump(relay: Relay, dump: Path, *form: str, timeout: float = 60) -> str:
    """Upload like a Breakpad/Crashpad handler (multipart, key in the query); returns the id."""
    url = relay.url(f"/api/{PROJECT_ID}/minidump/?sentry_key={PUBLIC_KEY}")
    args = [which("curl"), "-sS", "--max-time", str(int(timeout)), "-o", "-",
            "-w", "\n%{http_code}", "-F", f"upload_file_minidump=@{dump}"]
    for f in form:
        args += ["-F", f]
    r = subprocess.run(args + [url], capture_output=True, text=True, timeout=timeout + 10)
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr}"
    body, _, status = r.stdout.rpartition("\n")
    assert status == "200", f"minidump upload: {status} {body!r}\nrelay log:\n{relay.log()}"
    eid = body.strip().replace("-", "").lower()
    assert HEX32.match(eid), f"upload answered {body!r}"
    return eid


def raise_fd_limit(needed: int) -> None:
    """Raises this process's open-files soft limit to `needed` sockets (load tests)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} "
                                 "sockets needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def which(name: str) -> str:
    p = shutil.which(name)
    assert p, f"{name} not found on PATH"
    return p


# ----------------------------------------------------------------------------------------------
# sentry-cli and the upload API (docs/uploads.md)
# ----------------------------------------------------------------------------------------------

# npm @sentry/cli (tests/node/package.json); its binary comes from the npm optional package
# @sentry/cli-linux-x64, so nothing but npm is needed to install it.
SENTRY_CLI = REPO_ROOT / "tests" / "node" / "node_modules" / ".bin" / "sentry-cli"
UPLOAD_ORG_ID = 7
UPLOAD_ORG = "acme"
UPLOAD_PROJECT = "web"
UPLOAD_TOKEN = "e2e-upload-token-acme-0123456789abcdef0123"


def upload_project_fields(org_id: int = UPLOAD_ORG_ID, slug: str = UPLOAD_PROJECT) -> str:
    """YAML lines for the e2e project (they continue `projects[0]`): its slug and org."""
    return f"    slug: {slug}\n    organization: {org_id}\n"


def upload_sections(org_id: int = UPLOAD_ORG_ID, org_slug: str = UPLOAD_ORG,
                    tokens: Iterable[str] = (UPLOAD_TOKEN,),
                    uploads: dict[str, int] | None = None,
                    other_orgs: Iterable[tuple[int, str, str]] = ()) -> str:
    """Top-level YAML: `organizations` (ours, then `other_orgs` as (id, slug, token)) and an
    optional `uploads` section (e.g. {"max_file_bytes": 600000})."""
    out = "organizations:\n"
    out += (f"  - id: {org_id}\n    slug: {org_slug}\n"
            f"    upload_tokens: {json.dumps(list(tokens))}\n")
    for oid, slug, token in other_orgs:
        out += f"  - id: {oid}\n    slug: {slug}\n    upload_tokens: {json.dumps([token])}\n"
    if uploads:
        out += "uploads:\n" + "".join(f"  {k}: {v}\n" for k, v in uploads.items())
    return out


def upload_config(**sections) -> str:
    """`extra_config` for `Relay`: the e2e project (id 42, key PUBLIC_KEY) in organization
    `acme` (slug `web`) with UPLOAD_TOKEN; keyword arguments go to `upload_sections`. Other
    project fields (`js_artifacts`, ...) must come before this text, top-level sections after."""
    return upload_project_fields() + upload_sections(**sections)


def sentry_cli(relay: Relay, *args: str, token: str = UPLOAD_TOKEN, org: str = UPLOAD_ORG,
               project: str = UPLOAD_PROJECT, cwd: Path | None = None, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the npm sentry-cli against `relay` (SENTRY_URL, SENTRY_AUTH_TOKEN, SENTRY_ORG,
    SENTRY_PROJECT), with `--log-level=info` so failures show the calls. `check`: assert
    exit 0, with both outputs in the message."""
    if not SENTRY_CLI.exists():
        raise AssertionError(f"{SENTRY_CLI} is missing: run scripts/test.sh (npm ci)")
    env = {
        **os.environ,
        "SENTRY_URL": relay.base,
        "SENTRY_AUTH_TOKEN": token,
        "SENTRY_ORG": org,
        "SENTRY_PROJECT": project,
        # no update checks, no telemetry: nothing but the relay is asked
        "SENTRY_DISABLE_UPDATE_CHECK": "1",
        "SENTRYCLI_SKIP_DOWNLOAD": "1",
    }
    r = subprocess.run([str(SENTRY_CLI), "--log-level=info", *args], capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, (f"sentry-cli {' '.join(args)} failed ({r.returncode})\n"
                                   f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\n"
                                   f"relay log:\n{relay.log()}")
    return r


def upload_api(relay: Relay, method: str, path: str, token: str | None = UPLOAD_TOKEN,
               **kwargs) -> requests.Response:
    """A request to the upload API (`/api/0/...`) with `Authorization: Bearer <token>`."""
    headers = dict(kwargs.pop("headers", {}) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, relay.url(path), headers=headers, timeout=30, **kwargs)
