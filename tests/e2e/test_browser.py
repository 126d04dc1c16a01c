"""A real browser against the relay (issue 18): headless Debian Chromium, driven by Playwright,
loads a page from ANOTHER origin (a test HTTP server on its own port of 127.0.0.1; the relay
listens on a second port, so every request to it is cross-origin).

The page runs @sentry/browser 11.12.0 (npm, tests/node) bundled and minified by esbuild with
the app in tests/clients/browser/src. `provide_sourcemaps` runs the real sentry-cli
(npm @sentry/cli): `sourcemaps inject`, then `sourcemaps upload` through the relay's upload API
(docs/uploads.md); no artifact directory is configured, and the frames are matched by debug id.

- The captured error comes out of Kafka resolved: original functions, file and lines (the
  column is checked by the source text it points at), and the browser console shows no CORS
  error. The requests the SDK made carry an `Origin` other than the relay's, and every header
  they carry is one the relay's preflight allows.
- Under a quota (project 43: no errors at all) the relay answers 429 with
  `X-Sentry-Rate-Limits` naming `error`; the SDK can read it (exposed by CORS), so it stops
  sending errors (no further request carries one) while a span still goes out, and its
  client report, sent when the page is left, counts the dropped errors as `ratelimit_backoff`
  (an outcome `client_discard` on relay.outcomes).
- Content Security Policy: a page whose policy forbids an image it loads makes Chromium report
  the violation with `report-uri` (JSON `{"csp-report": ...}`) to the relay's security
  endpoint; it arrives in Kafka as a `security` item. The `report-to` form (Reporting API
  batch) is posted over HTTP the way Chromium would (see that test for why).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from e2e_lib import (
    HEX32,
    KAFKA_WAIT,
    PROJECT_ID,
    PUBLIC_KEY,
    REPO_ROOT,
    Relay,
    check_envelope_message,
    exception_values,
    free_port,
    one_event,
    sentry_cli,
    upload_project_fields,
    upload_sections,
)

NODE_DIR = REPO_ROOT / "tests" / "node"
APP_DIR = REPO_ROOT / "tests" / "clients" / "browser"
ESBUILD = NODE_DIR / "node_modules" / ".bin" / "esbuild"
CHROMIUM = "/usr/bin/chromium"
SDK_VERSION = "11.12.0"

QUOTA_PROJECT = 43
QUOTA_KEY = "43043043043043043043043043043043"
# The failing input: the second order has a negative quantity.
ORDERS = ['{"quantity": 2, "price": 5}', '{"quantity": -3}']


# ----------------------------------------------------------------------------------------------
# the relay, the minified app and its source map
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay_module(tansu, tmp_path_factory):
    """Project 42 (slug `web` of organization `acme`, which takes sentry-cli uploads; no
    artifact directory configured); project 43 refuses every error."""
    extra = (
        upload_project_fields()
        + f"  - id: {QUOTA_PROJECT}\n"
        f'    keys: ["{QUOTA_KEY}"]\n'
        "    quotas:\n"
        "      - { id: no-errors, categories: [error], scope: project, limit: 0, window: 60,"
        " reason: e2e_quota }\n"
        + upload_sections()
        + "outcomes:\n"
        "  flush_interval_secs: 1\n"
    )
    relay = Relay(tmp_path_factory.mktemp("relay-browser"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    """The page server's root: the pages, and `dist/` with the minified app."""
    return tmp_path_factory.mktemp("site")


@pytest.fixture(scope="module")
def bundle(site_dir) -> dict:
    """@sentry/browser + the app, bundled and minified by esbuild with an external map.

    Built inside the site's root (`src/` beside `dist/`), as a web project's build would be, so
    the map names the app's sources `../src/...` relative to the bundle."""
    if not (NODE_DIR / "node_modules" / "@sentry" / "browser").is_dir():
        pytest.fail("tests/node/node_modules is missing @sentry/browser: run scripts/test.sh")
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD} is missing: run scripts/test.sh (npm ci installs esbuild)")
    root = site_dir
    shutil.copytree(APP_DIR / "src", root / "src")
    # esbuild resolves bare imports from the importing file's folders upwards.
    (root / "node_modules").symlink_to(NODE_DIR / "node_modules")
    dist = site_dir / "dist"
    r = subprocess.run(
        [str(ESBUILD), "src/main.js", "--bundle", "--minify", "--sourcemap", "--format=iife",
         "--target=es2020", f"--outfile={dist / 'app.min.js'}", "--log-level=warning"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, f"esbuild failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    minified = dist / "app.min.js"
    text = minified.read_text()
    assert text.rstrip().endswith("//# sourceMappingURL=app.min.js.map"), text[-200:]
    # really minified: the app's function names are only in the map
    for name in ("validateQuantity", "parseOrder", "processBatch"):
        assert name not in text, f"{name!r} survived minification"
    sources = json.loads((dist / "app.min.js.map").read_text())["sources"]
    assert "../src/orders.js" in sources, sources
    return {"root": root, "dist": dist, "minified": minified,
            "map": dist / "app.min.js.map"}


def provide_sourcemaps(relay: Relay, bundle: dict) -> str:
    """Gives the relay the minified file and its map the way a build pipeline does:
    `sentry-cli sourcemaps inject` (a debug id into the bundle, its snippet that tells the SDK,
    and the map) then `sentry-cli sourcemaps upload` (an artifact bundle through the upload
    API). Returns the debug id."""
    sentry_cli(relay, "sourcemaps", "inject", str(bundle["dist"]))
    text = bundle["minified"].read_text()
    debug_id = text.rsplit("//# debugId=", 1)[-1].strip()
    assert len(debug_id) == 36 and "_sentryDebugIds" in text, text[-300:]
    source_map = json.loads(bundle["map"].read_text())
    assert debug_id in (source_map.get("debug_id"), source_map.get("debugId")), source_map.keys()
    r = sentry_cli(relay, "sourcemaps", "upload", "--url-prefix", "~/dist", str(bundle["dist"]))
    assert f"debug id {debug_id}" in r.stdout, r.stdout
    return debug_id


# ----------------------------------------------------------------------------------------------
# the page server (the other origin) and the browser
# ----------------------------------------------------------------------------------------------


class PageServer:
    """Serves `root` on its own port of 127.0.0.1; `headers[path]` adds response headers."""

    def __init__(self, root: Path):
        self.root = root
        self.headers: dict[str, dict[str, str]] = {}
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def end_headers(self):
                for name, value in server.headers.get(self.path.split("?")[0], {}).items():
                    self.send_header(name, value)
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "PageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site(site_dir, bundle):
    (site_dir / "index.html").write_text(
        "<!doctype html><title>orders</title><script src=\"/dist/app.min.js\"></script>\n")
    (site_dir / "bye.html").write_text("<!doctype html><title>bye</title>\n")
    with PageServer(site_dir) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh (apt installs chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root. --short-reporting-delay: the Reporting API sends its
        # batches within a second instead of a minute.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--short-reporting-delay"])
        try:
            yield b
        finally:
            b.close()


class Tab:
    """One page in a fresh browser context, with what it logged and every request to the relay."""

    def __init__(self, browser, relay: Relay):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.requests: list[dict] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self._started(r, relay))
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", self._failed)

    def _started(self, request, relay: Relay) -> None:
        # Recorded when it starts: a request the SDK made shows here even if it never ends.
        if request.url.startswith(relay.base):
            self.requests.append({"request": request, "method": request.method,
                                  "url": request.url, "body": request.post_data_buffer or b"",
                                  "status": None, "done": False})

    def _entry(self, request) -> dict | None:
        return next((r for r in self.requests if r["request"] is request), None)

    def _finished(self, request) -> None:
        entry = self._entry(request)
        if entry is None:
            return
        from playwright.sync_api import Error as PlaywrightError

        try:
            response = request.response()
            entry.update(headers=request.all_headers(),
                         status=response.status if response else None,
                         response_headers=response.all_headers() if response else {})
        except PlaywrightError as e:  # the tab closed while this event was on its way
            entry.update(error=str(e))
        entry.update(done=True)

    def _failed(self, request) -> None:
        self.console.append(f"requestfailed: {request.url} {request.failure}")
        entry = self._entry(request)
        if entry is not None:
            entry.update(done=True)

    def wait_for(self, pred, what: str, timeout: float = 15) -> None:
        """Lets the browser's events in until `pred()` holds."""
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"{what}; requests: {self.requests}"
            self.page.wait_for_timeout(100)

    def settled(self) -> bool:
        return all(r["done"] for r in self.requests)

    def envelope_posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and "/envelope/" in r["url"]]

    def cors_errors(self) -> list[str]:
        words = ("cors", "access-control", "cross-origin", "blocked by")
        return [line for line in self.console if any(w in line.lower() for w in words)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, relay):
    t = Tab(browser, relay)
    try:
        yield t
    finally:
        t.close()


def open_app(tab: Tab, site: PageServer, dsn: str, release: str) -> None:
    q = requests.compat.urlencode({"dsn": dsn, "release": release})
    tab.page.goto(f"{site.origin}/index.html?{q}")
    tab.page.wait_for_function("window.e2e !== undefined", timeout=15000)
    assert tab.page.evaluate("window.e2e.sdkVersion") == SDK_VERSION


def envelope_item_types(body: bytes) -> list[str]:
    """The item types of an envelope as the SDK sent it (`length` honoured when present)."""
    _, _, rest = body.partition(b"\n")
    types = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        types.append(header["type"])
        if "length" in header:
            rest = rest[header["length"] + 1:]
        else:
            _, _, rest = rest.partition(b"\n")
    return types


# ----------------------------------------------------------------------------------------------
# the resolved error
# ----------------------------------------------------------------------------------------------


CHROME_FRAME = re.compile(r"^\s*at (?:(?P<fn>\S+) \()?(?P<url>.+?):(?P<line>\d+):(?P<col>\d+)\)?$")


def parse_chrome_stack(stack: str, url: str) -> list[tuple[str | None, int, int]]:
    """(function, line, column) of the frames of `url` in a V8 `Error.stack`."""
    out = []
    for line in stack.splitlines()[1:]:
        m = CHROME_FRAME.match(line)
        if m and m["url"] == url:
            out.append((m["fn"], int(m["line"]), int(m["col"])))
    return out


def source_line_of(path: Path, needle: str) -> int:
    """1-based line of the only line of `path` containing `needle`."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def test_browser_error_arrives_resolved_without_cors_errors(relay, kafka, tab, site, bundle):
    debug_id = provide_sourcemaps(relay, bundle)
    release = f"browser-e2e@{uuid.uuid4().hex[:8]}"
    open_app(tab, site, relay.dsn, release)
    sent = tab.page.evaluate("items => window.e2e.processOrders(items)", ORDERS)
    assert sent and HEX32.match(sent["id"]), sent
    assert tab.page.evaluate("window.e2e.flush(10000)") is True
    tab.wait_for(lambda: tab.settled() and any(
        sent["id"].encode() in r["body"] for r in tab.envelope_posts()), "the event's request")

    ev = check_envelope_message(one_event(kafka, sent["id"], relay=relay), "event",
                                sent["id"])["event"]
    assert ev["platform"] == "javascript", ev["platform"]
    assert ev.get("release") == release
    values = [x for x in exception_values(ev) if x.get("type") == "RangeError"]
    assert len(values) == 1, exception_values(ev)
    assert values[0]["value"] == "invalid quantity: -3"
    frames = values[0]["stacktrace"]["frames"]
    dump = json.dumps(frames, indent=1)[:8000]
    app_frames = [f for f in frames if str(f.get("abs_path", "")).endswith("/src/orders.js")]

    minified_url = f"{site.origin}/dist/app.min.js"
    browser_stack = set(parse_chrome_stack(sent["stack"], minified_url))
    # The SDK found the injected id and sent it for the bundle's URL.
    images = (ev.get("debug_meta") or {}).get("images") or []
    assert {"type": "sourcemap", "code_file": minified_url, "debug_id": debug_id} in images, \
        images
    orders = APP_DIR / "src" / "orders.js"
    expected = [  # outermost first, as in the event: (function, line, the text at the column)
        ("processBatch", source_line_of(orders, "results.push(parseOrder(item))"), "parseOrder"),
        ("parseOrder", source_line_of(orders, "order.total = validateQuantity"),
         "validateQuantity"),
        ("validateQuantity", source_line_of(orders, "throw new RangeError"), "new RangeError"),
    ]
    assert [f.get("function") for f in app_frames] == [e[0] for e in expected], dump
    lines = orders.read_text().splitlines()
    for f, (function, line, text_at_column) in zip(app_frames, expected):
        ctx = json.dumps(f, indent=1)
        data = f.get("data") or {}
        assert f["abs_path"] == f"{site.origin}/src/orders.js", ctx
        assert f.get("lineno") == line, ctx
        assert lines[line - 1][f["colno"] - 1:].startswith(text_at_column), ctx
        assert f.get("context_line") == lines[line - 1], ctx
        assert data.get("sourcemap_status") == "symbolicated", ctx
        assert data.get("resolved_with") == "debug_id", ctx
        # the minified position is kept, as the browser's own stack trace gave it
        assert data.get("raw_filename") == minified_url, ctx
        assert (f.get("raw_function"), data.get("raw_lineno"), data.get("raw_colno")) in \
            browser_stack, (ctx, sent["stack"])

    # Cross-origin, and the browser let the SDK read every answer.
    posts = tab.envelope_posts()
    assert posts, tab.requests
    for r in posts:
        assert r["headers"].get("origin") == site.origin != relay.base, r["headers"]
        assert r["status"] == 200, r
        assert r["response_headers"].get("access-control-allow-origin") == site.origin, r
    assert tab.cors_errors() == [], tab.console
    assert tab.errors == [], tab.errors
    assert_preflight_allows_what_the_sdk_sends(relay, site, posts)


# Headers a page may send cross-origin without a preflight asking for them (Fetch standard).
SAFELISTED = {"accept", "accept-language", "content-language", "content-type", "range"}
# Headers the browser itself sets: never listed in a preflight.
BROWSER_SET = {"origin", "referer", "user-agent", "sec-ch-ua", "sec-ch-ua-mobile",
               "sec-ch-ua-platform", "accept-encoding", "connection", "host", "content-length",
               "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"}


def assert_preflight_allows_what_the_sdk_sends(relay: Relay, site: PageServer,
                                               posts: list[dict]) -> None:
    """Every header the SDK set on its requests is one the relay's preflight allows."""
    sent = {name.lower() for r in posts for name in r["headers"]} - BROWSER_SET - SAFELISTED
    url = relay.url(f"/api/{PROJECT_ID}/envelope/")
    pre = requests.options(url, timeout=30, headers={
        "Origin": site.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(sorted(sent | {"content-type"}))})
    assert pre.status_code == 200, pre.text
    allowed = {h.strip() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert sent <= allowed, (sent, allowed)


# ----------------------------------------------------------------------------------------------
# back-off under a quota, seen by the SDK and counted in its client report
# ----------------------------------------------------------------------------------------------


def quota_outcomes(kafka) -> dict[tuple[str, str, str | None], int]:
    """Project 43's outcomes, summed by (category, outcome, reason)."""
    reader = kafka.reader("outcomes")
    reader.poll(0.5)
    sums: dict[tuple[str, str, str | None], int] = {}
    for m in reader.find(lambda m: m.value.get("key_id") == QUOTA_KEY):
        v = m.value
        assert v["project_id"] == QUOTA_PROJECT, m
        key = (v["category"], v["outcome"], v.get("reason"))
        sums[key] = sums.get(key, 0) + v["quantity"]
    return sums


def test_sdk_backs_off_under_a_quota_and_its_client_report_says_so(relay, kafka, tab, site):
    dsn = f"http://{QUOTA_KEY}@127.0.0.1:{relay.port}/{QUOTA_PROJECT}"
    open_app(tab, site, dsn, f"browser-e2e@{uuid.uuid4().hex[:8]}")

    # The first error: 429, with headers the page can read.
    assert tab.page.evaluate("items => window.e2e.processOrders(items, '#0')", ORDERS)
    assert tab.page.evaluate("window.e2e.flush(10000)") is True
    tab.wait_for(lambda: tab.settled() and any(r["status"] == 429 for r in tab.envelope_posts()),
                 "a 429")
    limited = [r for r in tab.envelope_posts() if r["status"] == 429]
    assert len(limited) == 1, tab.requests
    answer = limited[0]["response_headers"]
    assert answer.get("access-control-allow-origin") == site.origin, answer
    assert answer.get("x-sentry-rate-limits", "").endswith(":error:project:e2e_quota"), answer
    assert int(answer.get("retry-after", "0")) > 0, answer
    assert "event" in envelope_item_types(limited[0]["body"])

    # Three more errors and a root span: the SDK keeps the errors to itself (it read the
    # limit's category) and still sends the span (11.x streams spans: a `span` item).
    before = len(tab.envelope_posts())
    dropped = 3
    for i in range(1, dropped + 1):
        assert tab.page.evaluate("([items, note]) => window.e2e.processOrders(items, note)",
                                 [ORDERS, f"#{i}"])
    name = f"checkout-{uuid.uuid4().hex[:8]}"
    tab.page.evaluate("name => window.e2e.transaction(name)", name)
    assert tab.page.evaluate("window.e2e.flush(10000)") is True
    tab.wait_for(lambda: tab.settled() and any(
        name.encode() in r["body"] for r in tab.envelope_posts()), "the span's request")
    later = tab.envelope_posts()[before:]
    sent_types = [t for r in later for t in envelope_item_types(r["body"])]
    assert "event" not in sent_types, later
    assert "span" in sent_types, later
    kafka.events.wait_for(
        lambda m: m.value.get("project_id") == QUOTA_PROJECT and m.value.get("type") == "span"
        and name.encode() in m.raw,
        f"span {name} of project {QUOTA_PROJECT}",
        on_timeout=lambda: "relay log:\n" + relay.log())

    # Leaving the page makes it hidden: the SDK sends its client report then, a `keepalive`
    # fetch that outlives the page (so Playwright no longer lists it among the page's
    # requests); the relay turns its counts into `client_discard` outcomes.
    tab.page.goto(f"{site.origin}/bye.html")
    backoff = ("error", "client_discard", "ratelimit_backoff")
    deadline = time.monotonic() + KAFKA_WAIT
    sums = quota_outcomes(kafka)
    while sums.get(backoff, 0) < dropped and time.monotonic() < deadline:
        sums = quota_outcomes(kafka)
    assert sums.get(backoff) == dropped, sums
    assert sums.get(("error", "rate_limited", "e2e_quota")) == 1, sums
    assert tab.cors_errors() == [], tab.console


# ----------------------------------------------------------------------------------------------
# CSP violation reports sent by the browser itself
# ----------------------------------------------------------------------------------------------


def security_messages(kafka, relay: Relay, token: str) -> list:
    """The events topic's `security` messages of project 42 whose report names `token`."""
    return kafka.events.wait_for(
        lambda m: m.value.get("type") == "security" and m.value.get("project_id") == PROJECT_ID
        and token.encode() in m.raw,
        f"a security report naming {token}",
        on_timeout=lambda: "relay log:\n" + relay.log())


def open_violating_page(tab: Tab, site: PageServer, path: str, headers: dict[str, str],
                        token: str) -> str:
    """Serves `path` with `headers` and an image its policy forbids; returns the page URL."""
    (site.root / path.lstrip("/")).write_text(
        f'<!doctype html><title>csp</title><img src="http://127.0.0.1:9/{token}.png">\n')
    site.headers[path] = headers
    url = f"{site.origin}{path}?run={token}"
    tab.page.goto(url)
    return url


def test_csp_report_uri_from_the_browser(relay, kafka, tab, site):
    token = uuid.uuid4().hex
    endpoint = relay.url(f"/api/{PROJECT_ID}/security/?sentry_key={PUBLIC_KEY}")
    url = open_violating_page(tab, site, "/csp-uri.html", {
        "Content-Security-Policy": f"img-src 'self'; report-uri {endpoint}"}, token)
    [m] = security_messages(kafka, relay, token)
    v = check_envelope_message(m, "security", None)
    assert v["item_headers"]["content_type"] == "application/csp-report", v
    report = v["payload"]["csp-report"]
    assert report["document-uri"] == url, report
    assert report["effective-directive"] == "img-src", report
    assert report["blocked-uri"].startswith("http://127.0.0.1:9"), report
    assert tab.cors_errors() == [], tab.console


def test_csp_report_to_batch_over_http(relay, kafka, site):
    """The Reporting API's form, as Chromium would deliver it: a preflight, then a batch POST.

    Not sent by the browser here: Chromium queues the `report-to` report but registers no
    endpoint from `Reporting-Endpoints` on this plain-HTTP test page (the CDP reporting events
    show the report toggling between Queued and Pending, never attempted), so the batch is
    posted with `requests`, shaped like the report the CDP events showed."""
    token = uuid.uuid4().hex
    url = f"{site.origin}/csp-to.html?run={token}"
    endpoint = relay.url(f"/api/{PROJECT_ID}/security/?sentry_key={PUBLIC_KEY}")
    pre = requests.options(endpoint, timeout=30, headers={
        "Origin": site.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200, pre.text
    assert "content-type" in pre.headers["Access-Control-Allow-Headers"], pre.headers
    csp = {"age": 5, "type": "csp-violation", "url": url, "user_agent": "HeadlessChrome/156",
           "body": {"blockedURL": "http://127.0.0.1:9/x.png", "disposition": "enforce",
                    "documentURL": url, "effectiveDirective": "img-src",
                    "originalPolicy": "img-src 'self'; report-to csp", "statusCode": 200}}
    other = {"age": 5, "type": "deprecation", "url": url, "body": {"id": token}}
    r = requests.post(endpoint, data=json.dumps([csp, other]), timeout=30, headers={
        "Origin": site.origin, "Content-Type": "application/reports+json"})
    assert r.status_code == 200 and r.json() == {}, (r.status_code, r.text)
    assert r.headers.get("Access-Control-Allow-Origin") == site.origin, r.headers
    [m] = security_messages(kafka, relay, token)
    v = check_envelope_message(m, "security", None)
    assert v["item_headers"]["content_type"] == "application/reports+json", v
    assert v["payload"] == csp, v
