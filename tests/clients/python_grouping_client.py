#!/usr/bin/env python3
"""Send events of known kinds through the real sentry-python SDK, for the grouping e2e test.

Usage: python_grouping_client.py DSN
Environment: E2E_RUN_ID (woven into the release), E2E_PER_KIND (default 10), E2E_PACE_SECS
(pause after every third round, default 0).

In one process, in this order (the first three kinds interleaved, one of each per round):
  zero_division  E2E_PER_KIND x ZeroDivisionError raised in compute_ratio(), called from three
                 different lines of zero_division_case()
  key_error      E2E_PER_KIND x KeyError raised in lookup_account()
  message        E2E_PER_KIND x capture_message(f"grouping e2e: user {i} logged in")
  localhost      one message with user.ip_address 127.0.0.1 (an isolated scope)
  password       one ValueError raised in authenticate(), which holds a generated secret in
                 its local variable `password` (include_local_variables=True)
then flush(). Prints one JSON object on stdout.

The SDK would scrub `password` itself (its EventScrubber denylist), so the client installs an
EventScrubber with an empty denylist: the secret really leaves the process, and only the relay
stands between it and Kafka. before_send records, for the password event, whether the secret
is in the frame's vars as sent. The secret is generated at run time (never in the source, whose
lines travel as context, nor in argv, which the SDK sends as extra `sys.argv`).
"""

import json
import os
import secrets
import sys
import time
import uuid

import sentry_sdk
from sentry_sdk.scrubber import EventScrubber

DSN = sys.argv[1] if len(sys.argv) > 1 else os.environ["SENTRY_DSN"]
RUN_ID = os.environ.get("E2E_RUN_ID") or uuid.uuid4().hex[:12]
RELEASE = f"e2e-grouping@1.0.0+{RUN_ID}"
PER_KIND = int(os.environ.get("E2E_PER_KIND", "10"))
PACE = float(os.environ.get("E2E_PACE_SECS", "0"))

OUT = {"run_id": RUN_ID, "release": RELEASE, "sdk": sentry_sdk.VERSION, "per_kind": PER_KIND,
       "ids": {"zero_division": [], "key_error": [], "message": []}}
SENT = {}


def before_send(event, hint):
    exc = (event.get("exception") or {}).get("values") or []
    if exc and exc[-1].get("type") == "ValueError":
        frames = (exc[-1].get("stacktrace") or {}).get("frames") or []
        auth = [f for f in frames if f.get("function") == "authenticate"]
        if auth:
            SENT["password_var"] = (auth[-1].get("vars") or {}).get("password")
    return event


sentry_sdk.init(
    dsn=DSN,
    release=RELEASE,
    environment="e2e",
    send_client_reports=False,
    send_default_pii=True,
    include_local_variables=True,
    event_scrubber=EventScrubber(denylist=[], send_default_pii=True),
    before_send=before_send,
    debug=bool(os.environ.get("E2E_SDK_DEBUG")),
)


# --- kind 1: ZeroDivisionError, same function, different call lines --------------------------


def compute_ratio(total, count):
    return total / count


def zero_division_case(i):
    if i % 3 == 0:
        return compute_ratio(i, 0)
    if i % 3 == 1:
        return compute_ratio(i * 2, 0)
    return compute_ratio(
        i * 3,
        0,
    )


# --- kind 2: KeyError from another function ----------------------------------------------------


def lookup_account(accounts, name):
    return accounts[name]


# --- the secret --------------------------------------------------------------------------------


def new_password():
    return "pw-" + secrets.token_hex(16)


def authenticate(username):
    password = new_password()  # noqa: F841 (a frame variable the SDK sends)
    raise ValueError(f"authentication failed for {username}")


def main():
    # The kinds interleaved, round by round; with E2E_PACE_SECS the client pauses after every
    # third round, so the events of each kind span several issue windows.
    for i in range(PER_KIND):
        try:
            zero_division_case(i)
        except ZeroDivisionError:
            OUT["ids"]["zero_division"].append(sentry_sdk.capture_exception())
        try:
            lookup_account({"alice": 1}, f"user-{i}")
        except KeyError:
            OUT["ids"]["key_error"].append(sentry_sdk.capture_exception())
        text = f"grouping e2e: user {i} logged in"
        OUT["ids"]["message"].append(sentry_sdk.capture_message(text))
        if PACE and i % 3 == 2:
            time.sleep(PACE)

    with sentry_sdk.new_scope() as scope:
        scope.set_user({"ip_address": "127.0.0.1", "id": "local-dev"})
        OUT["localhost"] = sentry_sdk.capture_message(f"grouping e2e: from localhost {RUN_ID}")

    try:
        authenticate("alice")
    except ValueError:
        OUT["password_event"] = sentry_sdk.capture_exception()

    sentry_sdk.flush(timeout=30)


main()
var = SENT.get("password_var")
OUT["password_var_sent"] = var
OUT["secret"] = var.strip("'\"") if isinstance(var, str) else None
print(json.dumps(OUT))
