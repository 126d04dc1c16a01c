"""Uploads end to end (issue 18): the real npm sentry-cli uploads to the real relay binary,
and the next events use what it uploaded, without a restart and with no symbol directory or
artifact directory configured.

- `debug-files upload` of the Linux fixture's DWARF file (`crash.debug`): a minidump sent
  before the upload comes out of Kafka with the app's frames `missing_symbol`; the same dump
  after it, symbolicated with inlines from the uploaded file. The same for the Windows PDB.
  A second upload finds everything on the server; the listing shows the files; after a
  restart they are still used.
- An esbuild bundle, `sentry-cli sourcemaps inject` + `sourcemaps upload` (without and with
  `--release`), then a real @sentry/node error thrown in it: original functions, files and
  lines on Kafka, resolved by debug id.
- Refusals: a wrong token is answered 401 (sentry-cli prints the detail) and nothing is
  stored; a token of another organization 403; a file over `uploads.max_file_bytes` is refused
  and nothing is stored; a chunk whose bytes do not have its SHA-1 is refused.

The expectations of the native frames are test_symbolication.py's (the fixture README's).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from e2e_lib import (
    FIXTURES_DIR,
    KAFKA_WAIT,
    UPLOAD_ORG,
    UPLOAD_PROJECT,
    UPLOAD_TOKEN,
    Relay,
    check_envelope_message,
    curl_minidump,
    exception_values,
    gzip_bytes,
    one_event,
    run_client,
    sentry_cli,
    upload_api,
    upload_config,
)
from test_symbolication import (
    ESBUILD,
    INDEX_JS,
    NODE_CLIENT,
    NODE_INPUT,
    ORDERS_JS,
    assert_crash_frames,
    base_name,
    bundle_frames,
    copy_dump,
    crashed_thread,
    frame_summary,
    images,
    node_bin,
    parse_stack,
)

NATIVE = FIXTURES_DIR / "native"
LINUX_DUMP = NATIVE / "linux-x86_64" / "linux.dmp"
LINUX_DEBUG = NATIVE / "linux-x86_64" / "crash.debug"
WINDOWS_DUMP = NATIVE / "windows-x86" / "windows.dmp"
WINDOWS_PDB = NATIVE / "windows-x86" / "crash.pdb"

OTHER_ORG_TOKEN = "e2e-upload-token-other-0123456789abcdef012"
DSYMS = f"/api/0/projects/{UPLOAD_ORG}/{UPLOAD_PROJECT}/files/dsyms/"
BUNDLES = f"/api/0/projects/{UPLOAD_ORG}/{UPLOAD_PROJECT}/files/artifact-bundles/"

NATIVE_UPLOADS = {
    # innermost first: (function, file, line, inlined); test_symbolication.py's Linux case
    "linux-dwarf": dict(
        dump=LINUX_DUMP, debug_file=LINUX_DEBUG, package="crash",
        expected=[("crash", "main.cpp", 23, True), ("start", "main.cpp", 27, True),
                  ("main", "main.cpp", 35, False)],
        caller_package="libc-2.23.so",
        image=dict(code_file="crash", debug_id="c0bcc3f1-9827-fe65-3058-404b2831d9e6",
                   type="elf"),
    ),
    # tests/fixtures/README.md, "With crash.pdb (inlinee records)"
    "windows-pdb": dict(
        dump=WINDOWS_DUMP, debug_file=WINDOWS_PDB, package="crash.exe",
        expected=[("crash", "main.cpp", 24, True), ("start", "main.cpp", 28, True),
                  ("main", "main.cpp", 35, False), ("invoke_main", "exe_common.inl", 78, True),
                  ("__scrt_common_main_seh", "exe_common.inl", 283, False)],
        caller_package="kernel32.dll",
        image=dict(code_file="crash.exe", debug_id="3249d99d-0c40-4931-8610-f4e4fb0b6936-1",
                   type="pe"),
    ),
}


@pytest.fixture(scope="module")
def relay_module(tansu, tmp_path_factory):
    """Overrides conftest's: project 42 (`web`) in organization `acme`, no symbol sources."""
    extra = upload_config(other_orgs=[(8, "other", OTHER_ORG_TOKEN)])
    relay = Relay(tmp_path_factory.mktemp("relay-uploads"), tansu.bootstrap,
                  extra_config=extra).start()
    try:
        yield relay
    finally:
        relay.stop()


def stored_files(relay: Relay) -> list[str]:
    """Every file under data_dir/uploads except the chunks waiting for assembly."""
    root = relay.data_dir / "uploads"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.parent.name != "chunks")


def chunk_files(relay: Relay) -> list[Path]:
    return sorted((relay.data_dir / "uploads" / "chunks").glob("*"))


def listed(relay: Relay, path: str) -> list[dict]:
    r = upload_api(relay, "GET", path)
    assert r.status_code == 200, r.text
    return r.json()


def minidump_event(relay: Relay, kafka, dump: Path, tmp_path: Path) -> dict:
    eid = curl_minidump(relay, copy_dump(dump, tmp_path), f'sentry={{"release":"up@{uuid.uuid4().hex[:6]}"}}')
    return check_envelope_message(one_event(kafka, eid, "event", relay=relay, timeout=120),
                                  "event", eid)["event"]


def app_image(ev: dict, code_file: str) -> dict:
    found = [i for i in images(ev) if base_name(i.get("code_file")) == code_file]
    assert len(found) == 1, [i.get("code_file") for i in images(ev)]
    return found[0]


def assert_symbolicated(ev: dict, case: dict, what: str) -> None:
    exc = exception_values(ev)[0]
    frames = (exc.get("stacktrace") or {}).get("frames")
    caller = assert_crash_frames(frames, case["expected"], case["package"], what)
    assert base_name(caller.get("package")) == case["caller_package"], frame_summary(frames)
    assert caller.get("status") == "missing_symbol", caller
    thread = crashed_thread(ev)
    assert_crash_frames((thread.get("stacktrace") or {}).get("frames"), case["expected"],
                        case["package"], f"{what} (crashed thread)")
    image = app_image(ev, case["image"]["code_file"])
    assert image.get("type") == case["image"]["type"], image
    assert str(image.get("debug_id")).lower() == case["image"]["debug_id"], image
    assert image.get("debug_status") == "found", image


# ----------------------------------------------------------------------------------------------
# native: debug-files upload, then minidumps
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(NATIVE_UPLOADS))
def test_debug_files_upload_symbolicates_the_next_minidump(relay, kafka, tmp_path, case):
    c = NATIVE_UPLOADS[case]
    # Before: nothing for the app's module (and the store remembers the miss).
    before = minidump_event(relay, kafka, c["dump"], tmp_path)
    image = app_image(before, c["image"]["code_file"])
    assert image.get("debug_status") == "missing", image
    frames = (exception_values(before)[0].get("stacktrace") or {}).get("frames") or []
    app = [f for f in frames if base_name(f.get("package")) == c["package"]]
    assert app and all(f.get("status") == "missing_symbol" for f in app), frame_summary(frames)

    # The upload, as a build pipeline runs it.
    r = sentry_cli(relay, "debug-files", "upload", str(c["debug_file"]))
    debug_id = c["image"]["debug_id"]
    assert f"OK {debug_id}" in r.stdout + r.stderr, r.stdout + r.stderr
    sha1 = hashlib.sha1(c["debug_file"].read_bytes()).hexdigest()
    stored = [d for d in listed(relay, DSYMS) if d["sha1"] == sha1]
    assert len(stored) == 1 and stored[0]["debugId"] == debug_id, stored
    assert stored[0]["objectName"] == c["debug_file"].name
    assert "debug" in stored[0]["data"]["features"], stored

    # Idempotent: the second run finds the file on the server and sends no chunk.
    again = sentry_cli(relay, "debug-files", "upload", str(c["debug_file"]))
    assert "all files are on the server" in again.stdout + again.stderr, again.stdout
    assert not chunk_files(relay), chunk_files(relay)

    # After: the same dump, symbolicated from the uploaded file, with its inline frames.
    after = minidump_event(relay, kafka, c["dump"], tmp_path)
    assert_symbolicated(after, c, f"{case} after upload")


def test_uploaded_debug_files_survive_a_restart(relay, kafka, tmp_path):
    """Runs after the uploads above: the files are on disk and indexed again at start."""
    names = {d["objectName"] for d in listed(relay, DSYMS)}
    assert {"crash.debug", "crash.pdb"} <= names, names
    relay.stop()
    relay.start()
    assert {d["objectName"] for d in listed(relay, DSYMS)} == names
    after = minidump_event(relay, kafka, LINUX_DUMP, tmp_path)
    assert_symbolicated(after, NATIVE_UPLOADS["linux-dwarf"], "linux after restart")


# ----------------------------------------------------------------------------------------------
# JavaScript: esbuild, sourcemaps inject + upload, a real @sentry/node error
# ----------------------------------------------------------------------------------------------


def build_app(root: Path, variant: str) -> dict:
    """Bundles + minifies the app with esbuild, injects debug ids with sentry-cli."""
    (root / "src").mkdir(parents=True)
    # `variant` changes the bundle's bytes, so each build gets its own debug id.
    (root / "src" / "orders.js").write_text(ORDERS_JS + f"\n// build {variant}\n")
    (root / "src" / "index.js").write_text(INDEX_JS)
    dist = root / "dist"
    r = subprocess.run(
        [str(ESBUILD), "src/index.js", "--bundle", "--minify", "--sourcemap",
         "--platform=node", "--format=cjs", "--target=node18",
         f"--outfile={dist / 'app.min.js'}", "--log-level=warning"],
        cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"esbuild failed:\n{r.stdout}\n{r.stderr}"
    return {"root": root, "dist": dist, "bundle": dist / "app.min.js"}


def inject(relay: Relay, app: dict) -> str:
    """`sourcemaps inject`: the bundle and its map get the same debug id."""
    sentry_cli(relay, "sourcemaps", "inject", str(app["dist"]))
    text = app["bundle"].read_text()
    debug_id = text.rsplit("//# debugId=", 1)[-1].strip()
    assert len(debug_id) == 36, text[-200:]
    source_map = json.loads((app["dist"] / "app.min.js.map").read_text())
    assert debug_id in (source_map.get("debug_id"), source_map.get("debugId")), source_map.keys()
    assert "_sentryDebugIds" in text
    return debug_id


def oracle(node: str, app: dict) -> list[dict]:
    """Node's own source-map support on the same throw: the expected lines and columns."""
    probe = subprocess.run(
        [node, "--enable-source-maps", "-e",
         "try { require(process.argv[1]).processBatch(JSON.parse(process.argv[2])) }"
         " catch (e) { console.log(e.stack) }", str(app["bundle"]), NODE_INPUT],
        capture_output=True, text=True, timeout=60, cwd=app["root"])
    assert probe.returncode == 0, probe.stderr
    src = str(app["root"] / "src")
    frames = [f for f in parse_stack(probe.stdout) if f["file"].startswith(src)]
    assert [Path(f["file"]).name for f in frames] == ["orders.js", "orders.js", "index.js"], \
        probe.stdout
    return frames


def assert_resolved_by_debug_id(relay, kafka, node: str, app: dict, debug_id: str) -> None:
    sent = run_client([node, str(NODE_CLIENT), relay.dsn, str(app["bundle"]), NODE_INPUT],
                      {"E2E_RUN_ID": uuid.uuid4().hex[:12]})
    # The SDK found the injected id and sent it for the bundle's path.
    images_sent = (sent["sent_debug_meta"] or {}).get("images") or []
    assert {"type": "sourcemap", "code_file": str(app["bundle"]), "debug_id": debug_id} in \
        images_sent, images_sent
    ev = check_envelope_message(one_event(kafka, sent["exception"], "event", relay=relay),
                                "event", sent["exception"])["event"]
    values = [x for x in exception_values(ev) if x.get("type") == "RangeError"]
    assert len(values) == 1, exception_values(ev)
    frames = (values[0].get("stacktrace") or {}).get("frames") or []
    resolved = bundle_frames(frames, app["bundle"], raw=True)
    assert len(resolved) == 3, json.dumps(frames, indent=1)[:6000]
    expected_lines = oracle(node, app)
    src = app["root"] / "src"
    expected = [("validateQuantity", src / "orders.js"), ("parseOrder", src / "orders.js"),
                ("processBatch", src / "index.js")]
    for f, (function, path), line in zip(reversed(resolved), expected, expected_lines):
        ctx = json.dumps(f, indent=1)
        data = f.get("data") or {}
        assert f.get("function") == function, ctx
        assert f.get("abs_path") == str(path), ctx
        assert f.get("lineno") == line["line"], ctx
        assert f.get("colno") == line["col"], ctx
        assert f.get("context_line") == path.read_text().splitlines()[line["line"] - 1], ctx
        assert data.get("resolved_with") == "debug_id", ctx
        assert data.get("sourcemap") == f"debug-id://{debug_id}/" + \
            data.get("sourcemap_origin", ""), ctx
        assert str(data.get("sourcemap_origin", "")).endswith(".zip!files/_/_/app.min.js.map"), ctx
        assert data.get("sourcemap_status") == "symbolicated", ctx


@pytest.mark.parametrize("release", [None, "web@2.0.0"])
def test_sourcemaps_upload_resolves_node_errors_by_debug_id(relay, kafka, tmp_path, release):
    node = node_bin()
    app = build_app(tmp_path / "app", release or "no-release")
    debug_id = inject(relay, app)
    before = {b["bundleId"] for b in listed(relay, BUNDLES)}
    args = ["sourcemaps", "upload", str(app["dist"])]
    if release:
        args += ["--release", release]
    r = sentry_cli(relay, *args)
    assert f"debug id {debug_id}" in r.stdout, r.stdout
    new = [b for b in listed(relay, BUNDLES) if b["bundleId"] not in before]
    assert len(new) == 1, new
    assert new[0]["release"] == release and new[0]["fileCount"] == 2, new
    # at once: no restart, no wait for the artifact index to refresh
    assert_resolved_by_debug_id(relay, kafka, node, app, debug_id)


# ----------------------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------------------


def test_wrong_or_foreign_token_is_refused_and_nothing_is_stored(relay, tmp_path):
    stored = stored_files(relay)
    pdb = tmp_path / "wrong-token.pdb"
    shutil.copyfile(WINDOWS_PDB, pdb)
    r = sentry_cli(relay, "debug-files", "upload", str(pdb),
                   token="not-the-token-0123456789abcdef0123456789", check=False)
    assert r.returncode != 0, r.stdout
    assert "invalid upload token" in r.stderr and "401" in r.stderr, r.stderr
    assert stored_files(relay) == stored and not chunk_files(relay)

    r = sentry_cli(relay, "sourcemaps", "upload", str(tmp_path), token=OTHER_ORG_TOKEN,
                   check=False)
    assert r.returncode != 0
    assert "not allowed for organization" in r.stderr and "403" in r.stderr, r.stderr

    options = f"/api/0/organizations/{UPLOAD_ORG}/chunk-upload/"
    for token, status in [(None, 401), ("x" * 40, 401), (OTHER_ORG_TOKEN, 403)]:
        answer = upload_api(relay, "GET", options, token=token)
        assert answer.status_code == status, answer.text
        assert answer.json()["detail"], answer.text
        assert "e2e-upload-token" not in answer.text
    assert upload_api(relay, "GET", options).json()["chunkSize"] > 0
    assert UPLOAD_TOKEN not in relay.log() and OTHER_ORG_TOKEN not in relay.log()
    assert stored_files(relay) == stored


def chunk_form(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A chunk upload body as sentry-cli sends it: gzip'd parts named `file_gzip`."""
    boundary = "e2e" + uuid.uuid4().hex
    body = b""
    for name, data in parts:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file_gzip\"; "
                 f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 ).encode() + gzip_bytes(data) + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_corrupt_chunk_is_refused(relay):
    good, bad = b"a good chunk", b"a tampered chunk"
    body, content_type = chunk_form([(hashlib.sha1(good).hexdigest(), good),
                                     (hashlib.sha1(b"what was meant").hexdigest(), bad)])
    r = upload_api(relay, "POST", f"/api/0/organizations/{UPLOAD_ORG}/chunk-upload/",
                   data=body, headers={"Content-Type": content_type})
    assert r.status_code == 400, r.text
    assert "corrupt" in r.json()["detail"], r.text
    assert not chunk_files(relay), "nothing of a refused request is kept"


def test_file_over_max_file_bytes_is_refused_and_nothing_is_stored(tansu, tmp_path):
    limit = 600_000
    data = LINUX_DEBUG.read_bytes()
    assert len(data) > limit
    relay = Relay(tmp_path / "relay", tansu.bootstrap,
                  extra_config=upload_config(uploads={"max_file_bytes": limit})).start()
    try:
        options = upload_api(relay, "GET", f"/api/0/organizations/{UPLOAD_ORG}/chunk-upload/")
        assert options.json()["maxFileSize"] == limit, options.text

        # sentry-cli reads maxFileSize and refuses to send the file.
        r = sentry_cli(relay, "debug-files", "upload", str(LINUX_DEBUG), check=False)
        assert r.returncode != 0, r.stdout
        assert "exceeds the maximum allowed size" in r.stderr, r.stderr
        assert stored_files(relay) == [] and not chunk_files(relay), r.stdout + r.stderr

        # A client that sends it anyway: the chunk is taken, the file is refused.
        sha1 = hashlib.sha1(data).hexdigest()
        body, content_type = chunk_form([(sha1, data)])
        r = upload_api(relay, "POST", f"/api/0/organizations/{UPLOAD_ORG}/chunk-upload/",
                       data=body, headers={"Content-Type": content_type})
        assert r.status_code == 200, r.text
        r = upload_api(relay, "POST",
                       f"/api/0/projects/{UPLOAD_ORG}/{UPLOAD_PROJECT}/files/difs/assemble/",
                       json={sha1: {"name": "crash.debug", "chunks": [sha1]}})
        assert r.status_code == 200, r.text
        answer = r.json()[sha1]
        assert answer["state"] == "error", answer
        assert "uploads.max_file_bytes" in answer["detail"], answer
        assert stored_files(relay) == [], stored_files(relay)
        assert not chunk_files(relay), "the refused file's chunks are deleted"
        assert listed(relay, DSYMS) == []

        # Past the number of chunks the limit allows: refused before any chunk is sent.
        r = upload_api(relay, "POST",
                       f"/api/0/projects/{UPLOAD_ORG}/{UPLOAD_PROJECT}/files/difs/assemble/",
                       json={sha1: {"name": "crash.debug", "chunks": [sha1, sha1]}})
        assert r.status_code == 413 and "max_file_bytes" in r.json()["detail"], r.text
    finally:
        relay.stop()
