"""Issue 15 (2): an SBOM is bound to its image. A BOM whose metadata.component names another digest is
refused by verify-attestation and verify-release, and is never the release's "current" SBOM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.oci.source import RegistrySource
from vouch.sbom.generate import generate_sbom
from vouch.signing.attestation import PREDICATE_TYPES, envelope, statement
from vouch.signing.signer import KeySigner
from vouch.store.attest import attach
from vouch.verify.attestations import verify_attestations
from vouch.verify.bomfacts import bom_subject_digests, parse_age

CDX = PREDICATE_TYPES["cyclonedx"]


def _vouch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKKO_", "VOUCH_SIGN", "COSIGN_"))}
    env["COSIGN_PASSWORD"] = "pw"
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)


def _two_images(registry: RegistryServer, client: RegistryClient, repo: str) -> tuple[Reference, Reference]:
    gw = Reference(registry.host, f"{repo}/api-gateway", "2026.04")
    auth = Reference(registry.host, f"{repo}/auth", "2026.04")
    return (gw.with_digest(push_image(client, gw, small_image("gateway"))),
            auth.with_digest(push_image(client, auth, small_image("auth"))))


def _attach_bom(client: RegistryClient, signer: KeySigner, target: Reference, bom: dict[str, object]) -> None:
    assert target.digest
    stmt = statement(CDX, target.docker_reference, target.digest, bom)
    attach(client, target, target.digest, envelope(signer, stmt), stmt, CDX, signer.public_key, False)


def test_sbom_of_another_image_is_refused(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                          tmp_path: Path) -> None:
    gw, auth = _two_images(registry, client, repo_name)
    _, pub, signer = write_keypair(tmp_path, "k")
    gw_bom = json.loads(generate_sbom(RegistrySource(client, gw), digest=gw.digest).to_json())
    assert bom_subject_digests(gw_bom) == {gw.digest}
    _attach_bom(client, signer, auth, gw_bom)  # the api-gateway BOM on auth, signed by the release key

    res = verify_attestations(client, auth, [signer.public_key], CDX, parse_age("90d"))
    assert not res.ok
    assert f"the SBOM describes {gw.digest}" in res.reason() and "an SBOM of another image" in res.reason()

    gate = _vouch("-o", "json", "verify-release", "--key", str(pub), "--max-age", "90d", str(auth))
    assert gate.returncode == 1, gate.stderr
    [row] = json.loads(gate.stdout)
    assert "an SBOM of another image" in row["sbom"], row  # before: "ok"


def test_release_replaces_an_sbom_of_another_image(registry: RegistryServer, client: RegistryClient,
                                                   repo_name: str, tmp_path: Path) -> None:
    gw, auth = _two_images(registry, client, repo_name)
    priv, _, signer = write_keypair(tmp_path, "k")
    _attach_bom(client, signer, auth, json.loads(generate_sbom(RegistrySource(client, gw), digest=gw.digest)
                                                 .to_json()))
    r = _vouch("-o", "json", "release", "--key", str(priv), str(auth))
    assert r.returncode == 0, r.stderr
    [report] = json.loads(r.stdout)["images"]
    assert report["sbom"] == "attested"  # before: "current", with the gateway's packages
    res = verify_attestations(client, auth, [signer.public_key], CDX, parse_age("90d"))
    assert res.ok and len(res.verified) == 1
    stmt = res.verified[0].statement
    assert stmt is not None and bom_subject_digests(stmt["predicate"]) == {auth.digest}


def test_sbom_naming_no_digest_cannot_be_judged_and_is_kept(registry: RegistryServer, client: RegistryClient,
                                                            repo_name: str, tmp_path: Path) -> None:
    """syft given a tag writes the tag as metadata.component.version: nothing to compare, accepted."""
    _, auth = _two_images(registry, client, repo_name)
    _, _, signer = write_keypair(tmp_path, "k")
    import datetime as dt

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    syft_like = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                 "metadata": {"timestamp": now, "component": {"bom-ref": "163247abe492ebbe", "type": "container",
                                                              "name": f"{registry.host}/{repo_name}/auth",
                                                              "version": "2026.04"}}}
    assert bom_subject_digests(syft_like) == set()
    _attach_bom(client, signer, auth, syft_like)
    assert verify_attestations(client, auth, [signer.public_key], CDX, parse_age("90d")).ok


def test_attest_refuses_another_images_bom_and_download_verifies(registry: RegistryServer, client: RegistryClient,
                                                                  repo_name: str, tmp_path: Path) -> None:
    gw, auth = _two_images(registry, client, repo_name)
    priv, pub, _ = write_keypair(tmp_path, "k")
    bom_file = tmp_path / "api-gateway.cdx.json"
    bom_file.write_text(generate_sbom(RegistrySource(client, gw), digest=gw.digest).to_json())
    r = _vouch("attest", "--key", str(priv), "--type", "cyclonedx", "--predicate", str(bom_file), str(auth))
    assert r.returncode == 2 and "an SBOM of another image" in r.stderr, r.stderr  # before: attached silently
    assert _vouch("download", "sbom", str(auth)).returncode == 3  # nothing was attached
    r = _vouch("attest", "--key", str(priv), "--type", "cyclonedx", "--predicate", str(bom_file),
               "--allow-other-subject", str(auth))
    assert r.returncode == 0, r.stderr
    assert _vouch("download", "sbom", str(auth)).returncode == 0  # unverified download prints it, as cosign's
    r = _vouch("download", "sbom", "--key", str(pub), str(auth))
    assert r.returncode == 1 and "an SBOM of another image" in r.stderr and r.stdout == ""
    r = _vouch("attest-sbom", "--key", str(priv), str(auth))
    assert r.returncode == 0, r.stderr
    r = _vouch("download", "sbom", "--key", str(pub), "--max-age", "90d", str(auth))
    assert r.returncode == 0, r.stderr
    assert bom_subject_digests(json.loads(r.stdout)) == {auth.digest}
    assert _vouch("download", "sbom", "--max-age", "90d", str(auth)).returncode == 2
