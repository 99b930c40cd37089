#!/usr/bin/env bash
# Build the real root filesystems the SBOM tests and benchmarks use, cached under ~/.cache/vouch-testdata.
#   bookworm-minbase/   debootstrap --variant=minbase bookworm (a real dpkg database, ~88 packages)
set -euo pipefail
DATA="${VOUCH_TESTDATA_DIR:-$HOME/.cache/vouch-testdata}"
mkdir -p "$DATA"

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v rpmbuild >/dev/null 2>&1 || need+=(rpm)
command -v db5.3_load >/dev/null 2>&1 || need+=(db5.3-util)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)  # links the Windows Rust probe
if [ "${#need[@]}" -gt 0 ]; then
  echo "make-testdata: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

mirror() {  # the Debian mirror this machine's apt uses
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ ! -f "$DATA/bookworm-minbase/.complete" ]; then
  echo "make-testdata: debootstrap --variant=minbase bookworm (about 30 s)"
  rm -rf "$DATA/bookworm-minbase"
  debootstrap --variant=minbase bookworm "$DATA/bookworm-minbase" "$(mirror)" >"$DATA/debootstrap.log" 2>&1 \
    || { tail -20 "$DATA/debootstrap.log"; exit 1; }
  rm -rf "$DATA/bookworm-minbase/var/cache/apt/archives/"*.deb
  touch "$DATA/bookworm-minbase/.complete"
fi
# the Rust standard library for the Windows (PE) and WebAssembly builds of the cargo-auditable probe
for target in x86_64-pc-windows-gnu wasm32-unknown-unknown; do
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "make-testdata: rustup target add $target"
    rustup target add "$target" >/dev/null 2>&1 || echo "make-testdata: rustup target add $target failed" >&2
  fi
done
echo "make-testdata: ready in $DATA"
