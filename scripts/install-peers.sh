#!/usr/bin/env bash
# Install the system packages and the real peers (cosign 2.x and 3.x) the tests use.
# Go builds are cached under ~/.cache/vouch-peers so that a machine that comes back reuses them.
set -euo pipefail

CACHE="${VOUCH_PEERS_DIR:-$HOME/.cache/vouch-peers}"
mkdir -p "$CACHE/bin"

need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install-peers: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = "--system-only" ]; then
  exit 0
fi

build_go_tool() {  # name module version
  local name=$1 module=$2 version=$3
  local out="$CACHE/bin/$name"
  if [ -x "$out" ] && [ -f "$out.version" ] && [ "$(cat "$out.version")" = "$version" ]; then
    return 0
  fi
  echo "install-peers: go install $module@$version (cached afterwards as $out)"
  local gobin
  gobin=$(mktemp -d)
  GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "$module@$version"
  mv "$gobin/$(basename "$module")" "$out"
  echo "$version" > "$out.version"
  rm -rf "$gobin"
}

build_go_tool cosign2 github.com/sigstore/cosign/v2/cmd/cosign v2.6.4
build_go_tool cosign3 github.com/sigstore/cosign/v3/cmd/cosign v3.1.2
echo "install-peers: ready in $CACHE/bin: $(ls "$CACHE/bin" | grep -v version | tr '\n' ' ')"
