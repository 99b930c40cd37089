#!/usr/bin/env bash
# Build dist/vouch.pyz: vouch in one file that needs only python3 (3.11, the interpreter it is built with).
#
# It is a PEX (https://docs.pex-tool.org): a zipapp holding vouch and the wheel of every dependency for this
# interpreter and platform, the compiled ones too (cryptography, pynacl, pydantic-core, zstandard, isal,
# rpds-py, cffi, ...). Python cannot import a compiled extension from inside a zip, so a plain zipapp would
# need those installed beside it; a PEX unpacks them once, on first run, into a venv under $PEX_ROOT
# (default ~/.cache/pex) and starts from there afterwards (--venv). Run it as `python3 vouch.pyz ...` or
# `./vouch.pyz ...`.
#
#   scripts/build-zipapp.sh [OUT]       build offline from the wheelhouse (default OUT: dist/vouch.pyz)
#   scripts/build-zipapp.sh --fetch     fill the wheelhouse from PyPI (scripts/warm-testdata.py runs this)
#
# The wheelhouse is $VOUCH_WHEELHOUSE (default ~/.cache/vouch-testdata/wheels): pex itself, setuptools and
# wheel (to build vouch's own wheel) and the dependencies of pyproject.toml, binary wheels only. The build
# reads the checkout and writes nothing in it but OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${VOUCH_WHEELHOUSE:-$HOME/.cache/vouch-testdata/wheels}
PY=${PYTHON:-python3}

requirements() {
  "$PY" - "$ROOT/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(["pex", "setuptools>=68", "wheel", *project["project"]["dependencies"]]))
EOF
}

if [ "${1:-}" = "--fetch" ]; then
  mkdir -p "$WHEELS"
  reqs=$(requirements)
  if [ -f "$WHEELS/.requirements" ] && [ "$(cat "$WHEELS/.requirements")" = "$reqs" ]; then
    echo "build-zipapp: wheelhouse $WHEELS is up to date"
    exit 0
  fi
  printf '%s\n' "$reqs" > "$WHEELS/.requirements.in"
  "$PY" -m pip download --quiet --only-binary=:all: --dest "$WHEELS" -r "$WHEELS/.requirements.in"
  mv "$WHEELS/.requirements.in" "$WHEELS/.requirements"
  echo "build-zipapp: wheelhouse $WHEELS: $(ls "$WHEELS"/*.whl | wc -l) wheels"
  exit 0
fi

OUT=${1:-$ROOT/dist/vouch.pyz}
if ! ls "$WHEELS"/pex-*.whl >/dev/null 2>&1; then
  echo "build-zipapp: no wheelhouse at $WHEELS; run: scripts/build-zipapp.sh --fetch (needs PyPI)" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# the build tools in a venv of their own (nothing is installed into the interpreter or the checkout's env)
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet --no-index --find-links "$WHEELS" pex setuptools wheel

# vouch's wheel, built from a copy of the tree (so no build/ or egg-info appears in the checkout)
mkdir -p "$WORK/tree"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$WORK/tree/"
(cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.egg-info' -cf - src) | tar -xf - -C "$WORK/tree"
"$WORK/tools/bin/pip" wheel --quiet --no-deps --no-build-isolation --no-index --wheel-dir "$WORK/wheel" "$WORK/tree"

mkdir -p "$(dirname "$OUT")"
PEX_ROOT="$WORK/pex-root" "$WORK/tools/bin/pex" "$WORK"/wheel/vouch_oci-*.whl \
  --venv --resolver-version pip-2020-resolver --no-pypi --find-links "$WHEELS" \
  --console-script vouch --python-shebang '/usr/bin/env python3' --output-file "$OUT.tmp" >/dev/null
mv "$OUT.tmp" "$OUT"
echo "build-zipapp: $OUT ($(du -h "$OUT" | cut -f1))"
