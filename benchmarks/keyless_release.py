"""Benchmark: a 14-image release signed keyless on the private Sigstore stack, first run and re-run —
`vouch release --keyless` vs cosign 2 keyless (+ syft for the SBOM), side by side in one run, on one real
docker-registry and one stack (Fulcio, CT log, Rekor v1 on Trillian).

    bash scripts/install-peers.sh   # once: cosign, syft and the Sigstore stack (cached)
    unshare --net bash -c 'ip link set lo up && python benchmarks/keyless_release.py [--rounds 1]'

Per image, both sides: a CycloneDX SBOM, a keyless signature by digest, the SBOM as a keyless cyclonedx
attestation (cosign: `syft scan`, `cosign sign`, `cosign attest --replace`, 4 images at a time through
`xargs -P 4`; vouch: `release --keyless --concurrency 4`). Besides time, it counts what a re-run adds:
layers in the `.sig`/`.att` tags and entries in the transparency log. Not a test: nothing asserts a time.
The stack needs a network namespace with only loopback (docs/testbed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import ATT_SUFFIX, SIG_SUFFIX, read_tag, tag_for
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release
from vouch.testbed.sigstore import SigstoreStack, start_sigstore_stack

PEERS = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "bin"
SCRIPT = """set -e
img="$1"
out="$WORK/$(echo "$img" | tr '/:@' '___').cdx.json"
syft scan "registry:$img" -q -o "cyclonedx-json=$out"
cosign sign --yes --allow-http-registry=true --fulcio-url "$FULCIO" --rekor-url "$REKOR" \\
  --identity-token "$(cat "$WORK/token")" "$img" 2>/dev/null
cosign attest --yes --allow-http-registry=true --fulcio-url "$FULCIO" --rekor-url "$REKOR" \\
  --identity-token "$(cat "$WORK/token")" --type cyclonedx --predicate "$out" --replace "$img" 2>/dev/null
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {r.stderr[-2000:]}")
    return time.perf_counter() - t


def tree_size(stack: SigstoreStack) -> int:
    with urllib.request.urlopen(f"{stack.rekor_url}/api/v1/log", timeout=10) as r:
        return int(json.load(r)["treeSize"])


def layers(client: RegistryClient, images: list[str]) -> int:
    n = 0
    for img in images:
        ref = Reference.parse(img)
        assert ref.digest
        repo = Reference(ref.registry, ref.repository)
        for suffix in (SIG_SUFFIX, ATT_SUFFIX):
            n += len(read_tag(client, repo, tag_for(ref.digest, suffix)).layers)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    for tool in ("cosign2", "syft"):
        if not (PEERS / tool).exists():
            print(f"{PEERS / tool} missing: bash scripts/install-peers.sh", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="vouch-bench-keyless-"))
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "cosign").symlink_to(PEERS / "cosign2")
    (bindir / "syft").symlink_to(PEERS / "syft")
    (work / "one.sh").write_text(SCRIPT)
    server = start_registry("plain")
    stack = start_sigstore_stack()
    env = {**os.environ, **stack.cosign_env(), "HOME": str(work), "WORK": str(work), "FULCIO": stack.fulcio_url,
           "REKOR": stack.rekor_url, "PATH": f"{bindir}:{os.environ['PATH']}",
           "SYFT_REGISTRY_INSECURE_USE_HTTP": "true", "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    for k in ("AKKO_SIGN_IMAGES", "VOUCH_SIGN_IMAGES", "AKKO_SIGN_KEYLESS", "VOUCH_SIGN_KEYLESS"):
        env.pop(k, None)
    sides = ("vouch", "cosign2+syft")
    times: dict[str, dict[str, list[float]]] = {s: {"first": [], "rerun": []} for s in sides}
    added: dict[str, dict[str, list[int]]] = {s: {"layers": [], "log_entries": []} for s in sides}
    try:
        client = RegistryClient()
        for rnd in range(args.rounds):
            for side in sides:
                images = []
                for name, img in sample_release().items():
                    ref = Reference(server.host, f"k{rnd}-{side.replace('+', '-')}/{name}", "2026.04")
                    images.append(f"{ref.name}@{push_image(client, ref, img)}")
                if side == "vouch":
                    man = work / f"release-{rnd}.yaml"
                    man.write_text(yaml.safe_dump({"images": images}))
                    token_file = work / "token"
                    cmd = [sys.executable, "-m", "vouch", "release", "--keyless", "--manifest", str(man),
                           "--concurrency", "4", "--fulcio-url", stack.fulcio_url, "--rekor-url", stack.rekor_url,
                           "--trusted-root", str(stack.trusted_root), "--identity-token", str(token_file)]
                else:
                    (work / f"list-{rnd}.txt").write_text("\n".join(images) + "\n")
                    cmd = ["sh", "-c", f"xargs -P 4 -n 1 sh {work / 'one.sh'} < {work / f'list-{rnd}.txt'}"]
                (work / "token").write_text(stack.token(lifetime=3600))
                times[side]["first"].append(timed(cmd, env))
                n_layers, n_log = layers(client, images), tree_size(stack)
                (work / "token").write_text(stack.token(lifetime=3600))  # a re-run is a new pipeline: a new token
                times[side]["rerun"].append(timed(cmd, env))
                added[side]["layers"].append(layers(client, images) - n_layers)
                added[side]["log_entries"].append(tree_size(stack) - n_log)
    finally:
        stack.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {s: {k: statistics.median(v) for k, v in r.items()} for s, r in times.items()}
    n = len(sample_release())
    print(f"{n}-image keyless release (sign + SBOM attestation), {args.rounds} round(s), medians in seconds")
    print(f"{'side':14} {'first run':>10} {'re-run':>10} {'re-run adds layers':>19} {'log entries':>12}")
    for side in sides:
        print(f"{side:14} {med[side]['first']:10.2f} {med[side]['rerun']:10.2f} "
              f"{statistics.median(added[side]['layers']):19.0f} {statistics.median(added[side]['log_entries']):12.0f}")
    ratios = {k: med["vouch"][k] / med["cosign2+syft"][k] for k in ("first", "rerun")}
    print("vouch / (cosign2+syft): " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"medians": med, "ratios": ratios, "raw": times, "added": added}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
