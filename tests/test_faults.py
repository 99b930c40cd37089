"""The client through a fault-injecting proxy in front of a real registry."""

from __future__ import annotations

import time

import pytest

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import small_image
from tests.support.registry import RegistryServer
from vouch.errors import DigestMismatchError, RegistryError
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference


def _setup(registry: RegistryServer, proxy: FaultProxy, repo: str) -> tuple[RegistryClient, Reference]:
    img = small_image("faults", size=200_000)
    with RegistryClient() as direct:
        push_image(direct, Reference(registry.host, repo, "v1"), img)
    client = RegistryClient(RegistryOptions(backoff=0.01, retries=3))
    ref = Reference(proxy.host, repo, "v1")
    return client, ref


def test_500_is_retried(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    proxy.add(Rule("status", "GET", "/manifests/", times=2, status=500))
    assert client.get_manifest(ref).digest
    assert proxy.count("GET", "/manifests/") == 3  # two injected failures, then the real answer


def test_persistent_503_gives_clear_error(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    proxy.add(Rule("status", "HEAD", "/manifests/", times=100, status=503))
    with pytest.raises(RegistryError) as info:
        client.resolve(ref)
    assert "HTTP 503" in str(info.value) and info.value.exit_code == 3


def test_429_honours_retry_after(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    proxy.add(Rule("status", "GET", "/manifests/", times=1, status=429, retry_after="1"))
    start = time.monotonic()
    client.get_manifest(ref)
    assert time.monotonic() - start >= 0.9  # waited as told, not the 10 ms backoff


def test_blob_cut_mid_stream_resumes(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    m = client.get_manifest(ref)
    layer = m.layers()[0]
    proxy.add(Rule("cut", "GET", "/blobs/sha256:", times=2, after=50_000))
    data = b"".join(client.iter_blob(ref, layer.digest))
    assert len(data) == layer.size
    assert proxy.count("GET", "/blobs/") >= 3


def test_corrupt_blob_is_never_accepted(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    layer = client.get_manifest(ref).layers()[0]
    proxy.add(Rule("corrupt", "GET", "/blobs/sha256:", times=100))
    with pytest.raises(DigestMismatchError, match="refusing it"):
        client.get_blob(ref, layer.digest)


def test_corrupt_manifest_once_is_refetched(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client, ref = _setup(registry, proxy, repo_name)
    good = client.get_manifest(ref).digest
    proxy.add(Rule("corrupt", "GET", "/manifests/", times=1))
    assert client.get_manifest(ref.with_digest(good)).digest == good
    proxy.add(Rule("corrupt", "GET", "/manifests/", times=100))
    with pytest.raises(DigestMismatchError):
        client.get_manifest(ref.with_digest(good))


def test_slow_response_times_out_with_message(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    _, ref = _setup(registry, proxy, repo_name)
    slow = RegistryClient(RegistryOptions(timeout=0.5, retries=1, backoff=0.01))
    proxy.add(Rule("delay", "GET", "/manifests/", times=100, seconds=2.0))
    with pytest.raises(RegistryError, match="failed after 2 attempt"):
        slow.get_manifest(ref)


def test_push_retries_after_server_errors(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    client = RegistryClient(RegistryOptions(backoff=0.01, retries=3))
    ref = Reference(proxy.host, repo_name, "pushed")
    proxy.add(Rule("status", "POST", "/blobs/uploads/", times=2, status=502))
    proxy.add(Rule("status", "PUT", "/manifests/", times=1, status=500))
    img = small_image()
    assert push_image(client, ref, img) == img.digest
    with RegistryClient() as direct:
        assert direct.resolve(Reference(registry.host, repo_name, "pushed")).digest == img.digest


def test_no_authorization_forwarded_on_cross_host_redirect() -> None:
    """Blob GETs may redirect to object storage: the Authorization header must not follow."""
    import http.server
    import threading

    seen: dict[str, str | None] = {}

    class Storage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            seen["storage_auth"] = self.headers.get("Authorization")
            body = b"hello"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    storage = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Storage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    target = f"http://127.0.0.2:{storage.server_address[1]}/bucket/blob"

    class Registry(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/v2/":
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("Authorization") != "Basic dTpw":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="t"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            seen["registry_auth"] = self.headers.get("Authorization")
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    reg = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=reg.serve_forever, daemon=True).start()
    try:
        import os

        os.environ["VOUCH_REGISTRY_USERNAME"], os.environ["VOUCH_REGISTRY_PASSWORD"] = "u", "p"
        client = RegistryClient(RegistryOptions(retries=0))
        ref = Reference(f"127.0.0.1:{reg.server_address[1]}", "r", "v1")
        from vouch.oci.digest import sha256_digest

        assert client.get_blob(ref, sha256_digest(b"hello")) == b"hello"
        assert seen["registry_auth"] == "Basic dTpw"
        assert seen["storage_auth"] is None
    finally:
        del os.environ["VOUCH_REGISTRY_USERNAME"], os.environ["VOUCH_REGISTRY_PASSWORD"]
        reg.shutdown()
        storage.shutdown()


# ---- a registry without the referrers API is asked once per command -----------------------------------------

def test_registry_without_referrers_api_is_asked_once(registry: RegistryServer, proxy: FaultProxy,
                                                      repo_name: str) -> None:
    """distribution has no referrers route ("404 page not found", no OCI error code): the first lookup says
    so for the whole host, and verifying a release's other images does not ask again (cosign's layout is
    read from the fallback tag instead)."""
    client, ref = _setup(registry, proxy, repo_name)
    digest = client.get_manifest(ref).digest
    assert client.referrers(ref, digest) is None
    other = Reference(proxy.host, f"{repo_name}-other", "v1")
    assert client.referrers(other, digest) is None and client.referrers(ref, digest) is None
    assert proxy.count("GET", "/referrers/") == 1
    # another client (another command) asks again
    assert RegistryClient().referrers(ref, digest) is None and proxy.count("GET", "/referrers/") == 2


def test_referrers_404_with_an_error_code_is_not_taken_for_a_missing_api(registry: RegistryServer,
                                                                         proxy: FaultProxy, repo_name: str) -> None:
    """A 404 that names an OCI error code (NAME_UNKNOWN: the API answered, about this repository) says nothing
    about the host: the next repository is asked."""
    client, ref = _setup(registry, proxy, repo_name)
    digest = client.get_manifest(ref).digest
    proxy.add(Rule("status", "GET", "/referrers/", times=1, status=404,
                   body=b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}'))
    assert client.referrers(ref, digest) is None
    assert client.referrers(ref, digest) is None
    assert proxy.count("GET", "/referrers/") == 2
