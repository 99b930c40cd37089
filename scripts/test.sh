#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then lint, type-check and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-peers.sh
bash scripts/make-testdata.sh
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
export PATH="${VOUCH_PEERS_DIR:-$HOME/.cache/vouch-peers}/bin:$PATH"

echo "== ruff"; ruff check src tests scripts
echo "== mypy"; mypy
echo "== pytest"; python3 -m pytest "$@"
