"""The registry client against real docker-registry instances: plain HTTP, Basic auth, TLS."""

from __future__ import annotations

import base64
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.support.images import small_image, two_platform_index
from tests.support.registry import RegistryServer
from vouch.errors import DigestMismatchError, InputError, NotFoundError, RegistryError
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image, write_layout
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.copy import copy_image
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference
from vouch.oci.source import RegistrySource, open_source, select_platform


def _client_for(server: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RegistryClient:
    if server.mode == "basic":
        cfg = tmp_path / "docker-config"
        cfg.mkdir(exist_ok=True)
        auth = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        (cfg / "config.json").write_text(json.dumps({"auths": {server.host: {"auth": auth}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    ca = str(server.ca_file) if server.ca_file else None
    return RegistryClient(RegistryOptions(ca_file=ca, backoff=0.01))


@pytest.fixture(params=["plain", "basic", "tls"])
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    name = {"plain": "registry", "basic": "basic_registry", "tls": "tls_registry"}[request.param]
    server: RegistryServer = request.getfixturevalue(name)
    return server


def test_push_pull_roundtrip_all_modes(any_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path, repo_name: str) -> None:
    client = _client_for(any_registry, monkeypatch, tmp_path)
    ref = Reference(any_registry.host, repo_name, "v1")
    img = small_image("roundtrip")
    digest = push_image(client, ref, img)
    assert digest == img.digest
    desc = client.resolve(ref)
    assert desc.digest == digest and desc.media_type == mt.OCI_MANIFEST
    m = client.get_manifest(ref)
    assert m.raw == img.manifest_bytes() and m.digest == digest
    layer = img.layers[0]
    assert b"".join(client.iter_blob(ref, layer.digest)) == layer.blob
    assert client.list_tags(ref) == ["v1"]
    client.close()


def test_basic_auth_wrong_password(basic_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch,
                                   repo_name: str) -> None:
    monkeypatch.setenv("VOUCH_REGISTRY_USERNAME", basic_registry.username)
    monkeypatch.setenv("VOUCH_REGISTRY_PASSWORD", "wrong")
    with RegistryClient() as client, pytest.raises(RegistryError) as info:
        client.resolve(Reference(basic_registry.host, repo_name, "v1"))
    assert info.value.status == 401
    assert "wrong" not in str(info.value)


def test_basic_auth_no_credentials(basic_registry: RegistryServer, repo_name: str) -> None:
    with RegistryClient() as client, pytest.raises(RegistryError, match="requires a login"):
        client.resolve(Reference(basic_registry.host, repo_name, "v1"))


def test_tls_untrusted_without_ca(tls_registry: RegistryServer, repo_name: str) -> None:
    # TLS is verified by default: a registry with a private CA is refused with a hint.
    with RegistryClient(RegistryOptions(retries=0)) as client, pytest.raises(RegistryError, match="--ca-file"):
        client.resolve(Reference(tls_registry.host, repo_name, "v1"))


def test_plain_http_refused_for_non_loopback() -> None:
    client = RegistryClient()
    assert client._scheme("registry.example.invalid") == "https"  # never probed over http


def test_digest_reference_and_missing(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "v1")
    img = small_image()
    push_image(client, ref, img)
    by_digest = ref.with_digest(img.digest)
    assert client.get_manifest(by_digest).raw == img.manifest_bytes()
    assert client.head_manifest(ref.with_tag("nope")) is None
    with pytest.raises(NotFoundError):
        client.resolve(ref.with_tag("nope"))
    assert not client.blob_exists(ref, "sha256:" + "0" * 64)


def test_tag_pagination_and_delete(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "t0")
    img = small_image()
    push_image(client, ref, img)
    raw = img.manifest_bytes()
    for i in range(1, 7):
        client.put_manifest(ref.with_tag(f"t{i}"), raw, mt.OCI_MANIFEST)
    assert sorted(client.list_tags(ref, page_size=2)) == [f"t{i}" for i in range(7)]
    client.delete_manifest(ref, img.digest)
    assert client.head_manifest(ref.with_digest(img.digest)) is None


def test_chunked_upload_and_mount(registry: RegistryServer, repo_name: str) -> None:
    client = RegistryClient(RegistryOptions(chunk_size=64 * 1024))
    ref = Reference(registry.host, repo_name, "v1")
    data = os.urandom(300 * 1024)
    digest = sha256_digest(data)
    chunks = [data[i : i + 10_000] for i in range(0, len(data), 10_000)]
    client.push_blob_stream(ref, lambda: iter(chunks), digest)
    assert client.get_blob(ref, digest) == data
    other = Reference(registry.host, repo_name + "-other", "v1")
    assert client.mount_blob(other, digest, ref.repository)
    assert client.blob_exists(other, digest)
    client.close()


def test_chunked_upload_wrong_digest_refused(registry: RegistryServer, client: RegistryClient,
                                              repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "v1")
    with pytest.raises(RegistryError):
        client.push_blob_stream(ref, lambda: iter([b"hello"]), sha256_digest(b"other"))


def test_platform_selection(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "multi")
    index = two_platform_index()
    assert push_image(client, ref, index) == index.digest
    m = client.get_manifest(ref)
    assert m.is_index
    assert select_platform(m, "linux/arm64").digest == index.images[1].digest
    assert select_platform(m, None).digest == index.images[0].digest
    with pytest.raises(InputError, match="linux/amd64, linux/arm64"):
        select_platform(m, "linux/s390x")


def test_copy_index_between_registries_keeps_digests(registry: RegistryServer, registry2: RegistryServer,
                                                     client: RegistryClient, repo_name: str) -> None:
    src = Reference(registry.host, repo_name, "2026.04")
    index = two_platform_index("copy")
    push_image(client, src, index)
    dst = Reference(registry2.host, "mirror/" + repo_name.split("/")[1], "2026.04")
    digest = copy_image(RegistrySource(client, src), client, dst)
    assert digest == index.digest
    assert client.resolve(dst).digest == index.digest
    for child in index.images:
        m = client.get_manifest(dst.with_digest(child.digest))
        assert m.raw == child.manifest_bytes()
        for layer in child.layers:
            assert client.blob_exists(dst, layer.digest)


def test_copy_within_registry_mounts(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    src = Reference(registry.host, repo_name, "v1")
    img = small_image()
    push_image(client, src, img)
    dst = Reference(registry.host, repo_name + "-copy", "v1")
    notes: list[str] = []
    copy_image(RegistrySource(client, src), client, dst, notes.append)
    assert any(n.startswith("mounted") for n in notes)
    assert client.resolve(dst).digest == img.digest


def test_layout_and_archives_to_registry(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                         tmp_path: Path) -> None:
    index = two_platform_index("layout")
    layout = tmp_path / "layout"
    write_layout(layout, index, tag="2026.04")
    # OCI layout directory
    src = open_source(f"oci:{layout}:2026.04", client)
    dst = Reference(registry.host, repo_name, "from-layout")
    assert copy_image(src, client, dst) == index.digest
    # oci-archive: the same layout as a tar
    archive = tmp_path / "img.tar"
    with tarfile.open(archive, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    src2 = open_source(f"oci-archive:{archive}", client)
    assert src2.resolve().digest == index.digest
    assert copy_image(src2, client, dst.with_tag("from-archive")) == index.digest


def test_docker_archive(registry: RegistryServer, client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    img = small_image("docker-save")
    cfg = img.config_bytes()
    archive = tmp_path / "saved.tar"
    with tarfile.open(archive, "w") as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            import io

            tf.addfile(info, io.BytesIO(data))

        add("config.json", cfg)
        names = []
        for i, layer in enumerate(img.layers):
            add(f"l{i}/layer.tar", layer.tar)
            names.append(f"l{i}/layer.tar")
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["app:1"], "Layers": names}]).encode())
    src = open_source(f"docker-archive:{archive}", client)
    m = src.manifest(src.resolve().digest)
    assert [la.digest for la in m.layers()] == [sha256_digest(la.tar) for la in img.layers]
    dst = Reference(registry.host, repo_name, "saved")
    digest = copy_image(src, client, dst)
    assert client.get_manifest(dst).digest == digest
    assert b"".join(client.iter_blob(dst, m.config().digest)) == cfg


def test_layout_tampered_blob_refused(client: RegistryClient, tmp_path: Path) -> None:
    img = small_image()
    write_layout(tmp_path / "l", img)
    blob = tmp_path / "l" / "blobs" / "sha256" / img.layers[0].digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    src = open_source(f"oci:{tmp_path / 'l'}", client)
    with pytest.raises(InputError, match="corrupt or tampered"):
        b"".join(src.iter_blob(img.layers[0].digest))


def test_manifest_digest_mismatch_refused(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "v1")
    img = small_image()
    push_image(client, ref, img)
    wrong = "sha256:" + "1" * 64
    with pytest.raises((NotFoundError, DigestMismatchError)):
        client.get_manifest(ref.with_digest(wrong))


def test_cli_copy_digest_manifest(registry: RegistryServer, registry2: RegistryServer, client: RegistryClient,
                                  repo_name: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    index = two_platform_index("cli")
    write_layout(tmp_path / "layout", index, tag="2026.04")

    def vouch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=120)

    dst = f"{registry.host}/{repo_name}:2026.04"
    r = vouch("copy", f"oci:{tmp_path / 'layout'}:2026.04", dst)
    assert r.returncode == 0 and r.stdout.strip() == f"{registry.host}/{repo_name}@{index.digest}", r.stderr
    r = vouch("copy", dst, f"{registry2.host}/{repo_name}:2026.04")
    assert r.returncode == 0, r.stderr
    r = vouch("--output", "json", "digest", f"{registry2.host}/{repo_name}:2026.04")
    assert json.loads(r.stdout)["digest"] == index.digest
    r = vouch("digest", "--platform", "linux/arm64", f"{registry2.host}/{repo_name}:2026.04")
    assert r.stdout.strip() == index.images[1].digest
    r = vouch("manifest", f"{registry2.host}/{repo_name}@{index.images[0].digest}")
    assert r.stdout.strip().encode() == index.images[0].manifest_bytes()
    r = vouch("digest", f"{registry2.host}/{repo_name}:missing")
    assert r.returncode == 3 and "not found" in r.stderr
