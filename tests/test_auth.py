"""Registry auth against real docker-registry: the Bearer token flow (as Harbor), credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.registry import RegistryServer, start_registry
from tests.support.tokenserver import TokenServer
from vouch.errors import RegistryError
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference


@pytest.fixture(scope="module")
def token_registry() -> Iterator[tuple[RegistryServer, TokenServer]]:
    ts = TokenServer(Path(tempfile.mkdtemp(prefix="vouch-token-"))).start()
    server = start_registry("token", token={"realm": ts.realm, "service": ts.service, "issuer": ts.issuer,
                                            "rootcertbundle": str(ts.cert_path)})
    yield server, ts
    server.stop()
    ts.stop()


def _docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, object]) -> None:
    cfg = tmp_path / "docker-config"
    cfg.mkdir(exist_ok=True)
    (cfg / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))


def test_bearer_token_flow(token_registry: tuple[RegistryServer, TokenServer], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, repo_name: str) -> None:
    server, ts = token_registry
    auth = base64.b64encode(f"{ts.username}:{ts.password}".encode()).decode()
    _docker_config(tmp_path, monkeypatch, {"auths": {server.host: {"auth": auth}}})
    ts.requests.clear()
    with RegistryClient(RegistryOptions(backoff=0.01)) as client:
        ref = Reference(server.host, repo_name, "v1")
        img = small_image("token")
        assert push_image(client, ref, img) == img.digest
        assert client.get_manifest(ref).digest == img.digest
        assert client.list_tags(ref) == ["v1"]
        before = len(ts.requests)
        client.get_manifest(ref)
        client.resolve(ref)
        assert len(ts.requests) == before  # tokens are cached per scope
    scopes = {s for r in ts.requests for s in r["scope"]}  # type: ignore[attr-defined]
    # distribution builds the challenge's action list from a Go map: "pull,push" or "push,pull"
    actions = [set(s.rsplit(":", 1)[1].split(",")) for s in scopes if s.startswith(f"repository:{repo_name}:")]
    assert {"pull", "push"} in actions
    assert all(r["authorized"] for r in ts.requests)
    assert all(r["service"] == [ts.service] for r in ts.requests)


def test_bearer_wrong_password(token_registry: tuple[RegistryServer, TokenServer], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch, repo_name: str) -> None:
    server, ts = token_registry
    auth = base64.b64encode(f"{ts.username}:wrong-password".encode()).decode()
    _docker_config(tmp_path, monkeypatch, {"auths": {server.host: {"auth": auth}}})
    with RegistryClient(RegistryOptions(retries=0)) as client, pytest.raises(RegistryError) as info:
        client.resolve(Reference(server.host, repo_name, "v1"))
    assert "refused the credentials" in str(info.value) and "wrong-password" not in str(info.value)


def test_credential_helper(basic_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           repo_name: str) -> None:
    """A docker-credential-* helper on PATH speaking the real protocol (server URL on stdin, JSON out)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-vouchtest"
    log = tmp_path / "helper.log"
    helper.write_text(f"""#!{sys.executable}
import json, sys
assert sys.argv[1] == "get"
server = sys.stdin.read().strip()
open({str(log)!r}, "a").write(server + "\\n")
if server != {basic_registry.host!r}:
    print("credentials not found in native keychain"); sys.exit(1)
user, secret = {basic_registry.username!r}, {basic_registry.password!r}
print(json.dumps({{"ServerURL": server, "Username": user, "Secret": secret}}))
""")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    _docker_config(tmp_path, monkeypatch, {"credHelpers": {basic_registry.host: "vouchtest"}})
    with RegistryClient() as client:
        ref = Reference(basic_registry.host, repo_name, "v1")
        img = small_image("helper")
        assert push_image(client, ref, img) == img.digest
    assert log.read_text().splitlines()[0] == basic_registry.host
    # credsStore: the same helper as the default store
    _docker_config(tmp_path, monkeypatch, {"credsStore": "vouchtest"})
    with RegistryClient() as client:
        assert client.resolve(Reference(basic_registry.host, repo_name, "v1")).digest == img.digest


def test_missing_credential_helper_is_a_clear_error(basic_registry: RegistryServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, repo_name: str) -> None:
    _docker_config(tmp_path, monkeypatch, {"credHelpers": {basic_registry.host: "nosuchhelper"}})
    r = subprocess.run([sys.executable, "-m", "vouch", "digest", f"{basic_registry.host}/{repo_name}:v1"],
                       capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert r.returncode == 2 and "docker-credential-nosuchhelper" in r.stderr and "Traceback" not in r.stderr
