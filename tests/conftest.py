"""Fixtures: real docker-registry instances (plain, Basic auth, TLS), a fault proxy, clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryServer, start_registry
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.exists():  # CI clones beside a copy of shared/
    SHARED = Path(os.environ.get("VOUCH_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
VECTORS = SHARED / "vectors"


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    server = start_registry("plain")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry2() -> Iterator[RegistryServer]:
    server = start_registry("plain")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry() -> Iterator[RegistryServer]:
    server = start_registry("basic")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[RegistryServer]:
    server = start_registry("tls")
    yield server
    server.stop()


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    c = RegistryClient(RegistryOptions(backoff=0.01))
    yield c
    c.close()


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host).start()
    yield p
    p.stop()


@pytest.fixture
def repo_name() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def ref_in(server_host: str, repo: str, tag: str | None = "v1") -> Reference:
    return Reference(server_host, repo, tag)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's Docker credentials or a stray COSIGN_* setting."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    for var in ("COSIGN_REPOSITORY", "COSIGN_PASSWORD", "VOUCH_REGISTRY_USERNAME", "VOUCH_REGISTRY_PASSWORD",
                "VOUCH_REGISTRY_HOST", "REGISTRY_AUTH_FILE", "VOUCH_REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(var, raising=False)


from vouch.testbed.sigstore import SigstoreStack, start_sigstore_stack  # noqa: E402


@pytest.fixture(scope="session")
def sigstore_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigstoreStack]:
    """The private Sigstore stack (Fulcio, CT log, Rekor v1 and v2, TSA, OIDC issuer), once per session.
    It needs a network namespace with only lo (unshare --net) or VOUCH_SIGSTORE_ANY_NETWORK=1."""
    stack = start_sigstore_stack(tmp_path_factory.mktemp("sigstore"))
    yield stack
    stack.stop()


from vouch.testbed.kube import KubeCluster, start_kube  # noqa: E402


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real etcd + kube-apiserver + Kyverno admission controller (its webhook), once per session (~15 s)."""
    cluster = start_kube(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()
