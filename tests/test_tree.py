"""`vouch tree` (cosign's `tree`) and `vouch download signature` (cosign's), against real registries in both
layouts: docker-registry 2.8 (no referrers API: the `sha256-<hex>` fallback index) and the test-only
registry with the OCI 1.1 referrers API. Images signed and attested by vouch and by stock cosign 2; the
lines both tools print are compared with `cosign2 tree --experimental-oci11` / `cosign2 download signature`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

pytestmark = pytest.mark.interop

HTTP = "--allow-http-registry=true"
SIGN2 = ["--tlog-upload=false", "--yes", HTTP]
SLSA1 = "https://slsa.dev/provenance/v1"
CDX = "https://cyclonedx.org/bom"


def vouch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSIGN_")}
    env["COSIGN_PASSWORD"] = "pw"
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=180, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def referrers_registry() -> Iterator[str]:
    from vouch.testbed.ociregistry import start_oci_registry

    server = start_oci_registry()
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture(params=["fallback", "referrers"])
def host(request: pytest.FixtureRequest, registry: RegistryServer) -> str:
    if request.param == "fallback":
        return registry.host
    return str(request.getfixturevalue("referrers_registry"))


@pytest.fixture
def image(host: str, client: RegistryClient, repo_name: str) -> str:
    digest = push_image(client, Reference(host, repo_name, "v1"), small_image("tree"))
    return f"{host}/{repo_name}@{digest}"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    ok(vouch("generate-key-pair", "--output-key-prefix", "k", cwd=tmp_path))
    return str(tmp_path / "k.key"), str(tmp_path / "k.pub")


def cosign_lines(text: str) -> list[str]:
    """The tree's lines without vouch's details (what cosign prints), order kept."""
    return [re.sub(r" \(.*\)$", "", line) for line in text.splitlines()]


def blocks(text: str) -> set[tuple[str, ...]]:
    """The tree as a set of (heading, leaves…): cosign prints its groups in Go's random map order."""
    out: list[list[str]] = []
    for line in cosign_lines(text)[1:]:
        if line.startswith("└──"):
            out.append([line])
        else:
            out[-1].append(line)
    return {tuple(b) for b in out}


def test_tree_of_vouch_and_cosign_material_in_both_layouts(image: str, keys: tuple[str, str],
                                                           tmp_path: Path) -> None:
    key, pub = keys
    cosign2 = peer("cosign2")
    pred = tmp_path / "pred.json"
    pred.write_text('{"buildDefinition": {"buildType": "x"}}')
    empty = ok(vouch("tree", image))
    assert empty.stdout.startswith(f"No Supply Chain Security Related Artifacts found for image {image},")
    assert json.loads(ok(vouch("tree", "-o", "json", image)).stdout)["attached"] == []
    # cosign 2: a signature and an attestation in the legacy layout
    run_peer(cosign2, "sign", "--key", key, *SIGN2, image, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    run_peer(cosign2, "attest", "--key", key, *SIGN2, "--predicate", str(pred), "--type", "custom", image,
             home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    # vouch: both layouts (the legacy signature is cosign's, so vouch adds only the bundle)
    ok(vouch("sign", "--key", key, "--layout", "both", image))
    ok(vouch("attest", "--key", key, "--layout", "both", "--predicate", str(pred), "--type", "slsaprovenance1",
             image))
    ours = ok(vouch("tree", image)).stdout
    theirs = run_peer(cosign2, "tree", "--experimental-oci11", HTTP, image, home=tmp_path).stdout
    assert cosign_lines(ours)[0] == cosign_lines(theirs)[0] == (
        f"📦 Supply Chain Security Related artifacts for an image: {image}")
    assert blocks(ours) == blocks(theirs)
    assert len(blocks(ours)) == 4  # .att, .sig and two bundle referrers
    # what vouch adds: predicate types, signers (named by --key), how each referrer was found
    named = ok(vouch("tree", "--key", pub, image)).stdout
    kid = json.loads(ok(vouch("tree", "-o", "json", "--key", pub, image)).stdout)["attached"][0]["entries"][0][
        "signer"]["keyId"]
    assert re.fullmatch(r"[0-9a-f]{12}", kid)
    assert f"(predicate https://cosign.sigstore.dev/attestation/v1; signer key {kid})" in named
    assert f"(predicate {SLSA1}; signer key {kid})" in named
    assert f"(signature; signer key {kid})" in named
    assert "signer key (unnamed: --key names it)" in ours  # legacy key signatures carry no key id
    doc = json.loads(ok(vouch("tree", "-o", "json", image)).stdout)
    assert doc["image"] == image and doc["digest"] == image.split("@")[1]
    kinds = [g["kind"] for g in doc["attached"]]
    assert kinds[:2] == ["attestations", "signatures"] and kinds[2:] == ["referrer", "referrer"]
    referrers = [g for g in doc["attached"] if g["kind"] == "referrer"]
    assert {g["entries"][0]["predicateType"] for g in referrers} == {SLSA1, "https://sigstore.dev/cosign/sign/v1"}
    assert all(g["entries"][0]["signer"] == {"kind": "key", "keyId": kid} for g in referrers)  # the bundle's hint
    # a tag is resolved once; -o after the command as cosign users type it
    assert blocks(ok(vouch("tree", image.split("@")[0] + ":v1")).stdout) == blocks(ours)


def test_tree_says_how_referrers_were_found(image: str, keys: tuple[str, str], registry: RegistryServer) -> None:
    ok(vouch("sign", "--key", keys[0], "--new-bundle-format", image))
    [group] = json.loads(ok(vouch("tree", "-o", "json", image)).stdout)["attached"]
    digest = image.split("@")[1]
    fallback = image.startswith(registry.host + "/")
    assert group["foundBy"] == (f"fallback tag {digest.replace(':', '-')}" if fallback else "referrers API")


def test_tree_of_an_attached_sbom(image: str, tmp_path: Path) -> None:
    cosign2 = peer("cosign2")
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}')
    run_peer(cosign2, "attach", "sbom", "--sbom", str(sbom), "--type", "cyclonedx", HTTP, image, home=tmp_path,
             check=False)
    theirs = run_peer(cosign2, "tree", HTTP, image, home=tmp_path).stdout
    if "SBOMs for an image tag" not in theirs:
        pytest.skip("this cosign 2 does not attach SBOMs")
    ours = ok(vouch("tree", image)).stdout
    assert blocks(ours) == blocks(theirs)
    assert "📦 SBOMs for an image tag:" in ours


def test_download_signature_as_cosign_prints_it(image: str, keys: tuple[str, str], tmp_path: Path) -> None:
    key = keys[0]
    cosign2 = peer("cosign2")
    r = vouch("download", "signature", image)
    assert r.returncode == 3 and f"Error: no signatures on {image}" in r.stderr, r.stderr
    ok(vouch("sign", "--key", key, image))
    run_peer(cosign2, "sign", "--key", key, *SIGN2, "-a", "by=cosign", image, home=tmp_path,
             env={"COSIGN_PASSWORD": "pw"})
    theirs = run_peer(cosign2, "download", "signature", HTTP, image, home=tmp_path).stdout
    ours = ok(vouch("download", "signature", image)).stdout
    assert ours == theirs  # byte for byte: field order, compact JSON, base64 payload
    lines = [json.loads(x) for x in ours.splitlines()]
    assert len(lines) == 2 and all(set(x) == {"Base64Signature", "Payload", "Cert", "Chain", "Bundle",
                                              "RFC3161Timestamp"} for x in lines)
    # the bundle layout: the signature bundle as cosign 3 prints it, after the legacy lines
    ok(vouch("sign", "--key", key, "--new-bundle-format", image))
    both = ok(vouch("download", "signature", image)).stdout.splitlines()
    assert both[:2] == ours.splitlines() and len(both) == 3
    assert json.loads(both[2])["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert ok(vouch("download", "signature", "--layout", "bundle", image)).stdout.splitlines() == both[2:]
    assert ok(vouch("download", "signature", "--layout", "legacy", image)).stdout == ours
    r = vouch("download", "signature", "--layout", "nope", image)
    assert r.returncode == 2 and "--layout 'nope': write legacy, bundle or both" in r.stderr


def test_keyless_signer_from_the_certificate() -> None:
    """A keyless layer's signer is its certificate's identity (vouch.keyless.identity.identity_of), in the
    cosign 2 SignedPayload a Cert object whose Raw is the DER."""
    import base64
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from vouch.cli.tree import signed_payload
    from vouch.store.inventory import _certificate_signer

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    issuer_ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"),
                                            b"https://issuer.example")
    cert = (x509.CertificateBuilder().subject_name(x509.Name([]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
            .public_key(key.public_key()).serial_number(42).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(minutes=10))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("dev@example.com")]), critical=True)
            .add_extension(issuer_ext, critical=False).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    signer = _certificate_signer(pem)
    assert (signer.kind, signer.subject, signer.issuer) == ("certificate", "dev@example.com",
                                                            "https://issuer.example")
    assert signer.text() == "dev@example.com (issuer https://issuer.example)"
    line = signed_payload({"dev.cosignproject.cosign/signature": "c2ln", "dev.sigstore.cosign/certificate": pem,
                           "dev.sigstore.cosign/chain": pem + pem}, b"{}")
    assert line["Payload"] == "e30=" and line["Base64Signature"] == "c2ln"
    assert base64.b64decode(line["Cert"]["Raw"]) == cert.public_bytes(serialization.Encoding.DER)
    assert line["Cert"]["SerialNumber"] == 42 and line["Cert"]["NotBefore"] == "2026-01-02T03:04:05Z"
    assert line["Cert"]["EmailAddresses"] == ["dev@example.com"] and len(line["Chain"]) == 2
    assert _certificate_signer("not a pem").subject == "(unreadable certificate)"
