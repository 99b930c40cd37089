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
in_netns() {
  if [ "$(id -u)" = 0 ]; then
    unshare --net bash -c 'ip link set lo up && exec "$@"' _ "$@"
  elif unshare --map-root-user --net true 2>/dev/null; then
    unshare --map-root-user --net bash -c 'ip link set lo up && exec "$@"' _ "$@"
  else
    echo "test.sh: cannot make a network namespace (needs root or user namespaces); the Sigstore stack tests will fail"
    "$@"
  fi
}
echo "== pytest (network namespace: loopback only)"
status=0
in_netns python3 -m pytest "$@" || status=$?
# The whole suite (no arguments) is followed by the speed benchmarks: each runs the peers side by side with
# vouch on the same input and prints its figures and ratios. Reported, never asserted: a benchmark fails the
# run only when it cannot run. VOUCH_SKIP_BENCHMARKS=1 leaves them out.
if [ $# -eq 0 ] && [ -z "${VOUCH_SKIP_BENCHMARKS:-}" ]; then
  results="${TMPDIR:-/tmp}/vouch-benchmarks"
  mkdir -p "$results"
  for bench in "sbom.py --rounds 1" "sign_verify.py --rounds 1" "release.py --rounds 1" "transport.py --rounds 3"; do
    name="${bench%%.py*}"
    echo "== benchmark: python3 benchmarks/$bench (figures also in $results/$name.json)"
    # shellcheck disable=SC2086  # (the options are meant to split)
    in_netns python3 benchmarks/$bench --json "$results/$name.json" || { echo "benchmark $name failed"; status=1; }
  done
fi
exit "$status"
