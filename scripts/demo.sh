#!/usr/bin/env bash
# The main job on a self-contained default: a local registry, sample images, sign + verify, a report.
# Real cosign is used for a second opinion when scripts/install-peers.sh has built it (pass --with-peers).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--with-peers" ]; then
  shift
  bash scripts/install-peers.sh
else
  bash scripts/install-peers.sh --system-only
fi
python3 -m pip uninstall -y -q vouch >/dev/null 2>&1 || true  # the distribution's old name (now vouch-oci)
python3 -m pip install -q --disable-pip-version-check -e .
export PATH="${VOUCH_PEERS_DIR:-$HOME/.cache/vouch-peers}/bin:$PATH"
exec python3 scripts/demo.py "$@"
