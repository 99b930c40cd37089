"""Signing through the fault proxy: retried where safe, and never a lost signature."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import small_image
from tests.support.keys import new_signer, write_keypair
from tests.support.registry import RegistryServer
from vouch.errors import RegistryError
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference
from vouch.signing.sign import sign_image
from vouch.verify.signatures import verify_image


def _image(registry: RegistryServer, repo: str) -> str:
    with RegistryClient() as c:
        return push_image(c, Reference(registry.host, repo, "v1"), small_image("sf"))


def test_sign_survives_transient_errors(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    digest = _image(registry, repo_name)
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.sig", times=2, status=503))
    proxy.add(Rule("status", "GET", r"/manifests/sha256-.*\.sig", times=1, status=500))
    client = RegistryClient(RegistryOptions(backoff=0.01))
    signer = new_signer()
    [r] = sign_image(client, signer, Reference(proxy.host, repo_name, None, digest))
    assert r.signed
    with RegistryClient() as direct:
        assert verify_image(direct, Reference(registry.host, repo_name, None, digest), [signer.public_key]).ok


def test_manifest_blob_unknown_is_retried(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    """distribution can briefly not see a blob that a concurrent writer is committing (it rewrites the
    repository link in place); the manifest PUT then fails with 400 BLOB_UNKNOWN: retried, not fatal."""
    digest = _image(registry, repo_name)
    body = (b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},'
            b'{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}')
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.sig", times=2, status=400, body=body))
    signer = new_signer()
    [r] = sign_image(RegistryClient(RegistryOptions(backoff=0.01)), signer, Reference(proxy.host, repo_name, None,
                                                                                          digest))
    assert r.signed
    with RegistryClient() as direct:
        assert verify_image(direct, Reference(registry.host, repo_name, None, digest), [signer.public_key]).ok


def test_failed_push_never_removes_existing_signature(registry: RegistryServer, proxy: FaultProxy,
                                                      repo_name: str) -> None:
    digest = _image(registry, repo_name)
    first, second = new_signer(), new_signer()
    with RegistryClient() as direct:
        sign_image(direct, first, Reference(registry.host, repo_name, None, digest))
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.sig", times=1000, status=500))
    client = RegistryClient(RegistryOptions(backoff=0.01, retries=2))
    try:
        sign_image(client, second, Reference(proxy.host, repo_name, None, digest))
        raise AssertionError("signing should have failed")
    except RegistryError as exc:
        assert "HTTP 500" in str(exc)
    with RegistryClient() as direct:
        ref = Reference(registry.host, repo_name, None, digest)
        assert verify_image(direct, ref, [first.public_key]).ok
        assert not verify_image(direct, ref, [second.public_key]).ok


def test_cli_registry_failure_is_one_line_exit_3(registry: RegistryServer, proxy: FaultProxy, repo_name: str,
                                                 tmp_path: Path) -> None:
    digest = _image(registry, repo_name)
    priv, _, _ = write_keypair(tmp_path, "k")
    proxy.add(Rule("status", "PUT", r"/manifests/", times=1000, status=500))
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    image = f"{proxy.host}/{repo_name}@{digest}"
    r = subprocess.run([sys.executable, "-m", "vouch", "sign", "--key", str(priv), image],
                       capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 3
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "HTTP 500" in errors[0]
    assert "Traceback" not in r.stderr


def test_cli_exit_codes(registry: RegistryServer, repo_name: str, tmp_path: Path) -> None:
    digest = _image(registry, repo_name)
    priv, pub, _ = write_keypair(tmp_path, "k")
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                              timeout=120, stdin=subprocess.DEVNULL)

    image = f"{registry.host}/{repo_name}@{digest}"
    assert run("verify", "--key", str(pub), image).returncode == 1  # unsigned: verification said no
    assert run("verify", "--key", str(pub), "NOT A REF").returncode == 2  # bad input
    assert run("sign", "--key", str(priv), "-a", "novalue", image).returncode == 2
    assert run("verify", "--key", str(pub), "127.0.0.1:1/x:y").returncode == 3  # nothing listens there
    assert run("sign", "--key", str(priv), image).returncode == 0
    r = run("verify", "--key", str(pub), image)
    assert r.returncode == 0 and r.stdout.startswith("[{")
    r = run("--output", "json", "verify", "--key", str(pub), image)
    assert r.returncode == 0 and '"verified": true' in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("vouch ")
    r = run("no-such-command")
    assert r.returncode == 2
    for line in (r.stderr or "").splitlines():
        assert "Traceback" not in line


def test_bundle_fallback_index_survives_faults_and_keeps_others(registry: RegistryServer, proxy: FaultProxy,
                                                                repo_name: str) -> None:
    """cosign 3's layout on a registry without referrers API: the fallback index `sha256-<hex>` is
    read-modify-written. 503s and a 500 on its read are retried; a failed write never drops another
    signer's bundle; a 404 on the referrers API is what tells the layout (not an error)."""
    digest = _image(registry, repo_name)
    first, second, third = new_signer(), new_signer(), new_signer()
    ref = Reference(registry.host, repo_name, None, digest)
    with RegistryClient() as direct:
        sign_image(direct, first, ref, layouts=("bundle",))
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-[0-9a-f]{64}$", times=2, status=503))
    proxy.add(Rule("status", "GET", r"/manifests/sha256-[0-9a-f]{64}$", times=1, status=500))
    client = RegistryClient(RegistryOptions(backoff=0.01))
    [r] = sign_image(client, second, Reference(proxy.host, repo_name, None, digest), layouts=("bundle",))
    assert r.signed and proxy.count("PUT", r"/manifests/sha256-[0-9a-f]{64}$") >= 3
    proxy.clear()
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-[0-9a-f]{64}$", times=1000, status=500))
    try:
        sign_image(RegistryClient(RegistryOptions(backoff=0.01, retries=2)), third,
                   Reference(proxy.host, repo_name, None, digest), layouts=("bundle",))
        raise AssertionError("signing should have failed")
    except RegistryError as exc:
        assert "HTTP 500" in str(exc)
    with RegistryClient() as direct:
        for signer, expected in ((first, True), (second, True), (third, False)):
            assert verify_image(direct, ref, [signer.public_key], layouts=("bundle",)).ok is expected
