"""Benchmark: "which images of the release contain libssl3 older than 3.0.16?" over a 14-image signed
release (3 of them two-platform indexes: 17 platform images), on one real docker-registry.

    python benchmarks/query.py [--rounds 3] [--releases 10] [--json FILE]

Sides, each answering the same question from *verified* SBOMs:
  first     `vouch query --manifest release.yaml pkg:deb/debian/libssl3 --range 'vers:deb/<3.0.16'`, empty cache
  requery   the same command again (the attestation blobs come from the cache, re-verified)
  no-cache  the same with --no-cache (every blob from the registry, as the first query)
  shell     the loop a user writes today: `vouch download sbom --key … IMAGE | jq …` per image (sequential;
            it reads each index's merged SBOM, not the platform images', and cannot compare Debian versions:
            jq only lists libssl3's version)
With --releases N: N releases of 14 images (different digests: each release's app layers differ), one query
over all of them, first and re-query. Registry requests are counted through a counting proxy. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.faultproxy import FaultProxy

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release

PURL, RANGE = "pkg:deb/debian/libssl3", "vers:deb/<3.0.16"


def run(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=3600)
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--releases", type=int, default=0, help="also N releases × 14 images in one query")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vouch-bench-query-"))
    key = generate_private_key()
    (work / "k.key").write_bytes(encrypt_private_key(key, b"pw"))
    (work / "k.pub").write_bytes(public_key_pem(key.public_key()))
    env = {**os.environ, "COSIGN_PASSWORD": "pw",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    vouch = [sys.executable, "-m", "vouch"]
    registry = start_registry("plain")
    proxy = FaultProxy(registry.host).start()
    client = RegistryClient()
    figures: dict[str, object] = {}
    try:
        def push(tag: str) -> list[str]:
            refs = []
            for name, img in sample_release(tag).items():
                ref = Reference(registry.host, f"akko/{name}", tag)
                push_image(client, ref, img)
                refs.append(str(ref).replace(registry.host, proxy.host))
            run([*vouch, "release", "--key", str(work / "k.key"), *refs], env)
            return refs

        refs = push("2026.04")
        man = work / "release.yaml"
        man.write_text(yaml.safe_dump({"release": "2026.04", "images": refs}))
        query = [*vouch, "query", "--key", str(work / "k.pub"), "--manifest", str(man), PURL, "--range", RANGE]
        loop = ("for img in " + " ".join(refs) + "; do "
                f"{' '.join(vouch)} download sbom --key {work / 'k.pub'} --max-age 90d \"$img\" "
                "| jq -r --arg img \"$img\" '.components[] | select(.name == \"libssl3\") | \"\\($img) \\(.version)\"'"
                "; done")
        results: dict[str, list[float]] = {k: [] for k in ("first", "requery", "no-cache", "shell")}
        requests: dict[str, int] = {}
        blobs: dict[str, int] = {}
        for i in range(args.rounds):
            cache = work / f"cache-{i}"
            for side, cmd in (("first", [*query, "--cache-dir", str(cache)]),
                              ("requery", [*query, "--cache-dir", str(cache)]),
                              ("no-cache", [*query, "--no-cache"]),
                              ("shell", ["bash", "-c", loop])):
                before, before_blobs = len(proxy.log), proxy.count("GET", r"/blobs/")
                seconds, out = run(cmd, env)
                results[side].append(seconds)
                requests[side] = len(proxy.log) - before
                blobs[side] = proxy.count("GET", r"/blobs/") - before_blobs
                if i == 0 and side == "first":
                    figures["answer"] = out
        for side, times in results.items():
            print(f"{side:9s} median {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f}), "
                  f"{requests[side]} registry requests, {blobs[side]} blob reads")
        figures["14 images"] = {side: {"median_s": round(statistics.median(t), 3), "all_s": [round(x, 3) for x in t],
                                       "requests": requests[side], "blob_reads": blobs[side]}
                                for side, t in results.items()}
        if args.releases:
            all_refs = list(refs)
            for n in range(1, args.releases):
                all_refs += push(f"2026.{n + 4:02d}")
            big = work / "releases.yaml"
            big.write_text(yaml.safe_dump({"release": "many", "images": all_refs}))
            bq = [*vouch, "query", "--key", str(work / "k.pub"), "--manifest", str(big), PURL, "--range", RANGE,
                  "--cache-dir", str(work / "cache-big")]
            many: dict[str, object] = {}
            for side in ("first", "requery"):
                before, before_blobs = len(proxy.log), proxy.count("GET", r"/blobs/")
                seconds, _ = run(bq, env)
                many[side] = {"seconds": round(seconds, 3), "requests": len(proxy.log) - before,
                              "blob_reads": proxy.count("GET", r"/blobs/") - before_blobs}
                print(f"{args.releases} releases × 14 images, {side}: {seconds:.2f} s, {many[side]}")
            figures[f"{args.releases} releases"] = many
        print(figures["answer"])
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        client.close()
        proxy.stop()
        registry.stop()


if __name__ == "__main__":
    main()
