"""`vouch save` / `vouch load` against stock `cosign save` / `cosign load` (2.x and 3.x), both ways: a directory
one tool writes, the other loads, and stock cosign verifies the signatures and attestations at the destination
registry. Also: a re-run writes nothing, multi-arch indexes keep every platform's attachments,
COSIGN_REPOSITORY is honoured, and a corrupt blob in a layout pushes nothing. Real docker-registry instances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import ATT_SUFFIX, SIG_SUFFIX, read_tag, tag_for

pytestmark = pytest.mark.interop


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COSIGN_PASSWORD": "pw", **(env or {})}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=full,
                          timeout=300, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


def layers(client: RegistryClient, host: str, repo: str, digest: str, suffix: str) -> int:
    return len(read_tag(client, Reference(host, repo), tag_for(digest, suffix)).layers)


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    """Every file of a layout with its inode and mtime: a re-run that writes nothing leaves it equal."""
    return {str(p.relative_to(d)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


EMPTY_ROOT = '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'


def legacy_verify(cosign: Path, pub: Path, image: str, home: Path, env: dict[str, str] | None = None) -> None:
    """cosign's legacy `.sig`/`.att` checks (cosign 2 is given an empty trusted root: no TUF fetch offline)."""
    if cosign.name == "cosign3":
        extra = ["--new-bundle-format=false"]
    else:
        home.mkdir(parents=True, exist_ok=True)
        (home / "root.json").write_text(EMPTY_ROOT)
        extra = ["--trusted-root", str(home / "root.json")]
    run_peer(cosign, "verify", "--key", str(pub), *extra, "--insecure-ignore-tlog=true", "--allow-insecure-registry",
             image, home=home, env=env)
    run_peer(cosign, "verify-attestation", "--key", str(pub), *extra, "--type", "cyclonedx",
             "--insecure-ignore-tlog=true", "--allow-insecure-registry", image, home=home, env=env)


def test_vouch_save_is_loaded_by_cosign_2_and_3(registry: RegistryServer, registry2: RegistryServer,
                                                client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("save"))
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("release", "--key", str(priv), "--layout", "both", src))  # .sig, .att and two bundles
    out = tmp_path / "saved"
    doc = json.loads(ok(vouch("-o", "json", "save", src, "--dir", str(out))).stdout)
    assert doc["digest"] == digest
    assert doc["attachments"]["added"] == {"sig": 1, "att": 1, "sbom": 0, "bundle": 2}
    index = json.loads((out / "index.json").read_text())
    kinds = {(m.get("annotations") or {}).get("kind") for m in index["manifests"]}
    assert {"dev.cosignproject.cosign/image", "dev.cosignproject.cosign/sigs",
            "dev.cosignproject.cosign/atts"} <= kinds
    # a re-run writes nothing: no file replaced, index.json untouched
    before = snapshot(out)
    again = json.loads(ok(vouch("-o", "json", "save", src, "--dir", str(out))).stdout)
    assert again["blobsWritten"] == 0 and again["indexWritten"] is False
    assert sum(again["attachments"]["added"].values()) == 0
    assert snapshot(out) == before
    # the saved directory is an image source: its one image is the entry cosign's `kind` marks
    assert ok(vouch("digest", f"oci:{out}")).stdout.strip() == digest
    home = tmp_path / "home"
    for name in ("cosign2", "cosign3"):
        cosign = peer(name)
        dst_repo = f"{repo_name}-{name}"
        run_peer(cosign, "load", "--allow-insecure-registry", "--dir", str(out), f"{registry2.host}/{dst_repo}:v1",
                 home=home)
        assert client.resolve(Reference(registry2.host, dst_repo, "v1")).digest == digest
        legacy_verify(cosign, pub, f"{registry2.host}/{dst_repo}@{digest}", home)


def test_bundle_only_save_is_loaded_by_cosign3(registry: RegistryServer, registry2: RegistryServer,
                                               client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    """cosign 3's load finds bundle referrers by scanning blobs/ (only when no legacy .att is saved). cosign
    3.1.2 PUTs the referrer manifest before its bundle blob, which distribution refuses (MANIFEST_BLOB_UNKNOWN)
    for cosign's own directory as for vouch's: with the blob already at the destination it loads ours."""
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("bundle"))
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("sign", "--key", str(priv), "--new-bundle-format", src))
    out = tmp_path / "saved"
    doc = json.loads(ok(vouch("-o", "json", "save", src, "--dir", str(out))).stdout)
    assert doc["attachments"]["added"]["bundle"] == 1 and doc["attachments"]["added"]["sig"] == 0
    home = tmp_path / "home"
    cosign3 = peer("cosign3")
    theirs = tmp_path / "cosign-saved"
    run_peer(cosign3, "save", "--allow-insecure-registry", "--dir", str(theirs), src, home=home)
    referrer = next(m for m in json.loads((out / "index.json").read_text())["manifests"] if m.get("artifactType"))
    body = json.loads((out / "blobs" / "sha256" / referrer["digest"].split(":")[1]).read_bytes())
    bundle_blob = body["layers"][0]["digest"]
    for directory in (theirs, out):
        r = run_peer(cosign3, "load", "--allow-insecure-registry", "--dir", str(directory),
                     f"{registry2.host}/{repo_name}-{directory.name}:v1", home=home, check=False)
        assert r.returncode != 0 and "MANIFEST_BLOB_UNKNOWN" in r.stderr and bundle_blob in r.stderr, r.stderr
    dst = Reference(registry2.host, repo_name)
    for name in (body["config"]["digest"], bundle_blob):
        client.push_blob(dst, (out / "blobs" / "sha256" / name.split(":")[1]).read_bytes())
    run_peer(cosign3, "load", "--allow-insecure-registry", "--dir", str(out), f"{registry2.host}/{repo_name}:v1",
             home=home)
    run_peer(cosign3, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", "--allow-insecure-registry",
             f"{registry2.host}/{repo_name}@{digest}", home=home)
    # vouch load has no such order problem: a fresh repository, and cosign 3 verifies the bundle there
    ok(vouch("load", "--dir", str(out), f"{registry2.host}/{repo_name}-vouch:v1"))
    run_peer(cosign3, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", "--allow-insecure-registry",
             f"{registry2.host}/{repo_name}-vouch@{digest}", home=home)


def test_cosign_save_is_loaded_by_vouch(registry: RegistryServer, registry2: RegistryServer,
                                        client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("cosign-save"))
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("release", "--key", str(priv), "--layout", "both", src))
    home = tmp_path / "home"
    expected = {"cosign2": {"sig": 1, "att": 1, "sbom": 0, "bundle": 0},  # cosign 2 saves no referrers
                "cosign3": {"sig": 1, "att": 1, "sbom": 0, "bundle": 2}}
    for name, added in expected.items():
        cosign = peer(name)
        saved = tmp_path / f"saved-{name}"
        run_peer(cosign, "save", "--allow-insecure-registry", "--dir", str(saved), src, home=home)
        dst = f"{registry2.host}/{repo_name}-{name}"
        doc = json.loads(ok(vouch("-o", "json", "load", "--dir", str(saved), f"{dst}:v1")).stdout)
        assert doc["digest"] == digest
        assert doc["attachments"]["added"] == added
        legacy_verify(peer("cosign2"), pub, f"{dst}@{digest}", home)
        legacy_verify(peer("cosign3"), pub, f"{dst}@{digest}", home)
        if added["bundle"]:
            run_peer(peer("cosign3"), "verify", "--key", str(pub), "--insecure-ignore-tlog=true",
                     "--allow-insecure-registry", f"{dst}@{digest}", home=home)
        again = json.loads(ok(vouch("-o", "json", "load", "--dir", str(saved), f"{dst}:v1")).stdout)
        assert sum(again["attachments"]["added"].values()) == 0
        assert again["attachments"]["alreadyPresent"] == added
        assert layers(client, registry2.host, f"{repo_name}-{name}", digest, SIG_SUFFIX) == 1


def test_multi_arch_index_keeps_every_platform(registry: RegistryServer, registry2: RegistryServer,
                                               client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    index_digest = push_image(client, Reference(registry.host, repo_name, "v1"), two_platform_index("save-idx"))
    src = f"{registry.host}/{repo_name}@{index_digest}"
    ok(vouch("sign", "--key", str(priv), "--recursive", src))
    platforms = [c.digest for c in client.get_manifest(Reference(registry.host, repo_name, None, index_digest))
                 .children()]
    out = tmp_path / "saved"
    doc = json.loads(ok(vouch("-o", "json", "save", src, "--dir", str(out))).stdout)
    assert doc["attachments"]["added"]["sig"] == 3  # the index's and each platform image's
    names = {(m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
             for m in json.loads((out / "index.json").read_text())["manifests"]}
    assert {tag_for(d, SIG_SUFFIX) for d in [index_digest, *platforms]} <= names
    dst = f"{registry2.host}/{repo_name}"
    ok(vouch("load", "--dir", str(out), f"{dst}:v1"))
    home = tmp_path / "home"
    cosign3 = peer("cosign3")
    for d in [index_digest, *platforms]:
        run_peer(cosign3, "verify", "--key", str(pub), "--new-bundle-format=false", "--insecure-ignore-tlog=true",
                 "--allow-insecure-registry", f"{dst}@{d}", home=home)
    # stock cosign loads the same directory: the index with every platform image, and the index's signature
    run_peer(cosign3, "load", "--allow-insecure-registry", "--dir", str(out), f"{dst}-cosign:v1", home=home)
    assert client.resolve(Reference(registry2.host, f"{repo_name}-cosign", "v1")).digest == index_digest
    for d in platforms:
        assert client.head_manifest(Reference(registry2.host, f"{repo_name}-cosign", None, d)) is not None
    run_peer(cosign3, "verify", "--key", str(pub), "--new-bundle-format=false", "--insecure-ignore-tlog=true",
             "--allow-insecure-registry", f"{dst}-cosign@{index_digest}", home=home)


def test_cosign_repository_is_honoured(registry: RegistryServer, registry2: RegistryServer, client: RegistryClient,
                                       repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("cosign-repo"))
    src = f"{registry.host}/{repo_name}@{digest}"
    sigs_src = f"{registry.host}/{repo_name}-sigs"
    ok(vouch("release", "--key", str(priv), "--layout", "legacy", src, env={"COSIGN_REPOSITORY": sigs_src}))
    assert layers(client, registry.host, repo_name, digest, SIG_SUFFIX) == 0  # they are elsewhere
    out = tmp_path / "saved"
    doc = json.loads(ok(vouch("-o", "json", "save", src, "--dir", str(out),
                              env={"COSIGN_REPOSITORY": sigs_src})).stdout)
    assert doc["attachments"]["added"]["sig"] == 1 and doc["attachments"]["added"]["att"] == 1
    sigs_dst = f"{registry2.host}/{repo_name}-sigs"
    dst = f"{registry2.host}/{repo_name}"
    ok(vouch("load", "--dir", str(out), f"{dst}:v1", env={"COSIGN_REPOSITORY": sigs_dst}))
    assert layers(client, registry2.host, f"{repo_name}-sigs", digest, SIG_SUFFIX) == 1
    assert layers(client, registry2.host, f"{repo_name}-sigs", digest, ATT_SUFFIX) == 1
    assert layers(client, registry2.host, repo_name, digest, SIG_SUFFIX) == 0
    legacy_verify(peer("cosign3"), pub, f"{dst}@{digest}", tmp_path / "home", env={"COSIGN_REPOSITORY": sigs_dst})


def test_corrupt_blob_in_layout_pushes_nothing(registry: RegistryServer, registry2: RegistryServer,
                                               client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, _, _ = write_keypair(tmp_path, "k")
    image = small_image("corrupt")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), image)
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("sign", "--key", str(priv), src))
    manifest = client.get_manifest(Reference(registry.host, repo_name, None, digest))
    cases = {"layer": manifest.layers()[-1].digest,
             "signature": read_tag(client, Reference(registry.host, repo_name),
                                   tag_for(digest, SIG_SUFFIX)).layers[0].descriptor.digest}
    for what, blob in cases.items():
        out = tmp_path / f"saved-{what}"
        ok(vouch("save", src, "--dir", str(out)))
        p = out / "blobs" / "sha256" / blob.split(":", 1)[1]
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01  # same size, one bit off
        p.write_bytes(bytes(data))
        dst_repo = f"{repo_name}-{what}"
        r = vouch("load", "--dir", str(out), f"{registry2.host}/{dst_repo}:v1")
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not match its digest" in lines[0] and blob in lines[0], r.stderr
        assert "Traceback" not in r.stderr
        assert client.head_manifest(Reference(registry2.host, dst_repo, None, digest)) is None
        assert client.head_manifest(Reference(registry2.host, dst_repo, "v1")) is None
        assert client.list_tags(Reference(registry2.host, dst_repo)) == []


def test_bad_directories_are_refused(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                     tmp_path: Path) -> None:
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("bad-dir"))
    src = f"{registry.host}/{repo_name}@{digest}"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    r = vouch("save", src, "--dir", str(busy))
    assert r.returncode == 2 and "is not an OCI image layout and is not empty" in r.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]  # nothing written beside it
    r = vouch("load", "--dir", str(tmp_path / "missing"), f"{registry.host}/{repo_name}-x:v1")
    assert r.returncode == 2 and "no index.json" in r.stderr and "Traceback" not in r.stderr
    damaged = tmp_path / "damaged"
    ok(vouch("save", src, "--dir", str(damaged)))
    (damaged / "index.json").write_text("{not json")
    r = vouch("load", "--dir", str(damaged), f"{registry.host}/{repo_name}-x:v1")
    assert r.returncode == 2 and "index.json is not valid JSON" in r.stderr
