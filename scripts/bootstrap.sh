#!/usr/bin/env bash
# Create .venv with Python >= 3.12 (ArviZ 1.x needs it) and install sloth_bayes with its
# test extras. Safe to run again: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { "$@" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
find_python() {
  for c in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && ok "$c" && { echo "$c"; return; }
  done
  # pyenv installs 3.12 beside a 3.11 default: its shim needs PYENV_VERSION
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' | sort -V); do
      p="$(pyenv root)/versions/$v/bin/python3"
      ok "$p" && { echo "$p"; return; }
    done
  fi
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
    [ -x "$p" ] && ok "$p" && { echo "$p"; return; }
  done
  echo "no Python >= 3.12 found: install one (e.g. apt-get install python3.12) or set PYTHON=/path/to/python3.12" >&2
  exit 1
}

if [ ! -x .venv/bin/python ]; then
  "$(find_python)" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[test]"
