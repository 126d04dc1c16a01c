"""The CLI (`relay config check`, `relay run` with a bad config) and the operational endpoints."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

from e2e_lib import RELAY_BIN, relay_config_yaml


def run_relay(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(RELAY_BIN), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def output(r: subprocess.CompletedProcess) -> str:
    return f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


@pytest.fixture
def good_config(tmp_path):
    p = tmp_path / "good.yaml"
    p.write_text(relay_config_yaml(3999, tmp_path / "data", "127.0.0.1:9"))
    return p


def test_config_check_good(good_config):
    r = run_relay(["config", "check", "--config", str(good_config)])
    assert r.returncode == 0, output(r)


BAD_CONFIGS = {
    # (yaml edit, words that must appear in the error output)
    "project_id_not_a_number": (
        lambda y: y.replace("  - id: 42\n", '  - id: "x"\n'), ["id"]),
    "unknown_top_level_key": (
        lambda y: y.replace("listen:", "listne:"), ["listne"]),
    "unknown_kafka_key": (
        lambda y: y.replace("  brokers:", "  brokerz:"), ["brokerz"]),
    "not_yaml": (lambda y: "listen: [unclosed\n  - : :\n", []),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_config_check_bad(good_config, tmp_path, name):
    edit, words = BAD_CONFIGS[name]
    bad = tmp_path / f"{name}.yaml"
    bad.write_text(edit(good_config.read_text()))
    assert bad.read_text() != good_config.read_text()
    r = run_relay(["config", "check", "--config", str(bad)])
    assert r.returncode != 0, output(r)
    text = r.stdout + r.stderr
    for w in words:
        assert w in text, f"error output should name {w!r}\n{output(r)}"


def test_config_check_missing_file(tmp_path):
    r = run_relay(["config", "check", "--config", str(tmp_path / "nope.yaml")])
    assert r.returncode != 0, output(r)


def test_run_with_bad_config_exits(good_config, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(good_config.read_text().replace("listen:", "listne:"))
    r = run_relay(["run", "--config", str(bad)], timeout=60)
    assert r.returncode != 0, output(r)
    assert "listne" in r.stdout + r.stderr, output(r)


def _metric_lines(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines()
            if re.match(rf"^{name}(\{{[^}}]*\}})?\s+[-+0-9.eE]+(\s+\d+)?$", ln)]


def test_metrics(relay):
    r = requests.get(relay.url("/metrics"), timeout=10)
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    for name in ("relay_mailbox_capacity", "relay_mailbox_depth"):
        assert _metric_lines(r.text, name), f"/metrics has no {name} sample:\n{r.text[:3000]}"
    caps = [float(ln.rsplit(None, 1)[-1]) for ln in _metric_lines(r.text, "relay_mailbox_capacity")]
    assert all(c > 0 for c in caps), caps


@pytest.mark.parametrize("path", [
    "/healthz/live", "/healthz/ready",
    "/api/relay/healthcheck/live/", "/api/relay/healthcheck/ready/",
])
def test_health_endpoints(relay, path):
    r = requests.get(relay.url(path), timeout=10)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
