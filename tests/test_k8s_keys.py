"""Keys in a Kubernetes Secret (`vouch keys init`, `k8s://` references), against the real kube-apiserver of
`vouch.testbed.kube` (the session fixture `kube_cluster`): Bearer tokens, RBAC, 409 on an existing name, 404, Status
objects, immutable Secrets — all the real server's. What it cannot answer (invalid JSON, a Secret whose data is not
base64) is in tests/test_hostile_input.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.images import small_image
from tests.support.registry import RegistryServer
from vouch.keys.cosign import load_private_key, load_public_keys, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.kube import KubeCluster


class RealSecrets:
    """The Secrets of the real API server, read with kubectl, as a read-only mapping (namespace, name) -> object."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster

    def __contains__(self, key: object) -> bool:
        assert isinstance(key, tuple)
        return self.cluster.kubectl("get", "secret", key[1], "-n", key[0], check=False).returncode == 0

    def __getitem__(self, key: tuple[str, str]) -> dict[str, Any]:
        doc: dict[str, Any] = self.cluster.get_json("secret", key[1], "-n", key[0])
        return doc


@dataclass
class RealKube:
    cluster: KubeCluster
    secrets: RealSecrets


@pytest.fixture
def kube(kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealKube]:
    """The session's real kube-apiserver, namespace `harbor` empty of Secrets, KUBECONFIG its admin's."""
    if kube_cluster.kubectl("get", "namespace", "harbor", check=False).returncode != 0:
        kube_cluster.kubectl("create", "namespace", "harbor")
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    yield RealKube(kube_cluster, RealSecrets(kube_cluster))
    kube_cluster.kubectl("delete", "secrets", "--all", "-n", "harbor")


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=full,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_keys_init_prints_the_secret_as_cosign_writes_it(tmp_path: Path) -> None:
    r = vouch("keys", "init", "--public-key-out", str(tmp_path / "cosign.pub"))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["kind"] == "Secret" and doc["type"] == "Opaque" and doc["immutable"] is True
    assert doc["metadata"] == {"name": "akko-cosign-keys", "namespace": "harbor",
                               "labels": {"app.kubernetes.io/managed-by": "vouch"}}
    data = {k: base64.b64decode(v) for k, v in doc["data"].items()}
    assert set(data) == {"cosign.key", "cosign.pub", "cosign.password"}
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in data["cosign.key"]
    key = load_private_key(data["cosign.key"], data["cosign.password"])
    assert public_key_pem(key) == data["cosign.pub"] == (tmp_path / "cosign.pub").read_bytes()
    assert len(data["cosign.password"]) >= 32  # a random password when COSIGN_PASSWORD is not set


def test_apply_then_sign_and_verify_with_k8s_refs(kube: RealKube, registry: RegistryServer,
                                                  client: RegistryClient, repo_name: str) -> None:
    r = vouch("keys", "init", "--apply", "--namespace", "harbor", "--secret", "akko-cosign-keys")
    assert r.returncode == 0, r.stderr
    assert ("harbor", "akko-cosign-keys") in kube.secrets
    again = vouch("keys", "init", "--apply")
    assert again.returncode == 2 and "already exists" in again.stderr  # never replaced silently
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("k8s"))
    image = f"{registry.host}/{repo_name}@{digest}"
    r = vouch("sign", "--key", "k8s://harbor/akko-cosign-keys", image)
    assert r.returncode == 0, r.stderr
    r = vouch("verify", "--key", "k8s://harbor/akko-cosign-keys", image)
    assert r.returncode == 0, r.stderr
    pub = base64.b64decode(kube.secrets[("harbor", "akko-cosign-keys")]["data"]["cosign.pub"])
    assert json.loads(r.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == digest
    assert load_public_keys(pub)


def test_k8s_errors_are_one_line(kube: RealKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = vouch("verify", "--key", "k8s://harbor/missing", "127.0.0.1:1/x:y")
    assert r.returncode == 3 and "secret harbor/missing: not found" in r.stderr and "Traceback" not in r.stderr
    r = vouch("verify", "--key", "k8s://harbor", "127.0.0.1:1/x:y")
    assert r.returncode == 2 and "k8s://NAMESPACE/NAME" in r.stderr
    cfg = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "bad").write_text(yaml.safe_dump(cfg))
    r = vouch("keys", "init", "--apply", env={"KUBECONFIG": str(tmp_path / "bad")})
    assert r.returncode == 3 and "refused the credentials (HTTP 401)" in r.stderr and "wrong" not in r.stderr


def test_rotate_keeps_previous_key_and_overlap(kube: RealKube, registry: RegistryServer, client: RegistryClient,
                                               repo_name: str, tmp_path: Path) -> None:
    assert vouch("keys", "init", "--apply").returncode == 0
    old_pub = base64.b64decode(kube.secrets[("harbor", "akko-cosign-keys")]["data"]["cosign.pub"])
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("rot"))
    image = f"{registry.host}/{repo_name}@{digest}"
    assert vouch("sign", "--key", "k8s://harbor/akko-cosign-keys", image).returncode == 0
    (tmp_path / "release.yaml").write_text(yaml.safe_dump({"images": [image]}))
    r = vouch("keys", "rotate", "--public-key-out", str(tmp_path / "new.pub"), "--previous-key-out",
              str(tmp_path / "old.pub"), "--resign", str(tmp_path / "release.yaml"))
    assert r.returncode == 0, r.stderr
    live = kube.secrets[("harbor", "akko-cosign-keys")]["data"]
    previous = kube.secrets[("harbor", "akko-cosign-keys-previous")]["data"]
    assert base64.b64decode(previous["cosign.pub"]) == old_pub  # the old key is kept
    # cosign.pub is the new key alone (stock cosign reads one key); the previous one stands beside it
    assert len(load_public_keys(base64.b64decode(live["cosign.pub"]))) == 1
    assert base64.b64decode(live["cosign.previous.pub"]) == old_pub
    assert (tmp_path / "new.pub").read_bytes() == base64.b64decode(live["cosign.pub"])
    assert (tmp_path / "old.pub").read_bytes() == old_pub
    # during the overlap the image carries both signatures; each key alone verifies it
    new_only, old_only = tmp_path / "new.pub", tmp_path / "old.pub"
    assert public_key_pem(load_public_keys(new_only.read_bytes())[0]) == new_only.read_bytes()
    for key in (str(new_only), str(old_only), "k8s://harbor/akko-cosign-keys"):
        assert vouch("verify", "--key", key, image).returncode == 0, key
    r = vouch("verify-attestation", "--key", str(new_only), "--type", "cyclonedx", image)
    assert r.returncode == 0, r.stderr
