#!/usr/bin/env bash
# Installs everything onetrack needs on a fresh machine: Java (if missing), a Python 3.11 venv
# with the pinned packages, and the Delta jars resolved once from Maven Central into .cache/ivy.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

if ! command -v java >/dev/null 2>&1; then
  log "installing Java 17 (apt)"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# Debian's Chromium and its WebDriver for the browser test of the Dagster UI (tests/ui); the test
# never downloads a browser.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing chromium and chromium-driver (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    log "chromium/chromedriver missing and no apt-get: tests/ui will be skipped (or fail in CI)"
  fi
fi

PY=${ONETRACK_PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11 is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.onetrack-installed
want=$(cat pyproject.toml .ci/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (pinned, see pyproject.toml and .ci/constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade "pip<26" 
  .venv/bin/python -m pip install -q -c .ci/constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi

log "resolving Delta jars into .cache/ivy (once)"
.venv/bin/python -m pipelines.jars >/dev/null
log "ready"
