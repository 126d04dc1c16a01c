#!/usr/bin/env bash
# The project's single test command (also what CI runs via .ci/run).
#
#   scripts/test.sh                 Rust checks (fmt, clippy, unit tests), build, end-to-end suite
#   scripts/test.sh --e2e-only      skip fmt/clippy/cargo test; still builds the relay binary
#   scripts/test.sh [--e2e-only] -- PYTEST_ARGS...   extra arguments for pytest (e.g. -k minidump)
#
# Works on a fresh machine (installs what is missing) and is quick on a warm one. Caches:
#   $CARGO_TARGET_DIR (default ~/.cache/relay-target)   the one (debug) build of the workspace
#   ~/.cache/relay-ci/tansu/bin/tansu                   Kafka-protocol broker used by the e2e tests
#   ~/.cache/relay-ci/venv                              Python venv from tests/requirements.txt
#   tests/node/node_modules                             npm ci from tests/node/package-lock.json
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

E2E_ONLY=0
PYTEST_EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --e2e-only) E2E_ONLY=1; shift ;;
    --) shift; PYTEST_EXTRA+=("$@"); break ;;
    *) PYTEST_EXTRA+=("$1"); shift ;;
  esac
done

log() { printf '\n==> %s\n' "$*" >&2; }

CI_CACHE="$HOME/.cache/relay-ci"
mkdir -p "$CI_CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/relay-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi

# ---------------------------------------------------------------------------------------------
# 1. Debian packages (only the missing ones).
#    build-essential: cc/c++/make for rdkafka-sys (librdkafka is built with ./configure && make)
#    pkg-config + zlib1g-dev: were for libz-sys, which now builds its bundled zlib (feature
#    `static`, linked in); still installed. curl: the minidump e2e test. chromium: the browser
#    e2e test (tests/e2e/test_browser.py drives it with Playwright; no browser download).
#    redis-server: the fleet e2e test (test_fleet.py starts its own, on a free port, without
#    persistence). openssl: the edge e2e test makes its test CA and certificates with it.
# ---------------------------------------------------------------------------------------------
need_pkgs=()
for p in build-essential pkg-config zlib1g-dev curl ca-certificates chromium redis-server openssl; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_pkgs+=(python3-venv)
fi
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  log "apt-get install ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. Tansu broker (cargo install, ~11 min cold). Started in the background so it overlaps the
#    workspace build; waited for before the e2e suite. Re-uses an install already in progress.
# ---------------------------------------------------------------------------------------------
TANSU_VERSION=0.6.0
TANSU_ROOT="$CI_CACHE/tansu"
export TANSU_BIN="${TANSU_BIN:-$TANSU_ROOT/bin/tansu}"
TANSU_LOG="$CI_CACHE/tansu-install.log"
TANSU_PID=""

tansu_ok() { [[ -x "$TANSU_BIN" ]] && "$TANSU_BIN" --version 2>/dev/null | grep -qF " $TANSU_VERSION"; }

# A cargo process (not a shell whose command line merely mentions it) installing tansu into
# our root (an install into another root, e.g. another user's cache, is not ours to wait for).
other_tansu_install() {
  pgrep -f "^([^ ]*/)?cargo install tansu .*--root $TANSU_ROOT( |\$)" 2>/dev/null | head -1 || true
}

start_tansu_install() {
  tansu_ok && return 0
  if [[ -n "$(other_tansu_install)" ]]; then
    log "a 'cargo install tansu' is already running (log: $TANSU_LOG); will wait for it"
    return 0
  fi
  log "installing tansu $TANSU_VERSION in the background (log: $TANSU_LOG)"
  rm -rf "$CI_CACHE"/tansu-build.*  # left behind by an install that was killed
  (
    tdir="$(mktemp -d "$CI_CACHE/tansu-build.XXXXXX")"
    # Own target dir: must not share (and lock) the workspace's CARGO_TARGET_DIR.
    rc=0
    CARGO_TARGET_DIR="$tdir" cargo install tansu --version "$TANSU_VERSION" --locked \
      --features dynostore --root "$TANSU_ROOT" >"$TANSU_LOG" 2>&1 || rc=$?
    rm -rf "$tdir"
    exit $rc
  ) &
  TANSU_PID=$!
}

wait_tansu_install() {
  if [[ -n "$TANSU_PID" ]]; then
    log "waiting for the tansu install (pid $TANSU_PID)"
    if ! wait "$TANSU_PID"; then
      tail -n 60 "$TANSU_LOG" >&2 || true
      echo "tansu install failed (log: $TANSU_LOG)" >&2
      exit 1
    fi
  fi
  local deadline=$((SECONDS + 2400)) other
  while other="$(other_tansu_install)"; [[ -n "$other" ]]; do
    if ((SECONDS > deadline)); then
      echo "timed out waiting for another 'cargo install tansu' (pid $other)" >&2
      exit 1
    fi
    log "waiting for the 'cargo install tansu' already running (pid $other)"
    sleep 20
  done
  if ! tansu_ok; then
    # The other install failed or was killed: do it ourselves, in the foreground.
    TANSU_PID=""
    start_tansu_install
    if [[ -n "$TANSU_PID" ]]; then wait_tansu_install; fi
  fi
  tansu_ok || { echo "tansu is not usable at $TANSU_BIN" >&2; exit 1; }
}

start_tansu_install

# ---------------------------------------------------------------------------------------------
# 3. Python venv (re-install only when tests/requirements.txt or the interpreter changed).
# ---------------------------------------------------------------------------------------------
VENV="$CI_CACHE/venv"
REQ="$REPO_ROOT/tests/requirements.txt"
py_stamp="$( (cat "$REQ"; python3 -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "creating venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
if [[ "$(cat "$VENV/.relay-requirements.sha256" 2>/dev/null || true)" != "$py_stamp" ]]; then
  log "pip install -r tests/requirements.txt"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
  echo "$py_stamp" >"$VENV/.relay-requirements.sha256"
fi

# ---------------------------------------------------------------------------------------------
# 4. Node deps: @sentry/node, esbuild and @sentry/cli (npm ci when missing or the lock
#    changed). sentry-cli's binary is the npm optional package @sentry/cli-linux-x64; its
#    postinstall would fall back to a download from Sentry's CDN, which CI must not need.
# ---------------------------------------------------------------------------------------------
NODE_DIR="$REPO_ROOT/tests/node"
node_stamp="$( (cat "$NODE_DIR/package-lock.json"; node --version) | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$NODE_DIR/node_modules/.relay-lock.sha256" 2>/dev/null || true)" != "$node_stamp" ]]; then
  log "npm ci (tests/node)"
  (cd "$NODE_DIR" && SENTRYCLI_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_stamp" >"$NODE_DIR/node_modules/.relay-lock.sha256"
fi

# ---------------------------------------------------------------------------------------------
# 5. Rust: format, lint, unit tests, then the binary the e2e suite runs (debug profile only).
# ---------------------------------------------------------------------------------------------
if [[ "$E2E_ONLY" == 0 ]]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy"
  cargo clippy --workspace --all-targets -- -D warnings
  log "cargo test"
  cargo test --workspace
fi
log "cargo build -p relay-server"
cargo build -p relay-server
export RELAY_BIN="${RELAY_BIN:-$CARGO_TARGET_DIR/debug/relay}"
[[ -x "$RELAY_BIN" ]] || { echo "relay binary not found at $RELAY_BIN" >&2; exit 1; }

wait_tansu_install

# ---------------------------------------------------------------------------------------------
# 6. End-to-end suite against the real binary, a real broker and the real SDKs.
# ---------------------------------------------------------------------------------------------
export RELAY_E2E_VENV_PYTHON="$VENV/bin/python"
export PYTHONDONTWRITEBYTECODE=1
log "pytest tests/e2e (relay: $RELAY_BIN, tansu: $TANSU_BIN)"
set +e
# Per-test timeouts come from tests/e2e/pytest.ini (pytest-timeout); this bounds the whole run.
timeout --kill-after=30 1500 "$VENV/bin/python" -m pytest -v tests/e2e \
  ${PYTEST_EXTRA[@]+"${PYTEST_EXTRA[@]}"}
rc=$?
set -e
if [[ $rc == 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
