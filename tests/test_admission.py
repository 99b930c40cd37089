"""Issue 19: admission for real. A real kube-apiserver (with etcd) calls the real Kyverno admission controller
(v1.19.0, out of cluster, `vouch.testbed.kube`) as its webhook; Kyverno checks the cosign signatures and the
CycloneDX attestation in the real local registry. The Helm chart is installed with the real helm; Pods are created
with the real kubectl. Nothing here is imitated: a refusal is the API server's answer."""

from __future__ import annotations

import base64
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
from vouch.testbed.sigstore import SigstoreStack

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
        # Kyverno 1.19 reports either its verification error, or (when the reports controller writes the
        # result from the admission review's verify-images annotation first) "unverified image <ref>": both
        # name this image as failing the policy, which is what audit mode promises.
        assert report["result"] == "fail", report
        assert "no signatures found" in report["message"] or report["message"] == f"unverified image {unsigned}", \
            report

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


def _released(client: RegistryClient, registry: RegistryServer, repo: str, label: str, key: str) -> str:
    ref = Reference(registry.host, f"{repo}/{label}", "2026.04")
    digest = push_image(client, ref, small_image(label))
    image = f"{registry.host}/{repo}/{label}@{digest}"
    vouch("release", "--key", key, image)
    return image


def test_keys_in_the_api_server_and_rotation_at_admission(kube: KubeCluster, registry: RegistryServer,
                                                          client: RegistryClient, repo_name: str,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`keys init --apply` and `keys rotate` against the real API server; `k8s://` keys sign and verify through it;
    during the overlap the webhook admits images of both keys, after it only the new key's; RBAC refusals are one
    line."""
    ns = f"harbor-{uuid.uuid4().hex[:6]}"
    secret = "akko-cosign-keys"
    kube.kubectl("create", "namespace", ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    env = {"KUBECONFIG": str(kube.kubeconfig)}
    r = vouch("keys", "init", "--apply", "--namespace", ns, "--secret", secret, "--public-key-out",
              str(tmp_path / "first.pub"), env=env)
    stored = kube.get_json("secret", secret, "-n", ns)
    assert stored["immutable"] is True and stored["type"] == "Opaque"
    assert set(stored["data"]) == {"cosign.key", "cosign.pub", "cosign.password"}
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in base64.b64decode(stored["data"]["cosign.key"])
    # the API server itself refuses to change an immutable Secret; vouch never tries to replace it
    patch = kube.kubectl("patch", "secret", secret, "-n", ns, "-p", '{"data":{"cosign.pub":"eA=="}}', check=False)
    assert patch.returncode != 0 and "immutable" in patch.stderr, patch.stderr
    again = vouch("keys", "init", "--apply", "--namespace", ns, "--secret", secret, env=env, ok=False)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    key = f"k8s://{ns}/{secret}"

    current = _released(client, registry, repo_name, "current", key)
    older = _released(client, registry, repo_name, "older", key)  # an older release, never re-signed
    assert vouch("verify", "--key", key, current, env=env).returncode == 0

    name = f"akko-{uuid.uuid4().hex[:8]}"
    values = ["--set", f"imagePolicy.name={name}", "--set", f"imagePolicy.images[0]={registry.host}/{repo_name}/*",
              "--set", "imagePolicy.enforce=true"]
    first_pub = tmp_path / "first.pub"
    helm(kube, "install", name, str(CHART), *values, "--set-file", f"imagePolicy.publicKeys={first_pub}")
    try:
        kube.wait_policy(name)
        for image in (current, older):
            ok, out = kube.admit_pod(pod_name("before"), image)
            assert ok, out

        new_pub, prev_pub = tmp_path / "cosign.pub", tmp_path / "cosign.previous.pub"
        (tmp_path / "release.yaml").write_text(json.dumps({"images": [current]}))
        vouch("keys", "rotate", "--namespace", ns, "--secret", secret, "--public-key-out", str(new_pub),
              "--previous-key-out", str(prev_pub), "--resign", str(tmp_path / "release.yaml"), env=env)
        live = kube.get_json("secret", secret, "-n", ns)
        previous = kube.get_json("secret", f"{secret}-previous", "-n", ns)
        assert live["immutable"] is True and previous["immutable"] is True
        assert base64.b64decode(live["data"]["cosign.pub"]) == new_pub.read_bytes() != first_pub.read_bytes()
        assert base64.b64decode(previous["data"]["cosign.pub"]) == first_pub.read_bytes() == prev_pub.read_bytes()
        assert previous["data"]["cosign.key"] == stored["data"]["cosign.key"]  # the previous key is kept whole

        # the overlap: the chart trusts both keys
        helm(kube, "upgrade", name, str(CHART), *values, "--set-file", f"imagePolicy.publicKeys={new_pub}",
             "--set-file", f"imagePolicy.previousPublicKeys={prev_pub}")
        kube.wait_policy(name)
        kube._until(lambda: len(kube.get_json("clusterpolicy", name)["spec"]["rules"][0]["verifyImages"][0]
                                ["attestors"][0]["entries"]) == 2, "the overlap policy")
        for image in (current, older):
            ok, out = kube.admit_pod(pod_name("overlap"), image)
            assert ok, f"{image}: {out}"
        # after the overlap: the new key alone; the older release (previous key only) is refused
        helm(kube, "upgrade", name, str(CHART), *values, "--set-file", f"imagePolicy.publicKeys={new_pub}")
        kube.wait_policy(name)
        wait_refused(kube, older)
        ok, out = kube.admit_pod(pod_name("after"), older)
        assert not ok and REFUSED in out, out
        ok, out = kube.admit_pod(pod_name("after"), current)
        assert ok, out
    finally:
        helm(kube, "uninstall", name)

    # RBAC, for real: a user with no role on Secrets gets a one-line refusal that names the fix
    ci = {"KUBECONFIG": str(kube.kubeconfig_for("ci"))}
    r = vouch("verify", "--key", key, current, env=ci, ok=False)
    assert r.returncode == 3 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "HTTP 403" in r.stderr and 'cannot get resource "secrets"' in r.stderr, r.stderr
    bad = {"KUBECONFIG": str(kube.kubeconfig_for("ci", token="not-a-token"))}
    r = vouch("verify", "--key", key, current, env=bad, ok=False)
    assert r.returncode == 3 and "HTTP 401" in r.stderr and "not-a-token" not in r.stderr, r.stderr
    # … and once a Role grants it, the same user verifies through the API server
    kube.kubectl("create", "role", "read-keys", "-n", ns, "--verb=get", "--resource=secrets",
                 f"--resource-name={secret}")
    kube.kubectl("create", "rolebinding", "ci-read-keys", "-n", ns, "--role=read-keys", "--user=ci")
    kube._until(lambda: vouch("verify", "--key", key, current, env=ci, ok=False).returncode == 0,
                "the RoleBinding to take effect")


def test_keyless_release_at_admission(kube: KubeCluster, sigstore_stack: SigstoreStack, registry: RegistryServer,
                                      client: RegistryClient, repo_name: str) -> None:
    """The chart's keyless attestor, through the real webhook: a `vouch release --keyless` image is admitted, one
    signed by another identity (same Fulcio) refused with Kyverno's subject mismatch, an unsigned one refused."""
    s = sigstore_stack

    def image(label: str) -> str:
        digest = push_image(client, Reference(registry.host, f"{repo_name}/{label}", "1"), small_image(f"kl-{label}"))
        return f"{registry.host}/{repo_name}/{label}@{digest}"

    def release(img: str, token: str) -> None:
        env = {k: "" for k in os.environ if k.startswith(("COSIGN_", "SIGSTORE_"))}
        vouch("release", "--keyless", "--fulcio-url", s.fulcio_url, "--rekor-url", s.rekor_url, "--trusted-root",
              str(s.trusted_root), "--identity-token", token, img, env=env)

    signed, other, unsigned = image("signed"), image("other"), image("unsigned")
    release(signed, s.token())
    other_identity = s.identity(claims={"project_path": "platform/other"})
    release(other, s.token(claims={"project_path": "platform/other"}))

    name = f"akko-{uuid.uuid4().hex[:8]}"
    helm(kube, "install", name, str(CHART), "--set", f"imagePolicy.name={name}",
         "--set", f"imagePolicy.images[0]={registry.host}/{repo_name}/*", "--set", "imagePolicy.enforce=true",
         "--set", "imagePolicy.keyless.enabled=true", "--set", f"imagePolicy.keyless.subject={s.identity()}",
         "--set", f"imagePolicy.keyless.issuer={s.oidc_issuer}",
         "--set-file", f"imagePolicy.keyless.roots={s.fulcio_chain_pem}",
         "--set", "imagePolicy.keyless.rekor.url=http://127.0.0.1:9",  # nothing listens: the SET must suffice
         "--set-file", f"imagePolicy.keyless.rekor.pubkey={s.rekor_public_key_pem}",
         "--set-file", f"imagePolicy.keyless.ctlog.pubkey={s.ct_log_public_key_pem}")
    try:
        kube.wait_policy(name)
        ok, out = kube.admit_pod(pod_name("keyless"), signed)
        assert ok, out
        ok, out = kube.admit_pod(pod_name("other"), other)
        assert not ok and REFUSED in out, out
        assert f"subject mismatch: expected {s.identity()}, received {other_identity}" in out, out
        ok, out = kube.admit_pod(pod_name("unsigned"), unsigned)
        assert not ok and "no signatures found" in out, out
    finally:
        helm(kube, "uninstall", name)
