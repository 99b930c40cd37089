"""Benchmark: how long the real Kyverno webhook takes to admit a Pod whose image carries 1, 2 or 5 signatures,
with Kyverno's image verification cache off and on (issue 19).

    bash scripts/install-peers.sh   # once: etcd, kube-apiserver, kubectl, Kyverno's controllers (cached)
    python benchmarks/admission.py [--rounds 15]

One real docker-registry and, per cache setting, one cluster (vouch.testbed.kube: etcd + kube-apiserver + Kyverno's
admission controller as the API server's webhook). Image N is signed by N keys, the policy's key last (Kyverno tries
the signatures until one verifies: the worst case for it), and carries one CycloneDX attestation by that key. Each
admission is a server-side dry-run Pod create (`POST /api/v1/namespaces/default/pods?dryRun=All`: the webhooks run,
nothing is stored) over one HTTPS connection; the baseline is a Pod whose image is outside the policy's pattern (the
webhook is called, verifies nothing). Medians of --rounds; the first admission after start is reported apart
(the cache is cold then). Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import Image, Layer, push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.kube import KubeCluster, start_kube
from vouch.testbed.registry import start_registry

COUNTS = (1, 2, 5)


def vouch(*args: str) -> None:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, timeout=600,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"vouch {args[0]} failed: {r.stderr[-2000:]}")


class Admitter:
    """Dry-run Pod creates over one kept-alive HTTPS connection to the API server."""

    def __init__(self, kube: KubeCluster) -> None:
        host, port = kube.api_url.removeprefix("https://").split(":")
        self.conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(
            cafile=str(kube.ca_file)), timeout=60)
        self.token = kube.tokens["admin"]
        self.n = 0

    def admit(self, image: str) -> tuple[bool, float]:
        self.n += 1
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{self.n}", "namespace": "default"},
               "spec": {"containers": [{"name": "app", "image": image}]}}
        t = time.perf_counter()
        self.conn.request("POST", "/api/v1/namespaces/default/pods?dryRun=All", body=json.dumps(pod),
                          headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t
        if resp.status not in (200, 201, 400, 403):
            raise SystemExit(f"API server answered {resp.status}: {body[:500]!r}")
        return resp.status in (200, 201), elapsed


def measure(kube: KubeCluster, policy: str, images: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    kube.apply(policy)
    kube.wait_policy("bench-require-signed")
    admitter = Admitter(kube)
    out: dict[str, dict[str, float]] = {}
    for label, image in images.items():
        ok, first = admitter.admit(image)
        if not ok:
            raise SystemExit(f"{label} ({image}) was refused")
        times = []
        for _ in range(rounds):
            ok, t = admitter.admit(image)
            if not ok:
                raise SystemExit(f"{label} was refused on a later round")
            times.append(t)
        out[label] = {"first": first, "median": statistics.median(times)}
    kube.delete_policies()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vouch-bench-admission-"))
    registry = start_registry("plain")
    client = RegistryClient()
    try:
        keys = []
        for i in range(max(COUNTS)):
            key = generate_private_key()
            (work / f"k{i}.key").write_bytes(encrypt_private_key(key, b"pw"))
            (work / f"k{i}.pub").write_bytes(public_key_pem(key))
            keys.append(work / f"k{i}.key")
        trusted, others = keys[0], keys[1:]
        images = {}
        for n in COUNTS:
            ref = Reference(registry.host, f"bench/sigs{n}", "1")
            digest = push_image(client, ref, Image([Layer.from_files({"etc/id": os.urandom(4096)})]))
            image = f"{registry.host}/bench/sigs{n}@{digest}"
            for key in others[: n - 1]:
                vouch("sign", "--key", str(key), image)
            vouch("release", "--key", str(trusted), image)  # the trusted signature and its SBOM, last
            images[f"{n} signature{'s' if n > 1 else ''}"] = image
        outside = Reference(registry.host, "elsewhere/app", "1")
        outside_digest = push_image(client, outside, Image([Layer.from_files({"etc/id": b"outside"})]))
        images = {"baseline (outside the policy)": f"{registry.host}/elsewhere/app@{outside_digest}", **images}
        r = subprocess.run([sys.executable, "-m", "vouch", "policy", "kyverno", "--key", str(work / "k0.pub"),
                            "--images", f"{registry.host}/bench/*", "--mode", "enforce", "--name",
                            "bench-require-signed"], capture_output=True, text=True, check=True, timeout=120)
        policy = r.stdout
        results = {}
        for cache in (False, True):
            kube = start_kube(work / f"kube-cache-{cache}", verify_cache=cache)
            try:
                results[cache] = measure(kube, policy, images, args.rounds)
            finally:
                kube.stop()
    finally:
        client.close()
        registry.stop()
    print(f"Kyverno v1.19.0 admission webhook, dry-run Pod create, median of {args.rounds} (first apart)")
    print(f"{'image':32} {'cache off first':>16} {'cache off':>10} {'cache on first':>15} {'cache on':>9}")
    for label in images:
        off, on = results[False][label], results[True][label]
        print(f"{label:32} {off['first']:15.3f}s {off['median']:9.3f}s {on['first']:14.3f}s {on['median']:8.3f}s")


if __name__ == "__main__":
    main()
