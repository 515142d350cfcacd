#!/usr/bin/env bash
# Set up (if needed) and run the default test suite: unit tests, one real fit of the embedded
# table at reduced draws, the four notebooks in quick mode, the HTML report in headless
# Chromium (when installed). Arguments go to pytest (e.g. -m slow for the long tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MPLBACKEND=Agg
exec .venv/bin/python -m pytest "$@"
