#!/usr/bin/env bash
# Set up (if needed) and run the test suite: the default tier (fast unit tests, one real
# fit of the leaderboard at reduced draws, the quickstart notebook). Slow tests: add -m slow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MPLBACKEND=Agg
exec .venv/bin/python -m pytest "$@"
