#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the repository's fixtures (tests/fixtures).

The seeds are committed; run this again only when the fixtures or the input framing of a
target (relay-processing/src/fuzz_targets/) change. Deterministic: the same fixtures give the
same files. Origins of the fixtures: tests/fixtures/README.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SEEDS = Path(__file__).resolve().parent / "seeds"
KEY = "abc123def456abc123def456abc123de"
MAX_SEED = 300 * 1024  # larger fixtures only slow the fuzzer down


def write(target: str, name: str, data: bytes) -> None:
    if len(data) > MAX_SEED:
        return
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def captures():
    for sdk in ("python", "node"):
        for folder in sorted((FIXTURES / "sdk" / sdk).iterdir()):
            if folder.is_dir():
                yield f"{sdk}-{folder.name}", folder


def framed(path: str, query: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The `intake` target's framing: target line, header lines, empty line, body."""
    target = path + (f"?{query}" if query else "")
    head = "\n".join([target] + [f"{n}: {v}" for n, v in headers])
    return head.encode() + b"\n\n" + body


def envelope_items(body: bytes):
    """(headers, payload) of each item of an envelope, honouring `length` when present."""
    lines = body.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        yield header, payload


def form(boundary: str, fields: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def sdk_seeds() -> None:
    for name, folder in captures():
        meta = json.loads((folder / "headers.json").read_text())
        body = (folder / "body.bin").read_bytes()
        plain = folder / "body.decompressed.bin"
        decompressed = plain.read_bytes() if plain.is_file() else body
        headers = [(n, v) for n, v in meta["headers"] if n.lower() != "host"]
        write("intake", name, framed(meta["path"], meta["query"], headers, body))
        write("envelope", name, decompressed)
        for index, (header, payload) in enumerate(envelope_items(decompressed)):
            if header.get("type") in ("event", "transaction"):
                write("event", f"{name}-{index}", payload)
                write("intake", f"{name}-store-{index}", framed(
                    "/api/42/store/", f"sentry_key={KEY}", [("Content-Encoding", "deflate")],
                    zlib.compress(payload)))


def dumps() -> list[Path]:
    return sorted((FIXTURES / "native").glob("*/*.dmp"))


def native_seeds() -> None:
    auth = ("X-Sentry-Auth", f"Sentry sentry_key={KEY}, sentry_version=7")
    for dump in dumps():
        data = dump.read_bytes()
        stem = f"{dump.parent.name}-{dump.stem}"
        write("minidump", stem, data)
        plain = form("BoUnDaRy", [
            ("sentry", None, b'{"release":"app@1.0","tags":{"a":"b"}}'),
            ("sentry[user][id]", None, b"u1"),
            ("prod", None, b"Crashpad"),
            ("upload_file_minidump", "crash.dmp", data),
            ("log", "app.log", b"line one\nline two\n"),
        ])
        nested = form("x-b-1", [("upload_file_minidump", "crash.dmp.gz", gzip.compress(data, mtime=0))])
        write("multipart", f"{stem}-plain", plain)
        write("multipart", f"{stem}-gzip", nested)
        ct = ("Content-Type", "multipart/form-data; boundary=BoUnDaRy")
        write("intake", f"minidump-{stem}-form", framed("/api/42/minidump/", "", [auth, ct], plain))
        write("intake", f"minidump-{stem}-raw-gzip", framed(
            "/api/42/minidump/", "", [auth, ("Content-Encoding", "gzip")], gzip.compress(data, mtime=0)))
    for sym in sorted((FIXTURES / "native").rglob("*.sym")):
        text = sym.read_bytes()
        addresses = b"".join(struct.pack("<Q", a) for a in (0x1000, 0x10c0, 0x2a3b, 0xdc15))
        write("breakpad", f"{sym.parent.parent.name}-{sym.parent.name[:8]}-{sym.name}",
              text + b"\0" + addresses)


def sourcemap_seeds() -> None:
    js = FIXTURES / "js"
    for map_file in sorted(js.rglob("*.map")):
        minified = None
        for candidate in (map_file.with_suffix(""), map_file.with_name(map_file.name[: -len(".map")] + ".js")):
            if candidate.is_file() and candidate != map_file:
                minified = candidate
                break
        positions = b"".join(struct.pack("<II", line, col)
                             for line, col in ((1, 1), (1, 40), (1, 183), (2, 44), (6, 100)))
        source = minified.read_bytes() if minified else b""
        edits = bytes([7, 0, 0x20, 40, 0, 1, 3])
        name = "-".join(map_file.relative_to(js).parts)
        write("sourcemap", name, map_file.read_bytes() + b"\0" + source + b"\0" + positions + edits)


def security_seeds() -> None:
    """CSP reports in both forms browsers send to the security endpoint."""
    query = f"sentry_key={KEY}"
    report_uri = json.dumps({"csp-report": {
        "document-uri": "http://127.0.0.1:8000/", "violated-directive": "img-src",
        "effective-directive": "img-src", "original-policy": "img-src 'self'",
        "blocked-uri": "http://127.0.0.1:9/x.png", "disposition": "enforce"}}).encode()
    write("intake", "security-report-uri", framed(
        "/api/42/security/", query, [("Content-Type", "application/csp-report")], report_uri))
    batch = json.dumps([
        {"type": "csp-violation", "age": 1, "url": "http://127.0.0.1:8000/", "user_agent": "x",
         "body": {"blockedURL": "inline", "effectiveDirective": "script-src-elem"}},
        {"type": "deprecation", "age": 1, "url": "http://127.0.0.1:8000/", "body": {"id": "x"}},
    ]).encode()
    write("intake", "security-report-to", framed(
        "/api/42/security/", query, [("Content-Type", "application/reports+json")], batch))


def structured_seeds() -> None:
    # Arbitrary bytes: the target builds an event from whatever it is given.
    seed = b"relay"
    for index in range(8):
        data = b""
        while len(data) < 256 * (index + 1):
            seed = hashlib.sha256(seed).digest()
            data += seed
        write("event_structured", f"sha256-chain-{index}", data)


def upload_seeds() -> None:
    # Chunk forms as sentry-cli sends them (gzip'd `file_gzip` parts named by their SHA-1, and a
    # plain `file` part), then the assemble requests it sends (the names and ids of the fixtures).
    boundary = "------------------------z0rWLzYBsqBx3Xt1DpWusa"
    parts = []
    for name in ("linux-x86_64/symbols/crash/C0BCC3F19827FE653058404B2831D9E60/crash.sym",
                 "rust-minidump/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"):
        data = (FIXTURES / "native" / name).read_bytes()[:64 * 1024]
        parts.append(("file_gzip", hashlib.sha1(data).hexdigest(), gzip.compress(data, mtime=0)))
    parts.append(("file", hashlib.sha1(b"plain chunk").hexdigest(), b"plain chunk"))
    for index in range(len(parts)):
        body = form(boundary, parts[:index + 1])
        write("upload", f"chunk-form-{index + 1}", boundary.encode() + b"\0" + body)
    sha1 = hashlib.sha1(b"plain chunk").hexdigest()
    difs = {sha1: {"name": "crash.debug", "debug_id": "c0bcc3f1-9827-fe65-3058-404b2831d9e6",
                   "chunks": [sha1]}}
    write("upload", "difs-assemble", json.dumps(difs, separators=(",", ":")).encode())
    bundle = {"checksum": sha1, "chunks": [sha1], "projects": ["web"]}
    write("upload", "bundle-assemble", json.dumps(bundle, separators=(",", ":")).encode())
    bundle.update(version="app@1.2.3", dist="d1")
    write("upload", "bundle-assemble-release", json.dumps(bundle, separators=(",", ":")).encode())


def main() -> None:
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    sdk_seeds()
    native_seeds()
    sourcemap_seeds()
    security_seeds()
    structured_seeds()
    upload_seeds()
    for folder in sorted(SEEDS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
