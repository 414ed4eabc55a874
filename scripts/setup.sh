#!/usr/bin/env bash
# Create ./.venv if needed and install the project (editable) with its test extras.
# Where no torch is installed yet, take torch 2.13.0 first (a CPU build lies on disk on our
# machines); the project itself only asks for a range, so CUDA builds on GPU clusters work too.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[test]"
# headless Chromium, for the test that opens the report page: from the distribution's packages
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && as_root="sudo -n"; }
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$as_root" ]; }; then
    ($as_root apt-get update -qq && $as_root apt-get install -y -qq chromium) >/dev/null \
      || echo "setup: installing chromium failed; the report-page test needs it" >&2
  else
    echo "setup: no chromium; the report-page test needs it (e.g. sudo apt-get install chromium)" >&2
  fi
fi
