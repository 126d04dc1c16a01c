"""Symbolication end to end: the real relay binary, a real broker, real uploads and SDKs.

Issue 3 (native): minidumps uploaded with curl, the way crash handlers send them, to a relay
whose project has the fixture debug files (`projects[].native_symbols`), come out of Kafka
with the symbolicated crashing frames (oldest-first in the event), threads and
`debug_meta.images`; the minidump still arrives as an attachment.

  native/linux-x86_64/linux.dmp   + crash.debug (DWARF): crash main.cpp:23 (inlined)
                                    -> start main.cpp:27 (inlined) -> main main.cpp:35 -> libc
  native/rust-minidump/test.dmp   + Breakpad test_app.sym: CrashFunction test_app.cc:58
                                    -> main test_app.cc:65 -> __tmainCRTStartup crt0.c:327
                                    -> kernel32.dll (no symbols)

Issue 4 (JavaScript): a small Node app is bundled and minified in the test by esbuild (npm,
tests/node devDependencies) with an external source map. It runs under the real @sentry/node
(tests/clients/node_minified_client.js) pointed at the relay and throws inside named
functions. The minified file and its map are put into the project's `js_artifacts`
directory the way docs/symbolication-js.md matches plain paths (`<dir>/<path>` for the frame's
absolute path). The event on Kafka must carry the original files, functions, lines and columns
for the bundle's frames (checked against Node's own `--enable-source-maps` resolution of the
same stack), and keep the minified position (`data.raw_*`, `raw_function`, `data.sourcemap`).

Issue 21 (bounded downloads): a relay of its own whose only symbol server answers every file
with an endless body and `symbolication.max_download_bytes` of 2 MiB; the minidump's event is
published with its modules marked missing, the symbol cache grows by at most the limit per
download in flight and keeps nothing, and a second event asks the server for nothing.

Issue 19 (reload): a relay started without the project's symbol directories gets them by
config reload (SIGHUP); the next minidump is symbolicated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from e2e_lib import (
    FIXTURES_DIR,
    KAFKA_WAIT,
    HEX32,
    PROJECT_ID,
    PUBLIC_KEY,
    REPO_ROOT,
    Relay,
    check_envelope_message,
    curl_minidump,
    collect_attachment,
    exception_values,
    one_event,
    relay_config_yaml,
    run_client,
    wait_until,
    which,
)

NATIVE = FIXTURES_DIR / "native"
LINUX_DUMP = NATIVE / "linux-x86_64" / "linux.dmp"
XP_DUMP = NATIVE / "rust-minidump" / "test.dmp"
NATIVE_SYMBOL_DIRS = [NATIVE / "linux-x86_64", NATIVE / "rust-minidump" / "symbols"]

NODE_DIR = REPO_ROOT / "tests" / "node"
NODE_CLIENT = REPO_ROOT / "tests" / "clients" / "node_minified_client.js"
# npm's bin link: the native binary when esbuild's postinstall ran, else its JS launcher
ESBUILD = NODE_DIR / "node_modules" / ".bin" / "esbuild"


# ----------------------------------------------------------------------------------------------
# the relay of this module: project 42 with the fixture symbols and a JS artifact directory
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory) -> Path:
    """The project's `js_artifacts` directory (filled by the JS test; plain files are looked
    up on the file system per frame, so they may appear after the relay started)."""
    return tmp_path_factory.mktemp("js-artifacts")


@pytest.fixture(scope="module")
def relay_module(tansu, tmp_path_factory, artifacts_dir):
    """Overrides conftest's relay_module: the same relay, with symbol sources configured."""
    for d in NATIVE_SYMBOL_DIRS:
        if not d.is_dir():
            pytest.fail(f"fixture missing: {d} ")
    extra = (
        f"    native_symbols: {json.dumps([str(d) for d in NATIVE_SYMBOL_DIRS])}\n"
        f"    js_artifacts: {json.dumps(str(artifacts_dir))}\n"
    )
    relay = Relay(tmp_path_factory.mktemp("relay-symbolication"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


# ----------------------------------------------------------------------------------------------
# native
# ----------------------------------------------------------------------------------------------


def copy_dump(src: Path, tmp_path: Path) -> Path:
    if not src.is_file():
        pytest.fail(f"fixture missing: {src} ")
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    assert dst.read_bytes()[:4] == b"MDMP"
    return dst


def base_name(path: str | None) -> str | None:
    if not isinstance(path, str):
        return None
    return re.split(r"[\\/]", path)[-1]


def short_function(name: str | None) -> str | None:
    """`(anonymous namespace)::crash()` / `` `anonymous namespace'::CrashFunction`` -> the
    bare name, so the assertions accept the GCC (no linkage name), DWARF and MSVC spellings."""
    if not isinstance(name, str):
        return None
    name = re.sub(r"\(.*\)$", "", name.strip())  # parameter list
    return name.split("::")[-1]


def frame_summary(frames: list[dict]) -> str:
    return "\n".join(
        f"  {f.get('instruction_addr')} {base_name(f.get('package'))}!{f.get('function')} "
        f"[{f.get('filename')}:{f.get('lineno')}] {f.get('trust')} {f.get('status')} "
        f"{(f.get('data') or {}).get('inlined', '')}"
        for f in reversed(frames))


def assert_crash_frames(frames: list[dict], expected: list[tuple[str, str, int, bool]],
                        package: str, what: str) -> None:
    """`frames` are oldest-first (Sentry's order); `expected` is innermost first:
    (function, file base name, line, inlined)."""
    assert isinstance(frames, list) and len(frames) >= len(expected) + 1, \
        f"{what}: too few frames:\n{frame_summary(frames or [])}"
    innermost = list(reversed(frames))
    for i, (function, filename, line, inlined) in enumerate(expected):
        f = innermost[i]
        ctx = f"{what}: frame {i} (innermost first) {f}\nall frames, innermost first:\n" \
              f"{frame_summary(frames)}"
        assert short_function(f.get("function")) == function, ctx
        assert base_name(f.get("filename")) == filename, ctx
        assert base_name(f.get("abs_path")) == filename, ctx
        assert f.get("lineno") == line, ctx
        assert f.get("status") == "symbolicated", ctx
        assert base_name(f.get("package")) == package, ctx
        assert isinstance(f.get("instruction_addr"), str) and \
            f["instruction_addr"].startswith("0x"), ctx
        assert f.get("trust") in ("context", "cfi", "fp", "cfi_scan", "scan", "prewalked"), ctx
        assert bool((f.get("data") or {}).get("inlined")) == inlined, ctx
    # the first frame after the expected ones: the system library caller, without symbols
    caller = innermost[len(expected)]
    return caller


def crashed_thread(ev: dict) -> dict:
    threads = ev.get("threads")
    if isinstance(threads, dict):
        threads = threads.get("values")
    assert isinstance(threads, list) and threads, f"no threads: {list(ev)}"
    crashed = [t for t in threads if t.get("crashed")]
    assert len(crashed) == 1, [(t.get("id"), t.get("crashed")) for t in threads]
    return crashed[0]


def images(ev: dict) -> list[dict]:
    imgs = (ev.get("debug_meta") or {}).get("images")
    assert isinstance(imgs, list) and imgs, f"no debug_meta.images: {ev.get('debug_meta')}"
    return imgs


NATIVE_CASES = {
    "linux-dwarf": dict(
        dump=LINUX_DUMP,
        type="SIGSEGV",
        package="crash",
        expected=[("crash", "main.cpp", 23, True), ("start", "main.cpp", 27, True),
                  ("main", "main.cpp", 35, False)],
        caller_package="libc-2.23.so",
        image=dict(code_file="crash", debug_id="c0bcc3f1-9827-fe65-3058-404b2831d9e6",
                   type="elf"),
        missing_image="libc-2.23.so",
    ),
    "windows-xp-breakpad": dict(
        dump=XP_DUMP,
        type="EXCEPTION_ACCESS_VIOLATION_WRITE",
        package="test_app.exe",
        expected=[("CrashFunction", "test_app.cc", 58, False),
                  ("main", "test_app.cc", 65, False),
                  ("__tmainCRTStartup", "crt0.c", 327, False)],
        caller_package="kernel32.dll",
        image=dict(code_file="test_app.exe", debug_id="5a9832e5-2872-41c1-838e-d98914e9b7ff-1",
                   type="pe"),
        missing_image="kernel32.dll",
    ),
}


@pytest.mark.parametrize("case", list(NATIVE_CASES))
def test_minidump_symbolicated_through_kafka(relay, kafka, tmp_path, case):
    c = NATIVE_CASES[case]
    dump = copy_dump(c["dump"], tmp_path)
    run = uuid.uuid4().hex[:8]
    eid = curl_minidump(relay, dump, f'sentry={{"release":"native-e2e@{run}"}}')

    m = one_event(kafka, eid, "event", relay=relay, timeout=120)
    v = check_envelope_message(m, "event", eid)
    ev = v["event"]
    assert ev["platform"] == "native", ev.get("platform")
    assert ev.get("release") == f"native-e2e@{run}"
    assert ev["level"] == "fatal", ev["level"]
    assert isinstance(v.get("group_id"), str) and HEX32.match(v["group_id"]), v.get("group_id")

    # the crash became the exception, with the crashing thread's symbolicated stack
    values = exception_values(ev)
    assert len(values) == 1, values
    exc = values[0]
    assert exc.get("type") == c["type"], exc
    mech = exc.get("mechanism") or {}
    assert mech.get("type") == "minidump" and mech.get("handled") is False, mech
    assert (mech.get("data") or {}).get("crash_address") == "0x45", mech
    frames = (exc.get("stacktrace") or {}).get("frames")
    caller = assert_crash_frames(frames, c["expected"], c["package"],
                                 f"{case} exception.values[0].stacktrace")
    assert base_name(caller.get("package")) == c["caller_package"], frame_summary(frames)
    assert caller.get("status") == "missing_symbol", caller
    assert not caller.get("function"), caller

    # threads: the crashed one carries the same frames
    thread = crashed_thread(ev)
    tframes = (thread.get("stacktrace") or {}).get("frames")
    assert_crash_frames(tframes, c["expected"], c["package"], f"{case} crashed thread")
    if exc.get("thread_id") is not None:
        assert exc["thread_id"] == thread.get("id"), (exc.get("thread_id"), thread.get("id"))

    # debug_meta.images: the app's module found, the system library without symbols missing
    imgs = images(ev)
    app = [i for i in imgs if base_name(i.get("code_file")) == c["image"]["code_file"]]
    assert len(app) == 1, [i.get("code_file") for i in imgs]
    app = app[0]
    assert app.get("type") == c["image"]["type"], app
    assert str(app.get("debug_id")).lower() == c["image"]["debug_id"], app
    assert app.get("debug_status") == "found", app
    assert app.get("unwind_status") == "found", app
    assert isinstance(app.get("image_addr"), str) and app["image_addr"].startswith("0x"), app
    sysimg = [i for i in imgs if base_name(i.get("code_file")) == c["missing_image"]]
    assert len(sysimg) == 1 and sysimg[0].get("debug_status") == "missing", sysimg

    # the minidump itself still travels, byte for byte
    dumps = [a for a in v.get("attachments") or [] if a.get("attachment_type") == "event.minidump"]
    assert len(dumps) == 1, v.get("attachments")
    assert dumps[0]["size"] == dump.stat().st_size, dumps[0]
    assert collect_attachment(kafka, eid, dumps[0], relay=relay) == dump.read_bytes()


def test_a_symbol_directory_added_by_reload_symbolicates_the_next_minidump(tansu, kafka,
                                                                            tmp_path):
    """Issue 19: a relay started without the project's symbol directories publishes the
    crash unsymbolicated; the file gains them, SIGHUP, and the next minidump is symbolicated
    like the module relay's."""
    c = NATIVE_CASES["linux-dwarf"]
    dump = copy_dump(c["dump"], tmp_path)
    relay = Relay(tmp_path / "relay", tansu.bootstrap).start()
    try:
        def crash_frames(eid: str) -> list[dict]:
            ev = check_envelope_message(one_event(kafka, eid, "event", relay=relay,
                                                  timeout=120), "event", eid)["event"]
            return (exception_values(ev)[0].get("stacktrace") or {}).get("frames") or []

        before = crash_frames(curl_minidump(relay, dump))
        assert before, "no crash frames"
        assert not any(f.get("status") == "symbolicated" for f in before), \
            frame_summary(before)

        extra = f"    native_symbols: {json.dumps([str(d) for d in NATIVE_SYMBOL_DIRS])}\n"
        relay.config_path.write_text(relay_config_yaml(relay.port, relay.data_dir,
                                                       tansu.bootstrap, extra))
        os.kill(relay.proc.pid, signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in relay.log(), 10, "the reload logged",
                   on_timeout=relay.log)
        after = crash_frames(curl_minidump(relay, dump))
        assert_crash_frames(after, c["expected"], c["package"], "after the reload")
    finally:
        relay.stop()


# ----------------------------------------------------------------------------------------------
# native, against a symbol server that answers every file with an endless body (issue 21)
# ----------------------------------------------------------------------------------------------

MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024


class EndlessSymbolServer:
    """Answers every GET with 200 and a body of zeros that never ends (no Content-Length), as
    fast as the client reads; records each request and whether the client hung up."""

    def __init__(self):
        self.requests: list[str] = []
        self.hung_up = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with server.lock:
                    server.requests.append(self.path)
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                zeros = bytes(64 * 1024)
                try:
                    while True:
                        self.wfile.write(zeros)
                except OSError:
                    with server.lock:
                        server.hung_up += 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/symbols"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.requests), self.hung_up


def tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass  # a partial download deleted while we looked
    return total


class PeakSize:
    """Samples the size of a directory tree in a thread until stopped; keeps the largest."""

    def __init__(self, root: Path):
        self.root, self.peak, self.samples = root, 0, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, tree_bytes(self.root))
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(5)


def test_endless_symbol_downloads_are_cut_at_max_download_bytes(tansu, kafka, tmp_path):
    dump = copy_dump(XP_DUMP, tmp_path)
    with EndlessSymbolServer() as server:
        # Deadlines well beyond the time the limit needs, but short enough that a relay
        # ignoring the limit still publishes (and the growth check then fails) within a minute.
        extra = (
            "symbolication:\n"
            f'  http_sources: [{{url: "{server.url}", layout: breakpad, timeout_secs: 20}}]\n'
            f"  max_download_bytes: {MAX_DOWNLOAD_BYTES}\n"
            "  fetch_deadline_secs: 20\n"
        )
        relay = Relay(tmp_path / "relay", tansu.bootstrap, extra_config=extra).start()
        try:
            cache = relay.data_dir / "symbol-cache"
            with PeakSize(cache) as growth:
                eid = curl_minidump(relay, dump)
                ev = check_envelope_message(
                    one_event(kafka, eid, "event", relay=relay, timeout=KAFKA_WAIT), "event",
                    eid)["event"]
            requests, _ = server.counts()
            assert requests > 0, f"no symbol was asked for\nrelay log:\n{relay.log()}"
            # the relay hung up on every endless body, rather than reading on in the background
            wait_until(lambda: server.counts()[1] == requests, 10,
                       "the relay to close every download")
            # at most the limit per file in flight (16 at most at once), and nothing left
            in_flight = min(requests, 16)
            assert growth.samples > 0
            assert growth.peak <= in_flight * MAX_DOWNLOAD_BYTES, (growth.peak, requests)
            assert tree_bytes(cache) == 0, sorted(p for p in cache.rglob("*") if p.is_file())

            # the event was published, the app's frames and module marked as without symbols
            frames = (exception_values(ev)[0].get("stacktrace") or {}).get("frames") or []
            app_frames = [f for f in frames if base_name(f.get("package")) == "test_app.exe"]
            assert app_frames, frame_summary(frames)
            assert all(f.get("status") == "missing_symbol" for f in app_frames), \
                frame_summary(frames)
            app = [i for i in images(ev) if base_name(i.get("code_file")) == "test_app.exe"]
            assert len(app) == 1 and app[0].get("debug_status") == "missing", app

            # a second event within the negative-cache period downloads nothing again
            eid2 = curl_minidump(relay, dump)
            one_event(kafka, eid2, "event", relay=relay, timeout=KAFKA_WAIT)
            assert server.counts()[0] == requests, server.requests
        finally:
            relay.stop()


# ----------------------------------------------------------------------------------------------
# JavaScript: a real bundler, a real @sentry/node error, the project's artifact directory
# ----------------------------------------------------------------------------------------------

ORDERS_JS = """\
'use strict';

function validateQuantity(order) {
  if (typeof order.quantity !== 'number' || order.quantity < 0) {
    throw new RangeError('invalid quantity: ' + order.quantity);
  }
  return order.quantity;
}

function parseOrder(raw) {
  const order = JSON.parse(raw);
  order.total = validateQuantity(order) * (order.price || 1);
  return order;
}

module.exports = { parseOrder };
"""

INDEX_JS = """\
'use strict';
const { parseOrder } = require('./orders');

function processBatch(items) {
  const results = [];
  for (const item of items) {
    results.push(parseOrder(item));
  }
  return results;
}

module.exports = { processBatch };
"""

NODE_INPUT = json.dumps(['{"quantity": 2, "price": 5}', '{"quantity": -3}'])
NODE_STACK_LINE = re.compile(
    r"^\s*at (?:(?P<fn>.*?) \()?(?P<file>[^()]*?):(?P<line>\d+):(?P<col>\d+)\)?$")


def node_bin() -> str:
    if not (NODE_DIR / "node_modules" / "@sentry" / "node").is_dir():
        pytest.fail("tests/node/node_modules is missing: run scripts/test.sh (npm ci)")
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD} is missing: run scripts/test.sh (npm ci installs esbuild)")
    return which("node")


def parse_stack(stack: str) -> list[dict]:
    out = []
    for line in stack.splitlines()[1:]:
        mm = NODE_STACK_LINE.match(line)
        if mm:
            out.append({"fn": mm["fn"], "file": mm["file"], "line": int(mm["line"]),
                        "col": int(mm["col"])})
    return out


@pytest.fixture(scope="module")
def minified_app(tmp_path_factory, artifacts_dir):
    """Bundles + minifies the app with esbuild, deploys it, and copies the minified file and
    its map into the artifact directory under the deployed file's absolute path."""
    node = node_bin()
    root = tmp_path_factory.mktemp("node-app")
    (root / "src").mkdir()
    (root / "src" / "orders.js").write_text(ORDERS_JS)
    (root / "src" / "index.js").write_text(INDEX_JS)
    dist = root / "dist"
    r = subprocess.run(
        [str(ESBUILD), "src/index.js", "--bundle", "--minify", "--sourcemap",
         "--platform=node", "--format=cjs", "--target=node18",
         f"--outfile={dist / 'app.min.js'}", "--log-level=warning"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, f"esbuild failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    bundle = dist / "app.min.js"
    smap = dist / "app.min.js.map"
    text = bundle.read_text()
    assert "//# sourceMappingURL=app.min.js.map" in text, text[-200:]
    # really minified: the function names are gone from the bundle (only in the map)
    for name in ("validateQuantity", "parseOrder(raw", "processBatch(items"):
        assert name not in text, f"{name!r} survived minification:\n{text}"
    assert len(text.splitlines()) == 2, text
    map_json = json.loads(smap.read_text())
    assert map_json["sources"] == ["../src/orders.js", "../src/index.js"], map_json["sources"]

    # Node's own source-map support resolves the same throw: the oracle for lines/columns.
    probe = subprocess.run(
        [node, "--enable-source-maps", "-e",
         "try { require(process.argv[1]).processBatch(JSON.parse(process.argv[2])) }"
         " catch (e) { console.log(e.stack) }", str(bundle), NODE_INPUT],
        capture_output=True, text=True, timeout=60, cwd=root,
    )
    assert probe.returncode == 0, probe.stderr
    oracle = [f for f in parse_stack(probe.stdout) if f["file"].startswith(str(root / "src"))]
    assert [Path(f["file"]).name for f in oracle] == ["orders.js", "orders.js", "index.js"], \
        probe.stdout

    # the artifact directory, laid out by URL: a plain path `/a/b/app.min.js` is `<dir>/a/b/...`
    target = artifacts_dir / str(dist).lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, target / "app.min.js")
    shutil.copyfile(smap, target / "app.min.js.map")
    return {"root": root, "bundle": bundle, "oracle": oracle, "node": node}


@pytest.fixture(scope="module")
def node_sent(relay_module, minified_app):
    return run_client(
        [minified_app["node"], str(NODE_CLIENT), relay_module.dsn, str(minified_app["bundle"]),
         NODE_INPUT],
        {"E2E_RUN_ID": uuid.uuid4().hex[:12]},
    )


def bundle_frames(frames: list[dict], bundle: Path, raw: bool) -> list[dict]:
    """Frames of the minified bundle: as sent (`raw=False`: by filename) or after
    symbolication (`raw=True`: by the kept minified path)."""
    out = []
    for f in frames:
        if raw:
            path = (f.get("data") or {}).get("raw_filename") or (f.get("data") or {}).get(
                "raw_abs_path")
        else:
            path = f.get("abs_path") or f.get("filename")
        if isinstance(path, str) and path.replace("file://", "") == str(bundle):
            out.append(f)
    return out


def test_node_sdk_sends_minified_frames(relay, node_sent, minified_app):
    """What the SDK sends (the input the relay has to match): the bundle's absolute path as
    `filename`, minified names, 1-based line 1 positions."""
    assert node_sent["sdk"] == "11.12.0"
    assert node_sent["error_name"] == "RangeError"
    assert node_sent["flushed"] is True
    exc = node_sent["sent_exception"]
    assert len(exc) == 1 and exc[0]["type"] == "RangeError", exc
    frames = bundle_frames(exc[0]["frames"], minified_app["bundle"], raw=False)
    assert len(frames) == 3, exc[0]["frames"]
    for f in frames:
        assert f["lineno"] == 1 and isinstance(f["colno"], int), f
        assert f["in_app"] is True, f
        assert not re.search(r"validateQuantity|parseOrder|processBatch$", f["function"] or ""), f
    assert node_sent["sent_debug_meta"] is None  # no debug ids: the path has to match


def test_node_minified_error_resolved_through_kafka(relay, kafka, node_sent, minified_app):
    eid = node_sent["exception"]
    m = one_event(kafka, eid, "event", relay=relay)
    v = check_envelope_message(m, "event", eid)
    ev = v["event"]
    assert ev["platform"] == "node", ev["platform"]
    assert ev.get("release") == node_sent["release"]
    values = [x for x in exception_values(ev) if x.get("type") == "RangeError"]
    assert len(values) == 1, exception_values(ev)
    assert values[0].get("value") == "invalid quantity: -3"
    frames = (values[0].get("stacktrace") or {}).get("frames") or []

    sent = bundle_frames(node_sent["sent_exception"][0]["frames"], minified_app["bundle"],
                         raw=False)
    resolved = bundle_frames(frames, minified_app["bundle"], raw=True)
    dump = json.dumps(frames, indent=1)[:6000]
    assert len(resolved) == 3, (
        f"expected the 3 bundle frames to be symbolicated (data.raw_filename = the bundle); "
        f"frames on Kafka:\n{dump}")

    src = minified_app["root"] / "src"
    oracle = minified_app["oracle"]  # innermost first, from node --enable-source-maps
    expected = [  # innermost first: (function, file, line, col)
        ("validateQuantity", src / "orders.js", oracle[0]["line"], oracle[0]["col"]),
        ("parseOrder", src / "orders.js", oracle[1]["line"], oracle[1]["col"]),
        ("processBatch", src / "index.js", oracle[2]["line"], oracle[2]["col"]),
    ]
    # the source itself agrees with the oracle about which lines these are
    assert "throw new RangeError" in ORDERS_JS.splitlines()[expected[0][2] - 1]
    assert "validateQuantity(order)" in ORDERS_JS.splitlines()[expected[1][2] - 1]
    assert "parseOrder(item)" in INDEX_JS.splitlines()[expected[2][2] - 1]

    for f, s, (function, path, line, col) in zip(reversed(resolved), reversed(sent), expected):
        ctx = f"frame {json.dumps(f, indent=1)}\nas sent: {s}"
        data = f.get("data") or {}
        # original position
        assert f.get("function") == function, ctx
        assert f.get("abs_path") == str(path), ctx
        assert f.get("filename") == str(path), ctx  # plain paths keep their full path
        assert f.get("lineno") == line, ctx
        assert f.get("colno") == col, ctx
        assert f.get("in_app") is True, ctx
        # context from the map's sourcesContent
        source_lines = path.read_text().splitlines()
        assert f.get("context_line") == source_lines[line - 1], ctx
        assert f.get("pre_context") == source_lines[max(0, line - 6):line - 1], ctx
        # the minified position is kept
        assert f.get("raw_function") == s["function"], ctx
        assert data.get("raw_filename") == s["filename"], ctx
        assert data.get("raw_lineno") == s["lineno"] == 1, ctx
        assert data.get("raw_colno") == s["colno"], ctx
        assert data.get("sourcemap") == str(minified_app["bundle"]) + ".map", ctx
        assert data.get("sourcemap_origin") == \
            str(minified_app["bundle"]).lstrip("/") + ".map", ctx
        assert data.get("resolved_with") == "url", ctx
        assert data.get("symbolicated") is True, ctx
        assert data.get("sourcemap_status") == "symbolicated", ctx

    # The runner's own (unminified, unmapped) in-app frames are marked, not dropped; engine
    # frames (node:internal/...) are left alone.
    runner = [f for f in frames if str(f.get("filename", "")).endswith("node_minified_client.js")]
    assert runner, dump
    for f in runner:
        assert (f.get("data") or {}).get("sourcemap_status") == "missing_sourcemap", f
        assert f.get("function") in ("main", "Object.?", "Object.<anonymous>"), f
    engine = [f for f in frames if str(f.get("filename", "")).startswith("node:")]
    for f in engine:
        assert "sourcemap_status" not in (f.get("data") or {}), f

    # grouping runs after symbolication: the group is the original functions' group
    assert isinstance(v.get("group_id"), str) and HEX32.match(v["group_id"]), v.get("group_id")
