#!/usr/bin/env bash
# Set up (if needed) and run the main job: fit the leaderboard table without a family's
# larger models, forecast them from its smallest one, print and save the forecasts.
# Uses $SLOTH_BAYES_DATA (or the cached table); falls back to the simulated demo table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/sloth-bayes demo "$@"
