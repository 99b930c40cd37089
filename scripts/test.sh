#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then lint, type-check and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-peers.sh
bash scripts/make-testdata.sh
python3 -m pip uninstall -y -q vouch >/dev/null 2>&1 || true  # the distribution's old name (now vouch-oci)
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
export PATH="${VOUCH_PEERS_DIR:-$HOME/.cache/vouch-peers}/bin:$PATH"

python3 scripts/warm-testdata.py  # what the tests download, fetched now: the suite runs offline below
echo "== ruff"; ruff check src tests scripts
echo "== mypy"; mypy
# The suite runs in a network namespace with only loopback: the private Sigstore stack's servers bind some
# ports on every interface (see docs/testbed.md), and nothing in the tests may reach the outside anyway.
echo "== pytest (network namespace: loopback only)"
if [ "$(id -u)" = 0 ]; then
  exec unshare --net bash -c 'ip link set lo up && exec python3 -m pytest "$@"' _ "$@"
elif unshare --map-root-user --net true 2>/dev/null; then
  exec unshare --map-root-user --net bash -c 'ip link set lo up && exec python3 -m pytest "$@"' _ "$@"
fi
echo "test.sh: cannot make a network namespace (needs root or user namespaces); the Sigstore stack tests will fail"
python3 -m pytest "$@"
