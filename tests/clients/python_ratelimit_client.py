#!/usr/bin/env python3
"""Drive the real sentry-python SDK into a rate limit and print what happened as JSON.

Usage: python_ratelimit_client.py DSN
Environment:
  E2E_RUN_ID       unique token woven into messages/release (default: random)
  E2E_ERRORS       error events to capture (default 20)
  E2E_TRANSACTIONS transactions to send (default 5), spread evenly among the errors
  E2E_SDK_DEBUG    set for the SDK's debug log on stderr
  E2E_PACE_SECS    pause after each error (default 0): an app's errors spread over time,
                   so that a relay in between hears back from its upstream in the meantime

The SDK runs with its defaults for what matters here: the HTTP transport's background worker
sends one envelope at a time, client reports are on (`send_client_reports=True`), and
`flush()` forces out the pending client report. Errors alternate between capture_message and
capture_exception. Transactions (traces_sample_rate=1.0) are interleaved so that most of them
go out while errors are already limited.

To show what the SDK did on the wire, the transport's response handler is wrapped (it still
runs unchanged): for every HTTP response it records the envelope's item types, the status, the
`Retry-After`/`X-Sentry-Rate-Limits` headers (and all headers, and the body of non-2xx answers),
and the payloads of client_report items. Prints one JSON object on stdout.
"""

import json
import os
import sys
import time
import uuid

import sentry_sdk
from sentry_sdk import transport as sentry_transport

DSN = sys.argv[1] if len(sys.argv) > 1 else os.environ["SENTRY_DSN"]
RUN_ID = os.environ.get("E2E_RUN_ID") or uuid.uuid4().hex[:12]
RELEASE = f"e2e-python-ratelimit@1.0.0+{RUN_ID}"
N_ERRORS = int(os.environ.get("E2E_ERRORS", "20"))
N_TRANSACTIONS = int(os.environ.get("E2E_TRANSACTIONS", "5"))
PACE_SECS = float(os.environ.get("E2E_PACE_SECS", "0"))

requests_seen = []  # one entry per HTTP response the SDK got
_orig_handle_response = sentry_transport.HttpTransportCore._handle_response


def _observing_handle_response(self, response, envelope):
    try:
        entry = {
            "status": response.status,
            "retry_after": self._get_header_value(response, "Retry-After"),
            "rate_limits": self._get_header_value(response, "X-Sentry-Rate-Limits"),
            "headers": {k.lower(): v for k, v in dict(response.headers).items()},
            "items": [],
            "client_reports": [],
        }
        if response.status >= 300:
            body = getattr(response, "data", None)
            entry["body"] = body.decode("utf-8", "replace")[:300] if body else None
        for item in (envelope.items if envelope is not None else []):
            entry["items"].append(item.type)
            if item.type == "client_report":
                entry["client_reports"].append(json.loads(item.get_bytes()))
        requests_seen.append(entry)
    except Exception as e:  # observation must never change what the SDK does
        requests_seen.append({"observer_error": repr(e)})
    return _orig_handle_response(self, response, envelope)


sentry_transport.HttpTransportCore._handle_response = _observing_handle_response

transactions_sent = {}


def before_send_transaction(event, hint):
    transactions_sent[event.get("transaction")] = event.get("event_id")
    return event


sentry_sdk.init(
    dsn=DSN,
    release=RELEASE,
    environment="e2e",
    traces_sample_rate=1.0,
    send_client_reports=True,
    before_send_transaction=before_send_transaction,
    debug=bool(os.environ.get("E2E_SDK_DEBUG")),
)

transport = sentry_sdk.get_client().transport
out = {
    "run_id": RUN_ID,
    "release": RELEASE,
    "sdk": sentry_sdk.VERSION,
    "transport": type(transport).__name__ if transport is not None else None,
    "errors": [],
    "transactions": [],
}

# Transaction k goes out after error (k + 1) * N_ERRORS / N_TRANSACTIONS.
tx_after = {((k + 1) * N_ERRORS) // max(N_TRANSACTIONS, 1) for k in range(N_TRANSACTIONS)}

for i in range(1, N_ERRORS + 1):
    if i % 2:
        eid = sentry_sdk.capture_message(f"e2e ratelimit message {i} {RUN_ID}", level="error")
    else:
        try:
            raise ValueError(f"e2e ratelimit exception {i} {RUN_ID}")
        except ValueError:
            eid = sentry_sdk.capture_exception()
    out["errors"].append(eid)
    if PACE_SECS:
        time.sleep(PACE_SECS)
    if i in tx_after:
        name = f"e2e-ratelimit-tx-{len(out['transactions']) + 1}-{RUN_ID}"
        with sentry_sdk.start_transaction(name=name, op="task"):
            with sentry_sdk.start_span(op="db", name="SELECT 1"):
                pass
        out["transactions"].append({"name": name, "event_id": transactions_sent.get(name)})

# flush() submits a forced client report (with the ratelimit_backoff discards) and waits.
sentry_sdk.flush(timeout=20)
out["requests"] = requests_seen
print(json.dumps(out), flush=True)
