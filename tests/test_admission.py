"""Issue 19: admission for real. A real kube-apiserver (with etcd) calls the real Kyverno admission controller
(v1.19.0, out of cluster, `vouch.testbed.kube`) as its webhook; Kyverno checks the cosign signatures and the
CycloneDX attestation in the real local registry. The Helm chart is installed with the real helm; Pods are created
with the real kubectl. Nothing here is imitated: a refusal is the API server's answer."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.kube import KubeCluster

pytestmark = pytest.mark.interop
CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "akko-opa"
REFUSED = 'admission webhook "mutate.kyverno.svc-fail" denied the request'


def vouch(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COSIGN_PASSWORD": "pw", **(env or {})}
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=full, timeout=300,
                       stdin=subprocess.DEVNULL)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def helm(kube: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    home = kube.workdir / "helm"
    env = {**kube.env, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": str(kube.kubeconfig)}
    r = subprocess.run([str(peer("helm")), *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def pod_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] + "-" + uuid.uuid4().hex[:6]


@pytest.fixture
def kube(kube_cluster: KubeCluster) -> Iterator[KubeCluster]:
    """The session's cluster, with no policy left behind by a test."""
    yield kube_cluster
    kube_cluster.delete_policies()


def _stale_bom() -> str:
    return json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [],
                       "metadata": {"timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(days=120))
                                    .strftime("%Y-%m-%dT%H:%M:%SZ")}})


def wait_refused(kube: KubeCluster, image: str) -> None:
    """A policy change reaches Kyverno's webhook asynchronously: wait (bounded) until a dry run is refused."""
    kube._until(lambda: not kube.admit_pod(pod_name("probe"), image, dry_run=True)[0],
                f"the enforce policy to refuse {image}")


def test_helm_chart_audit_then_enforce(kube: KubeCluster, registry: RegistryServer, client: RegistryClient,
                                       repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "release")
    other_priv, _, _ = write_keypair(tmp_path, "other")
    base = f"{registry.host}/{repo_name}"

    def push(name: str, tag: str = "2026.04") -> tuple[str, str]:
        digest = push_image(client, Reference(registry.host, f"{repo_name}/{name}", tag), small_image(name))
        return f"{base}/{name}:{tag}", f"{base}/{name}@{digest}"

    released, released_pinned = push("released")
    unsigned, _ = push("unsigned")
    stale, _ = push("stale")
    foreign, _ = push("foreign")
    index_ref = Reference(registry.host, f"{repo_name}/multi", "2026.04")
    push_image(client, index_ref, two_platform_index("multi"))
    multi = f"{base}/multi:2026.04"
    vouch("release", "--key", str(priv), released, multi)
    vouch("release", "--key", str(other_priv), foreign)
    vouch("sign", "--key", str(priv), stale)
    (tmp_path / "old-bom.json").write_text(_stale_bom())
    vouch("attest", "--key", str(priv), "--type", "cyclonedx", "--predicate", str(tmp_path / "old-bom.json"), stale)

    name = f"akko-{uuid.uuid4().hex[:8]}"
    values = ["--set", f"imagePolicy.name={name}", "--set", f"imagePolicy.images[0]={base}/*",
              "--set-file", f"imagePolicy.publicKeys={pub}"]
    helm(kube, "install", name, str(CHART), *values)
    try:
        kube.wait_policy(name)
        policy = kube.get_json("clusterpolicy", name)
        assert policy["spec"]["rules"][0]["verifyImages"][0]["failureAction"] == "Audit"

        # W1, audit: the unsigned Pod is admitted and stored; the violation is reported by Kyverno
        pod = pod_name("unsigned")
        ok, out = kube.admit_pod(pod, unsigned)
        assert ok, out
        ok, out = kube.admit_pod(pod_name("released"), released)
        assert ok, out
        assert json.loads(out)["metadata"]["annotations"]["kyverno.io/verify-images"]
        report = kube.wait_report(pod, name)
        assert report["result"] == "fail" and "no signatures found" in report["message"], report

        # W2, enforce: one Helm value flips it
        helm(kube, "upgrade", name, str(CHART), *values, "--set", "imagePolicy.enforce=true")
        kube.wait_policy(name)
        assert kube.get_json("clusterpolicy", name)["spec"]["rules"][0]["verifyImages"][0]["failureAction"] \
            == "Enforce"
        wait_refused(kube, unsigned)
        ok, out = kube.admit_pod(pod_name("unsigned"), unsigned)
        assert not ok and REFUSED in out and "no signatures found" in out, out
        for image in (released, released_pinned, multi):  # by tag, by digest, a multi-arch index by tag
            ok, out = kube.admit_pod(pod_name("released"), image)
            assert ok, f"{image}: {out}"
            assert json.loads(out)["metadata"]["annotations"]["kyverno.io/verify-images"] \
                == json.dumps({image: "pass"}, separators=(",", ":")), out
        ok, out = kube.admit_pod(pod_name("stale"), stale)
        assert not ok and REFUSED in out, out  # signed, but its SBOM is 120 days old
        ok, out = kube.admit_pod(pod_name("foreign"), foreign)
        assert not ok and REFUSED in out, out  # signed by a key the policy does not trust
        ok, out = kube.admit_pod(pod_name("outside"), f"{registry.host}/elsewhere/app:1")
        assert ok, out  # outside the policy's images: not Kyverno's business
    finally:
        helm(kube, "uninstall", name)
