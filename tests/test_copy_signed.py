"""`vouch copy` carries what is attached to an image — signatures, attestations (both layouts) — to another
registry, where stock cosign 2 and 3 verify them; what the destination already held stays; a re-run adds
nothing. Real docker-registry instances on two hosts (blobs streamed between them), real cosign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import ATT_SUFFIX, SIG_SUFFIX, read_tag, tag_for

pytestmark = pytest.mark.interop
EMPTY_ROOT = '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


def layers(client: RegistryClient, image: str, suffix: str) -> int:
    ref = Reference.parse(image)
    assert ref.digest
    return len(read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, suffix)).layers)


def test_copy_carries_signatures_and_attestations(registry: RegistryServer, registry2: RegistryServer,
                                                  client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    other_priv, other_pub, _ = write_keypair(tmp_path, "other")
    image = small_image("copy-src")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), image)
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("release", "--key", str(priv), "--layout", "both", src))  # signature + SBOM, both layouts
    dst = f"{registry2.host}/{repo_name}-copy@{digest}"
    # the destination already holds another signer's signature on that digest: it must stay
    assert push_image(client, Reference(registry2.host, f"{repo_name}-copy", "v1"), image) == digest
    ok(vouch("sign", "--key", str(other_priv), dst))
    r = ok(vouch("copy", "-o", "json", src, f"{registry2.host}/{repo_name}-copy:v1"))
    doc = json.loads(r.stdout)
    assert doc["digest"] == digest
    assert doc["attachments"]["added"] == {"sig": 1, "att": 1, "sbom": 0, "bundle": 2}
    assert layers(client, dst, SIG_SUFFIX) == 2 and layers(client, dst, ATT_SUFFIX) == 1
    home = tmp_path / "home"
    root = tmp_path / "root.json"
    root.write_text(EMPTY_ROOT)
    cosign2, cosign3 = peer("cosign2"), peer("cosign3")
    # stock cosign at the destination: the legacy signature and attestation, then the bundles
    run_peer(cosign3, "verify", "--key", str(pub), "--new-bundle-format=false", "--insecure-ignore-tlog=true",
             "--allow-insecure-registry", dst, home=home)
    run_peer(cosign3, "verify-attestation", "--key", str(pub), "--new-bundle-format=false", "--type", "cyclonedx",
             "--insecure-ignore-tlog=true", "--allow-insecure-registry", dst, home=home)
    run_peer(cosign3, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", "--allow-insecure-registry",
             dst, home=home)
    run_peer(cosign2, "verify-attestation", "--key", str(pub), "--type", "cyclonedx", "--insecure-ignore-tlog=true",
             "--trusted-root", str(root), "--allow-insecure-registry", dst, home=home)
    ok(vouch("verify", "--key", str(other_pub), dst))  # the signature that was there is still there
    ok(vouch("verify-release", "--key", str(pub), dst))  # signature and fresh SBOM, read from the copy
    again = json.loads(ok(vouch("copy", "-o", "json", src, f"{registry2.host}/{repo_name}-copy:v1")).stdout)
    assert sum(again["attachments"]["added"].values()) == 0
    assert again["attachments"]["alreadyPresent"] == {"sig": 1, "att": 1, "sbom": 0, "bundle": 2}
    assert layers(client, dst, SIG_SUFFIX) == 2


def test_copy_index_with_platform_signatures_and_only(registry: RegistryServer, registry2: RegistryServer,
                                                      client: RegistryClient, repo_name: str,
                                                      tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), two_platform_index("copy-idx"))
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("sign", "--key", str(priv), "--recursive", src))
    r = ok(vouch("copy", "--only", "sig", "-o", "json", src, f"{registry2.host}/{repo_name}:v1"))
    assert json.loads(r.stdout)["attachments"]["added"]["sig"] == 3  # the index and its two platform images
    ok(vouch("verify", "--key", str(pub), f"{registry2.host}/{repo_name}@{digest}"))
    bad = vouch("copy", "--only", "signatures", src, f"{registry2.host}/{repo_name}:v2")
    assert bad.returncode == 2 and "sig, att, sbom, bundle" in bad.stderr and "Traceback" not in bad.stderr


# ---- faults at the destination: a 503 while the signature tag is written loses no one's signature --------

def _signed_on_both_sides(src: RegistryServer, proxy: FaultProxy, client: RegistryClient, repo_name: str,
                          tmp_path: Path, seed: str) -> tuple[Path, Path, str, str]:
    """An image signed with key k at src, and the same digest at the destination (behind the proxy) signed
    by another key: (k's public key, the other public key, the digest, the destination repository)."""
    priv, pub, _ = write_keypair(tmp_path, "k")
    other_priv, other_pub, _ = write_keypair(tmp_path, "other")
    image = small_image(seed)
    digest = push_image(client, Reference(src.host, repo_name, "v1"), image)
    ok(vouch("sign", "--key", str(priv), f"{src.host}/{repo_name}@{digest}"))
    dst_repo = f"{proxy.host}/{repo_name}-dst"
    assert push_image(client, Reference(proxy.host, f"{repo_name}-dst", "v1"), image) == digest
    ok(vouch("sign", "--key", str(other_priv), f"{dst_repo}@{digest}"))
    return pub, other_pub, digest, dst_repo

def test_copy_survives_a_503_on_the_signature_tag_and_keeps_the_other_signer(
        registry: RegistryServer, registry2: RegistryServer, proxy: FaultProxy, client: RegistryClient,
        repo_name: str, tmp_path: Path) -> None:
    """The destination (behind a fault proxy) already carries another signer's signature. The first PUT of
    the merged .sig tag answers 503: copy re-reads and writes again, and both signatures end up there."""
    pub, other_pub, digest, dst_repo = _signed_on_both_sides(registry2, proxy, client, repo_name, tmp_path, "copy-503")
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-[0-9a-f]+\.sig$", times=1, status=503))
    ok(vouch("copy", f"{registry2.host}/{repo_name}@{digest}", f"{dst_repo}:v1"))
    assert proxy.count("PUT", r"\.sig$") >= 2  # the 503, then the write that landed
    for key in (pub, other_pub):
        ok(vouch("verify", "--key", str(key), f"{dst_repo}@{digest}"))
    assert layers(client, f"{dst_repo}@{digest}", SIG_SUFFIX) == 2


def test_copy_refused_by_the_destination_fails_cleanly_and_loses_nothing(
        registry: RegistryServer, registry2: RegistryServer, proxy: FaultProxy, client: RegistryClient,
        repo_name: str, tmp_path: Path) -> None:
    """Every write of the .sig tag answers 503: copy gives up with one line and exit 3, and the signature the
    destination held is still there, alone (nothing half-written in its place)."""
    _, other_pub, digest, dst_repo = _signed_on_both_sides(registry2, proxy, client, repo_name, tmp_path,
                                                           "copy-503-always")
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-[0-9a-f]+\.sig$", times=1000, status=503))
    r = vouch("copy", f"{registry2.host}/{repo_name}@{digest}", f"{dst_repo}:v1")
    proxy.clear()
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "503" in r.stderr
    assert layers(client, f"{registry.host}/{repo_name}-dst@{digest}", SIG_SUFFIX) == 1
    ok(vouch("verify", "--key", str(other_pub), f"{registry.host}/{repo_name}-dst@{digest}"))


def test_two_copies_racing_to_one_destination_keep_both_signatures(
        registry: RegistryServer, registry2: RegistryServer, client: RegistryClient, repo_name: str,
        tmp_path: Path) -> None:
    """Two mirrors of the same digest, each signed by a different key, copied to one destination at the same
    moment (two processes): both read the destination's .sig tag before either writes; each write must
    keep the other's signature (lost-update detection), so both keys verify there afterwards."""
    image = small_image("copy-race")
    keys = []
    sources = []
    for n, host in enumerate((registry.host, registry2.host)):
        priv, pub, _ = write_keypair(tmp_path, f"k{n}")
        digest = push_image(client, Reference(host, f"{repo_name}-src{n}", "v1"), image)
        ok(vouch("sign", "--key", str(priv), f"{host}/{repo_name}-src{n}@{digest}"))
        keys.append(pub)
        sources.append(f"{host}/{repo_name}-src{n}@{digest}")
    dst = f"{registry2.host}/{repo_name}-race"
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    procs = [subprocess.Popen([sys.executable, "-m", "vouch", "copy", src, f"{dst}:v1"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
             for src in sources]
    for p in procs:
        _, errs = p.communicate(timeout=300)
        assert p.returncode == 0, errs[-2000:]
    for pub in keys:
        ok(vouch("verify", "--key", str(pub), f"{dst}@{digest}"))
    assert layers(client, f"{dst}@{digest}", SIG_SUFFIX) == 2


_BLOB_LINK_RACE = (b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},'
                   b'{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}')


def test_copy_puts_the_manifest_again_when_the_registry_briefly_misses_a_blob(
        registry: RegistryServer, proxy: FaultProxy, client: RegistryClient, repo_name: str) -> None:
    """What distribution answered in CI while another copy committed the same blob (its filesystem driver
    rewrites the repository's blob link in place): 400 DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN on the image's
    tag PUT. Copy makes sure the blobs are there and puts the same bytes again; a registry that keeps
    answering so is reported in one line, exit 3."""
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("copy-blob-race"))
    src = f"{registry.host}/{repo_name}@{digest}"
    proxy.add(Rule("status", "PUT", r"/manifests/v1$", times=1, status=400, body=_BLOB_LINK_RACE))
    ok(vouch("copy", src, f"{proxy.host}/{repo_name}-dst:v1"))
    assert proxy.count("PUT", r"/manifests/v1$") == 2  # the refused PUT, then the one that landed
    assert client.resolve(Reference(registry.host, f"{repo_name}-dst", "v1")).digest == digest

    proxy.clear()
    proxy.add(Rule("status", "PUT", r"/manifests/v2$", times=1000, status=400, body=_BLOB_LINK_RACE))
    r = vouch("copy", src, f"{proxy.host}/{repo_name}-dst:v2")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "MANIFEST_BLOB_UNKNOWN" in r.stderr
    assert proxy.count("PUT", r"/manifests/v2$") == 4
