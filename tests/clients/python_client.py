#!/usr/bin/env python3
"""Send real sentry-python SDK traffic to a DSN and print what was sent as JSON.

Usage: python_client.py DSN
Environment:
  E2E_RUN_ID          unique token woven into messages/release (default: random)
  E2E_ATTACHMENT_BIN  path of a binary file to attach (default: small built-in bytes)
  E2E_ATTACHMENT_TXT  path of a text file to attach (default: built-in text)
  E2E_PY_COMPRESSION  transport compression: gzip (default), br, or none
  E2E_SCENARIOS       comma-separated subset of the scenarios below (default: all)
  E2E_CA_CERTS        CA bundle for an https:// DSN (sentry-python's ca_certs option)

Scenarios, all in one process, in this order:
  message      sentry_sdk.capture_message
  exception    capture_exception of a ZeroDivisionError
  transaction  start_transaction + child span (traces_sample_rate=1.0)
  attachments  capture_message with two scope attachments (bytes + text)
  session      isolation-scope start_session / end_session around an error event
then flush(). Prints one JSON object on stdout (event ids as 32 hex, names, release).
"""

import json
import os
import sys
import time
import uuid

import sentry_sdk

DSN = sys.argv[1] if len(sys.argv) > 1 else os.environ["SENTRY_DSN"]
RUN_ID = os.environ.get("E2E_RUN_ID") or uuid.uuid4().hex[:12]
RELEASE = f"e2e-python@1.0.0+{RUN_ID}"

COMPRESSION = os.environ.get("E2E_PY_COMPRESSION", "gzip")
SCENARIOS = set(filter(None, os.environ.get(
    "E2E_SCENARIOS", "message,exception,transaction,attachments,session").split(",")))

transactions_sent = {}


def before_send_transaction(event, hint):
    transactions_sent[event.get("transaction")] = event.get("event_id")
    return event


sentry_sdk.init(
    dsn=DSN,
    release=RELEASE,
    environment="e2e",
    traces_sample_rate=1.0,
    send_client_reports=False,
    before_send_transaction=before_send_transaction,
    debug=bool(os.environ.get("E2E_SDK_DEBUG")),
    # "none" is not an algorithm sentry-python knows: it then sends uncompressed bodies.
    _experiments={"transport_compression_algo": COMPRESSION},
    ca_certs=os.environ.get("E2E_CA_CERTS") or None,
)

out = {"run_id": RUN_ID, "release": RELEASE, "sdk": sentry_sdk.VERSION,
       "compression": COMPRESSION}


def scenario_message():
    out["message_text"] = f"e2e python message {RUN_ID}"
    out["message"] = sentry_sdk.capture_message(out["message_text"])


def scenario_exception():
    try:
        1 / 0
    except ZeroDivisionError:
        out["exception"] = sentry_sdk.capture_exception()


def scenario_transaction():
    out["transaction_name"] = f"e2e-python-transaction-{RUN_ID}"
    tx = sentry_sdk.start_transaction(name=out["transaction_name"], op="task")
    with tx:
        with tx.start_child(op="db", name="SELECT 1"):
            time.sleep(0.01)
    out["transaction"] = transactions_sent.get(out["transaction_name"])


def scenario_attachments():
    bin_path = os.environ.get("E2E_ATTACHMENT_BIN")
    txt_path = os.environ.get("E2E_ATTACHMENT_TXT")
    bin_data = open(bin_path, "rb").read() if bin_path else b"hi\x00\x01\x02"
    txt_data = open(txt_path, "rb").read() if txt_path else f"hello {RUN_ID}\n".encode()
    out["attachment_text"] = f"e2e python attachments {RUN_ID}"
    with sentry_sdk.new_scope() as scope:
        scope.add_attachment(bytes=bin_data, filename="hello.bin",
                             content_type="application/octet-stream")
        scope.add_attachment(bytes=txt_data, filename="hello.txt", content_type="text/plain")
        out["attachments"] = sentry_sdk.capture_message(out["attachment_text"])
    out["attachment_sizes"] = {"hello.bin": len(bin_data), "hello.txt": len(txt_data)}


def scenario_session():
    # release health: an application-mode session around an error event
    iso = sentry_sdk.get_isolation_scope()
    iso.start_session(session_mode="application")
    session = getattr(iso, "_session", None)
    out["session_sid"] = str(session.sid) if session is not None else None
    try:
        {}["missing"]
    except KeyError:
        out["session_event"] = sentry_sdk.capture_exception()
    iso.end_session()


for name in ("message", "exception", "transaction", "attachments", "session"):
    if name in SCENARIOS:
        globals()[f"scenario_{name}"]()

sentry_sdk.flush(timeout=15)
print(json.dumps(out), flush=True)
