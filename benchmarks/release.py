"""Benchmark: a 14-image release, first run and re-run — `vouch release` vs a script doing the same job
with cosign + syft, side by side in one run, on one real docker-registry.

    bash scripts/install-peers.sh   # once: builds cosign and syft (cached)
    python benchmarks/release.py [--rounds 3] [--json FILE]

Per image, both sides do: resolve the digest, generate a CycloneDX SBOM, sign by digest, attach the
SBOM as a cyclonedx attestation replacing older ones. Both sides handle 4 images at a time (vouch
--concurrency 4; the script runs through `xargs -P 4`). The script is what a pipeline without vouch
runs: `syft scan registry:IMAGE@DIGEST`, `cosign sign`, `cosign attest --replace` (cosign 2, key-based,
no tlog). Its re-run repeats everything (cosign skips the duplicate signature, syft and the
attestation run again); vouch's re-run checks what is attached and writes nothing.
Images: the 14 sample images plus the debootstrap image twice (real dpkg databases), so SBOM work is
not trivial. Not a test: nothing here asserts a time.
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
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.testdata import debian_minbase_image

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.copy import copy_image
from vouch.oci.reference import Reference
from vouch.oci.source import LayoutSource
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release

PEERS = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "bin"
SCRIPT = """set -e
img="$1"
syft scan "registry:$img" -q -o "cyclonedx-json=$WORK/$(echo "$img" | tr '/:@' '___').cdx.json"
cosign sign --key "$WORK/k.key" --tlog-upload=false --yes --allow-http-registry=true "$img" 2>/dev/null
cosign attest --key "$WORK/k.key" --type cyclonedx --predicate "$WORK/$(echo "$img" | tr '/:@' '___').cdx.json" \\
  --replace --tlog-upload=false --yes --allow-http-registry=true "$img" 2>/dev/null
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {r.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rerun-repeats", type=int, default=3, help="re-runs per side and round (medians of all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    # As an installed wheel runs (see sign_verify.py): the modules compiled once, not on every timed run.
    import vouch as vouch_package
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(vouch_package.__file__).parent)], check=True)
    for tool in ("cosign2", "syft"):
        if not (PEERS / tool).exists():
            print(f"{PEERS / tool} missing: bash scripts/install-peers.sh", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="vouch-bench-release-"))
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "cosign").symlink_to(PEERS / "cosign2")
    (bindir / "syft").symlink_to(PEERS / "syft")
    (work / "one.sh").write_text(SCRIPT)
    key = generate_private_key()
    (work / "k.key").write_bytes(encrypt_private_key(key, b"pw"))
    (work / "k.pub").write_bytes(public_key_pem(key))
    env = {**os.environ, "COSIGN_PASSWORD": "pw", "HOME": str(work), "WORK": str(work),
           "PATH": f"{bindir}:{os.environ['PATH']}", "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
           "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    for k in ("AKKO_SIGN_IMAGES", "VOUCH_SIGN_IMAGES"):
        env.pop(k, None)
    server = start_registry("plain")
    results: dict[str, dict[str, list[float]]] = {"vouch": {}, "cosign+syft": {}}
    try:
        client = RegistryClient()
        debian = LayoutSource(debian_minbase_image(), None)
        for rnd in range(args.rounds):
            for side in results:
                images = []
                for name, img in sample_release().items():
                    ref = Reference(server.host, f"r{rnd}-{side.replace('+', '-')}/{name}", "2026.04")
                    images.append(f"{ref.name}@{push_image(client, ref, img)}")
                for n in range(2):
                    ref = Reference(server.host, f"r{rnd}-{side.replace('+', '-')}/debian{n}", "bookworm")
                    images.append(f"{ref.name}@{copy_image(debian, client, ref)}")
                if side == "vouch":
                    man = work / f"release-{rnd}.yaml"
                    man.write_text(yaml.safe_dump({"images": images}))
                    cmd = [sys.executable, "-m", "vouch", "release", "--key", str(work / "k.key"), "--manifest",
                           str(man), "--concurrency", "4"]
                else:
                    (work / f"list-{rnd}.txt").write_text("\n".join(images) + "\n")
                    cmd = ["sh", "-c", f"xargs -P 4 -n 1 sh {work / 'one.sh'} < {work / f'list-{rnd}.txt'}"]
                results[side].setdefault("first", []).append(timed(cmd, env))
                for _ in range(args.rerun_repeats):  # (a re-run changes nothing: each one is the same work)
                    results[side].setdefault("rerun", []).append(timed(cmd, env))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {s: {k: statistics.median(v) for k, v in r.items()} for s, r in results.items()}
    n = len(sample_release()) + 2
    print(f"{n}-image release (14 samples + 2 debootstrap images), {args.rounds} round(s), re-run "
          f"{args.rerun_repeats}x per round, medians in seconds")
    print(f"{'side':12} {'first run':>10} {'re-run':>10}")
    for side, m in med.items():
        print(f"{side:12} {m['first']:10.2f} {m['rerun']:10.2f}")
    ratios = {k: med["vouch"][k] / med["cosign+syft"][k] for k in ("first", "rerun")}
    print("vouch / (cosign+syft): " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"medians": med, "ratios": ratios, "raw": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
