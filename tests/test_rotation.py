"""Issue 15 (3): key rotation that stock cosign and Kyverno follow, proven at each step with real cosign 2.6.4
and 3.1.2 and the real Kyverno CLI: before the rotation, during the overlap, after it.

The keys live in the real kube-apiserver of vouch.testbed.kube (tests/test_k8s_keys.py's fixture); the same
rotation at admission through Kyverno's real webhook is tests/test_admission.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.support.images import small_image
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from tests.test_k8s_keys import RealKube, kube, vouch  # noqa: F401  (kube is a fixture)
from tests.test_kyverno_apply import admitted
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

pytestmark = pytest.mark.interop
FLAGS = ["--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true"]


def _cosign_ok(tmp_path: Path, key: Path, image: str) -> bool:
    """Stock cosign 2 and 3 agree: True when both verify the signature and the CycloneDX attestation."""
    results = set()
    for c in ("cosign2", "cosign3"):
        sig = run_peer(peer(c), "verify", "--key", str(key), *FLAGS, image, home=tmp_path, check=False)
        att = run_peer(peer(c), "verify-attestation", "--key", str(key), "--type", "cyclonedx", *FLAGS, image,
                       home=tmp_path, check=False)
        results.add(sig.returncode == 0 and att.returncode == 0)
    assert len(results) == 1, "cosign 2 and 3 disagree"
    return results.pop()


def _policy(registry: RegistryServer, repo: str, *keys: Path) -> str:
    args = [a for k in keys for a in ("--key", str(k))]
    r = vouch("policy", "kyverno", *args, "--images", f"{registry.host}/{repo}*", "--mode", "enforce")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_rotation_step_by_step(kube: RealKube, registry: RegistryServer, client: RegistryClient,  # noqa: F811
                               repo_name: str, tmp_path: Path) -> None:
    assert vouch("keys", "init", "--apply").returncode == 0
    old_pub = tmp_path / "old.pub"
    old_pub.write_bytes(base64.b64decode(kube.secrets[("harbor", "akko-cosign-keys")]["data"]["cosign.pub"]))
    current = Reference(registry.host, f"{repo_name}/current", "2026.04")
    older = Reference(registry.host, f"{repo_name}/older", "2026.03")  # an older release, not re-signed
    a = f"{current.registry}/{current.repository}@{push_image(client, current, small_image('a'))}"
    b = f"{older.registry}/{older.repository}@{push_image(client, older, small_image('b'))}"
    for img in (a, b):
        r = vouch("release", "--key", "k8s://harbor/akko-cosign-keys", img)
        assert r.returncode == 0, r.stderr
    (tmp_path / "release.yaml").write_text(yaml.safe_dump({"images": [a]}))

    # before: one key everywhere
    assert _cosign_ok(tmp_path, old_pub, a) and _cosign_ok(tmp_path, old_pub, b)
    old_policy = _policy(registry, repo_name, old_pub)
    assert admitted(tmp_path, old_policy, a)[0] and admitted(tmp_path, old_policy, b)[0]

    # rotate, re-signing the current release with the new key
    new_pub, prev_pub = tmp_path / "cosign.pub", tmp_path / "cosign.previous.pub"
    r = vouch("keys", "rotate", "--public-key-out", str(new_pub), "--previous-key-out", str(prev_pub),
              "--resign", str(tmp_path / "release.yaml"))
    assert r.returncode == 0, r.stderr
    assert prev_pub.read_bytes() == old_pub.read_bytes()

    # during the overlap: the ADR's operator command with the committed cosign.pub works on the current release
    assert _cosign_ok(tmp_path, new_pub, a)  # before this change: exit 12, cosign read only a bundle's first key
    assert not _cosign_ok(tmp_path, new_pub, b)  # the older release: only the previous key signed it …
    assert _cosign_ok(tmp_path, prev_pub, b)  # … and cosign.previous.pub verifies it
    assert _cosign_ok(tmp_path, old_pub, a)  # --resign kept the previous key's signature and SBOM
    # a cluster not yet updated (old key only) still admits the re-signed release; the overlap policy admits both
    assert admitted(tmp_path, old_policy, a)[0]
    overlap = _policy(registry, repo_name, new_pub, prev_pub)
    assert admitted(tmp_path, overlap, a)[0] and admitted(tmp_path, overlap, b)[0]
    for img in (a, b):
        assert vouch("verify", "--key", "k8s://harbor/akko-cosign-keys", img).returncode == 0  # reads both keys

    # after the overlap: the new key alone
    after = _policy(registry, repo_name, new_pub)
    ok, _ = admitted(tmp_path, after, a)
    assert ok
    ok, out = admitted(tmp_path, after, b)
    assert not ok, out[-1000:]


def test_gitops_manifests_for_init_and_rotate(tmp_path: Path) -> None:
    """No cluster: `keys init` prints the Secret (kubectl's -o yaml/json work), `keys rotate --from-manifest`
    prints the rotated Secret and NAME-previous; a warning on stderr whenever a private key is printed."""
    import json

    env = {"COSIGN_PASSWORD": "pw"}
    r = vouch("keys", "init", "-o", "yaml", env=env)
    assert r.returncode == 0, r.stderr
    assert "holds the (encrypted) private key" in r.stderr
    secret = yaml.safe_load(r.stdout)
    assert secret["kind"] == "Secret" and {"cosign.key", "cosign.pub", "cosign.password"} <= set(secret["data"])
    r = vouch("keys", "init", "-o", "json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "Secret"
    (tmp_path / "secret.yaml").write_text(yaml.safe_dump(secret))
    r = vouch("keys", "rotate", "--from-manifest", str(tmp_path / "secret.yaml"), "--public-key-out",
              str(tmp_path / "cosign.pub"), "--previous-key-out", str(tmp_path / "cosign.previous.pub"), env=env)
    assert r.returncode == 0, r.stderr
    assert "holds the (encrypted) private key" in r.stderr
    new, previous = list(yaml.safe_load_all(r.stdout))
    assert previous["metadata"]["name"] == "akko-cosign-keys-previous"
    assert previous["data"]["cosign.key"] == secret["data"]["cosign.key"]  # the old key is kept whole
    assert base64.b64decode(new["data"]["cosign.previous.pub"]) == base64.b64decode(secret["data"]["cosign.pub"])
    assert base64.b64decode(new["data"]["cosign.pub"]) == (tmp_path / "cosign.pub").read_bytes()
    assert (tmp_path / "cosign.previous.pub").read_bytes() == base64.b64decode(secret["data"]["cosign.pub"])
    (tmp_path / "bad.yaml").write_text("kind: ConfigMap\n")
    r = vouch("keys", "rotate", "--from-manifest", str(tmp_path / "bad.yaml"), env=env)
    assert r.returncode == 2 and "is not a Secret manifest" in r.stderr and "Traceback" not in r.stderr
