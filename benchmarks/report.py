"""Benchmark: `vouch report` over a 14-image signed release (3 two-platform indexes: 17 platform images)
on one real docker-registry, first (empty cache) and cached; and `vouch dtrack upload --manifest` of it to
the loopback Dependency-Track IMITATION of tests/test_dtrack_release.py (first: every BOM uploaded and
processed; again: every BOM skipped). Not a test.

    python benchmarks/report.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_dtrack_release import API_KEY, DTImitation

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release


def run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:6])} failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vouch-bench-report-"))
    key = generate_private_key()
    (work / "k.key").write_bytes(encrypt_private_key(key, b"pw"))
    (work / "k.pub").write_bytes(public_key_pem(key.public_key()))
    env = {**os.environ, "COSIGN_PASSWORD": "pw", "DTRACK_API_KEY": API_KEY,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    vouch = [sys.executable, "-m", "vouch"]
    registry = start_registry("plain")
    client = RegistryClient()
    try:
        refs = []
        for name, img in sample_release("2026.04").items():
            ref = Reference(registry.host, f"akko/{name}", "2026.04")
            push_image(client, ref, img)
            refs.append(str(ref))
        run([*vouch, "release", "--key", str(work / "k.key"), *refs], env)
        man = work / "release.yaml"
        man.write_text(yaml.safe_dump({"release": "2026.04", "images": refs}))
        res: dict[str, list[float]] = {k: [] for k in ("report first", "report cached", "dtrack first",
                                                       "dtrack again")}
        for i in range(args.rounds):
            cache = work / f"cache-{i}"
            report = [*vouch, "report", "--key", str(work / "k.pub"), "--manifest", str(man), "--cache-dir",
                      str(cache), "--html", str(work / f"r{i}.html"), "--json", str(work / f"r{i}.json")]
            res["report first"].append(run(report, env))
            res["report cached"].append(run(report, env))
            dt = DTImitation()
            up = [*vouch, "dtrack", "upload", "--url", dt.url, "--key", str(work / "k.pub"), "--manifest", str(man),
                  "--parent", "platform", "--auto-create"]
            res["dtrack first"].append(run(up, env))
            assert len(dt.uploads) == 17 and not dt.violations, (len(dt.uploads), dt.violations)
            res["dtrack again"].append(run(up, env))
            assert len(dt.uploads) == 17
            dt.server.shutdown()
        print(f"{len(refs)} images, 17 platform images, {args.rounds} round(s)")
        for side, t in res.items():
            print(f"{side:14s} median {statistics.median(t):6.2f} s  (min {min(t):.2f}, max {max(t):.2f})")
    finally:
        client.close()
        registry.stop()


if __name__ == "__main__":
    main()
