"""Issue 15 (1): every platform of a multi-arch image is signed and carries its own SBOM; the index carries
what admission needs for a pod that names it by tag. Real registry, real cosign 2/3, real Kyverno CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from tests.test_kyverno_apply import admitted, vouch
from vouch.errors import InputError
from vouch.oci.build import Index, push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.release.multiarch import PLATFORM_PROPERTY
from vouch.release.plan import ReleaseImage, load_manifest
from vouch.release.run import run_release, verify_release
from vouch.signing.attestation import PREDICATE_TYPES
from vouch.verify.attestations import verify_attestations
from vouch.verify.bomfacts import bom_subject_digests, parse_age
from vouch.verify.signatures import verify_image

CDX = PREDICATE_TYPES["cyclonedx"]
DAY, MAX = parse_age("30d"), parse_age("90d")


def _index(registry: RegistryServer, client: RegistryClient, repo: str) -> tuple[Reference, list[str]]:
    ref = Reference(registry.host, f"{repo}/cockpit", "2026.04")
    digest = push_image(client, ref, two_platform_index("multi"))
    children = [c.digest for c in client.get_manifest(ref.with_digest(digest)).children()]
    return ref.with_digest(digest), children


def test_release_signs_and_attests_every_platform(registry: RegistryServer, client: RegistryClient,
                                                  repo_name: str, tmp_path: Path) -> None:
    index, children = _index(registry, client, repo_name)
    _, _, signer = write_keypair(tmp_path, "k")
    tag = Reference(index.registry, index.repository, "2026.04")
    reports = run_release(client, signer, [ReleaseImage(tag)], 2, DAY, MAX)
    assert [(r.platform, r.digest) for r in reports] == [("index", index.digest), ("linux/amd64", children[0]),
                                                          ("linux/arm64", children[1])]
    assert all(r.signature == "signed" and r.sbom == "attested" and not r.error for r in reports), reports
    keys = [signer.public_key]
    for digest, platform in zip(children, ("linux/amd64", "linux/arm64"), strict=True):
        pinned = index.with_digest(digest)
        assert verify_image(client, pinned, keys).ok  # before: platform images were not signed at all
        att = verify_attestations(client, pinned, keys, CDX, MAX)
        assert att.ok and att.verified[0].statement is not None
        bom = att.verified[0].statement["predicate"]
        assert bom_subject_digests(bom) == {digest}  # its own SBOM, not amd64's on the index
        props = {p["name"]: p["value"] for p in bom["metadata"]["component"].get("properties", [])}
        assert props.get("vouch:image:platform") == platform
    att = verify_attestations(client, index, keys, CDX, MAX)
    assert verify_image(client, index, keys).ok and att.ok
    assert att.verified[0].statement is not None
    merged = att.verified[0].statement["predicate"]
    assert bom_subject_digests(merged) == {index.digest}
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(merged)) is None
    platforms_of = {c["bom-ref"]: sorted(p["value"] for p in c.get("properties", []) if p["name"] == PLATFORM_PROPERTY)
                    for c in merged["components"]}
    assert platforms_of[f"image:{children[0]}"] == ["linux/amd64"]
    assert platforms_of[f"image:{children[1]}"] == ["linux/arm64"]
    assert all(v for v in platforms_of.values())  # every component says where it was found

    again = run_release(client, signer, [ReleaseImage(tag)], 2, DAY, MAX)  # a re-run writes nothing
    assert {(r.signature, r.sbom) for r in again} == {("already-signed", "current")}
    gates = verify_release(client, keys, [ReleaseImage(tag)], MAX, 2)
    assert [(g.platform, g.ok) for g in gates] == [("index", True), ("linux/amd64", True), ("linux/arm64", True)]


def test_platform_entry_restricts_and_duplicates_are_refused(registry: RegistryServer, client: RegistryClient,
                                                             repo_name: str, tmp_path: Path) -> None:
    index, children = _index(registry, client, repo_name)
    _, _, signer = write_keypair(tmp_path, "k")
    tag = Reference(index.registry, index.repository, "2026.04")
    reports = run_release(client, signer, [ReleaseImage(tag, "linux/arm64")], 1, DAY, MAX)
    assert [(r.platform, r.digest) for r in reports] == [("index", index.digest), ("linux/arm64", children[1])]
    man = tmp_path / "release.yaml"
    man.write_text(f"images:\n  - {tag}\n  - {{ref: {tag}, platform: linux/arm64}}\n  - {tag}\n")
    with pytest.raises(InputError, match="more than once"):
        load_manifest(str(man))


@pytest.mark.interop
def test_cosign_and_kyverno_see_every_digest(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                             tmp_path: Path) -> None:
    index, children = _index(registry, client, repo_name)
    unsigned = Reference(registry.host, f"{repo_name}/unsigned", "2026.04")
    push_image(client, unsigned, Index([small_image("u", arch="amd64"), small_image("u", arch="arm64")]))
    priv, pub, _ = write_keypair(tmp_path, "k")
    tag = f"{index.registry}/{index.repository}:2026.04"
    vouch("release", "--key", str(priv), tag)
    flags = ["--key", str(pub), "--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true"]
    for c in ("cosign2", "cosign3"):
        for digest in (index.digest, *children):
            pinned = f"{index.registry}/{index.repository}@{digest}"
            run_peer(peer(c), "verify", *flags, pinned, home=tmp_path)
            run_peer(peer(c), "verify-attestation", *flags, "--type", "cyclonedx", pinned, home=tmp_path)
    policy = vouch("policy", "kyverno", "--key", str(pub), "--images", f"{registry.host}/{repo_name}*", "--mode",
                   "enforce").stdout
    ok, out = admitted(tmp_path, policy, tag)  # by tag: Kyverno resolves the index digest
    assert ok, out[-2000:]
    ok, out = admitted(tmp_path, policy, f"{index.registry}/{index.repository}@{children[1]}")  # a platform digest
    assert ok, out[-2000:]
    ok, out = admitted(tmp_path, policy, str(unsigned))
    assert not ok, out[-2000:]



def test_attest_sbom_on_an_index_attests_every_platform(registry: RegistryServer, client: RegistryClient,
                                                        repo_name: str, tmp_path: Path) -> None:
    """Before: the linux/amd64 SBOM was attached to the index digest and the platform images got none."""
    index, children = _index(registry, client, repo_name)
    priv, _, signer = write_keypair(tmp_path, "k")
    vouch("attest-sbom", "--key", str(priv), f"{index.registry}/{index.repository}:2026.04")
    keys = [signer.public_key]
    for digest in children:
        att = verify_attestations(client, index.with_digest(digest), keys, CDX, MAX)
        assert att.ok and att.verified[0].statement is not None
        assert bom_subject_digests(att.verified[0].statement["predicate"]) == {digest}
    att = verify_attestations(client, index, keys, CDX, MAX)
    assert att.ok and att.verified[0].statement is not None
    merged = att.verified[0].statement["predicate"]
    assert bom_subject_digests(merged) == {index.digest}
    assert {p["value"] for c in merged["components"] for p in c.get("properties", [])
            if p["name"] == PLATFORM_PROPERTY} == {"linux/amd64", "linux/arm64"}
    # --platform: that platform's own digest only
    vouch("attest-sbom", "--key", str(priv), "--platform", "linux/arm64",
          f"{index.registry}/{index.repository}:2026.04")
    assert len(verify_attestations(client, index.with_digest(children[1]), keys, CDX, MAX).verified) == 1
