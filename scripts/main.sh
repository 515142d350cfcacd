#!/usr/bin/env bash
# Set up (if needed), then fit the embedded leaderboard table without a family's larger
# models, forecast them from its smallest one, print the forecasts with their intervals and
# save out/forecast.csv and out/fit.nc. Arguments go to `sloth-bayes demo` (--family NAME,
# --out DIR, --seed N ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/sloth-bayes demo "$@"
