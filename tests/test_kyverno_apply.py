"""The rendered ClusterPolicy applied by the real Kyverno CLI (v1.19.0, built from the Go module proxy by
scripts/install-peers.sh) to pods whose images live in the real local registry. No cluster is needed:
`kyverno apply` runs the same verifyImages engine against the registry."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.peers import peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

pytestmark = pytest.mark.interop


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r


def admitted(tmp_path: Path, policy: str, image: str) -> tuple[bool, str]:
    name = re.sub(r"[^a-z0-9]+", "-", image.split("/")[-1].lower()).strip("-")[:40]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": image}]}}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    (tmp_path / "policy.yaml").write_text(policy)
    r = subprocess.run([str(peer("kyverno")), "apply", str(tmp_path / "policy.yaml"), "--resource",
                        str(tmp_path / "pod.yaml")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HOME": str(tmp_path)})
    out = r.stdout + r.stderr
    m = re.search(r"pass: (\d+), fail: (\d+), warn: (\d+), error: (\d+)", out)
    assert m, out[-2000:]
    passed, failed, _, errors = map(int, m.groups())
    assert errors == 0, out[-2000:]
    return passed > 0 and failed == 0, out


def test_kyverno_admission(registry: RegistryServer, client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    old_priv, old_pub, _ = write_keypair(tmp_path, "old")
    new_priv, new_pub, _ = write_keypair(tmp_path, "new")
    bundle = tmp_path / "bundle.pub"
    bundle.write_bytes(new_pub.read_bytes() + old_pub.read_bytes())

    def image(tag: str) -> str:
        digest = push_image(client, Reference(registry.host, repo_name, tag), small_image(tag))
        return f"{registry.host}/{repo_name}:{tag}@{digest}".replace(f":{tag}@", "@")

    signed, unsigned, stale, previous = image("signed"), image("unsigned"), image("stale"), image("previous")
    vouch("release", "--key", str(new_priv), signed)
    vouch("release", "--key", str(old_priv), previous)  # signed during the overlap with the previous key
    vouch("sign", "--key", str(new_priv), stale)
    old_bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
               "metadata": {"timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(days=120))
                            .strftime("%Y-%m-%dT%H:%M:%SZ")}, "components": []}
    (tmp_path / "old-bom.json").write_text(json.dumps(old_bom))
    vouch("attest", "--key", str(new_priv), "--type", "cyclonedx", "--predicate", str(tmp_path / "old-bom.json"),
          stale)
    policy = vouch("policy", "kyverno", "--key", str(bundle), "--images", f"{registry.host}/{repo_name}*",
                   "--mode", "enforce", "--max-age", "90d").stdout
    ok, out = admitted(tmp_path, policy, signed)
    assert ok, out
    ok, out = admitted(tmp_path, policy, unsigned)
    assert not ok and "no signatures found" in out
    ok, out = admitted(tmp_path, policy, stale)
    assert not ok, out  # the SBOM is 120 days old: the attestation condition fails
    ok, out = admitted(tmp_path, policy, previous)
    assert ok, out  # count: 1 — the previous key of the bundle suffices during the overlap
    only_new = vouch("policy", "kyverno", "--key", str(new_pub), "--images", f"{registry.host}/{repo_name}*",
                     "--mode", "enforce").stdout
    ok, out = admitted(tmp_path, only_new, previous)
    assert not ok, out  # after the overlap, the previous key no longer admits
