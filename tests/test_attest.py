"""Attestations against the real registry: attach, dedup, replace, verify (freshness), tampering, download."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.keys import new_signer, write_keypair
from tests.support.registry import RegistryServer
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import PREDICATE_TYPES, envelope, pae, statement
from vouch.signing.signer import KeySigner
from vouch.store.attest import attach, read_attestations
from vouch.store.layout import ANN_SIGNATURE, ATT_SUFFIX, build_manifest, tag_for
from vouch.verify.attestations import verify_attestations
from vouch.verify.bomfacts import parse_age

CDX = PREDICATE_TYPES["cyclonedx"]


def bom(ts: str = "2026-11-20T10:00:00Z") -> dict[str, object]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "metadata": {"timestamp": ts},
            "components": [{"type": "library", "name": "zlib1g", "version": "1:1.2.13.dfsg-1"}]}


NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def _image(registry: RegistryServer, client: RegistryClient, repo: str, tag: str = "v1") -> tuple[Reference, str]:
    ref = Reference(registry.host, repo, tag)
    return ref, push_image(client, ref, small_image("att"))


def _attest(client: RegistryClient, signer: KeySigner, ref: Reference, digest: str, predicate: object,
            ptype: str = CDX, replace: bool = False, subject_digest: str | None = None) -> bool:
    stmt = statement(ptype, ref.docker_reference, subject_digest or digest, predicate)
    return attach(client, ref, digest, envelope(signer, stmt), stmt, ptype, signer.public_key, replace).attached


def _layers(client: RegistryClient, ref: Reference, digest: str) -> int:
    return len(read_attestations(client, ref, digest)[1])


def test_pae_matches_the_dsse_spec() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_attach_verify_dedup_replace(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    assert _attest(client, signer, ref, digest, bom())
    assert not _attest(client, signer, ref, digest, bom())  # identical predicate: nothing added
    assert _layers(client, ref, digest) == 1
    assert _attest(client, signer, ref, digest, bom("2026-11-21T10:00:00Z"))  # accumulates without replace
    assert _attest(client, signer, ref, digest, {"x": 1}, PREDICATE_TYPES["custom"])
    assert _layers(client, ref, digest) == 3
    assert _attest(client, signer, ref, digest, bom("2026-11-22T10:00:00Z"), replace=True)
    _, layers = read_attestations(client, ref, digest)
    assert len(layers) == 2  # the two cyclonedx statements replaced by the new one; custom kept
    assert layers[0].annotations["predicateType"] == CDX  # the new one first
    res = verify_attestations(client, ref, [signer.public_key], CDX, parse_age("90d"), now=NOW)
    assert res.ok and len(res.verified) == 1
    assert res.verified[0].statement is not None
    assert res.verified[0].statement["predicate"]["metadata"]["timestamp"] == "2026-11-22T10:00:00Z"


def test_expired_sbom_says_by_how_much(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    _attest(client, signer, ref, digest, bom("2026-07-01T00:00:00Z"))
    res = verify_attestations(client, ref, [signer.public_key], CDX, parse_age("90d"), now=NOW)
    assert not res.ok
    assert "SBOM expired" in res.reason() and "148.0 days old" in res.reason() and "by 58.0 days" in res.reason()
    assert verify_attestations(client, ref, [signer.public_key], CDX, parse_age("180d"), now=NOW).ok


def test_no_attestation_of_that_type(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    res = verify_attestations(client, ref, [signer.public_key], CDX)
    assert not res.ok and "no attestation" in res.reason()
    _attest(client, signer, ref, digest, {"a": 1}, PREDICATE_TYPES["openvex"])
    res = verify_attestations(client, ref, [signer.public_key], CDX)
    assert not res.ok and res.reason() == f"no attestation of type {CDX} found"
    assert verify_attestations(client, ref, [signer.public_key], PREDICATE_TYPES["openvex"]).ok


def test_wrong_subject_refused(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    _, other = _image(registry, client, repo_name, "v2")
    signer = new_signer()
    _attest(client, signer, ref, digest, bom(), subject_digest=other)
    res = verify_attestations(client, ref, [signer.public_key], CDX)
    assert not res.ok and "is not this image" in res.reason()


def _put_layers(client: RegistryClient, ref: Reference, digest: str, envelopes: list[tuple[bytes, str]]) -> None:
    repo = Reference(ref.registry, ref.repository)
    descs = []
    for env, ptype in envelopes:
        client.push_blob(repo, env)
        descs.append(Descriptor(mt.DSSE_ENVELOPE, "sha256:" + __import__("hashlib").sha256(env).hexdigest(), len(env),
                                {"predicateType": ptype, ANN_SIGNATURE: ""}))
    client.put_manifest(repo.with_tag(tag_for(digest, ATT_SUFFIX)), build_manifest(client, repo, descs),
                        mt.OCI_MANIFEST)


@pytest.mark.parametrize("tamper", ["payload-type", "edited-statement", "lying-annotation"])
def test_tampering_refused(registry: RegistryServer, client: RegistryClient, repo_name: str, tamper: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    stmt = statement(CDX, ref.docker_reference, digest, bom())
    env = json.loads(envelope(signer, stmt))
    ptype = CDX
    if tamper == "payload-type":
        env["payloadType"] = "application/json"
    elif tamper == "edited-statement":
        edited = json.loads(stmt)
        edited["predicate"]["components"][0]["version"] = "9.9.9"
        env["payload"] = base64.b64encode(json.dumps(edited).encode()).decode()
    else:
        env = json.loads(envelope(signer, statement(PREDICATE_TYPES["openvex"], ref.docker_reference, digest,
                                                    {"statements": []})))
    _put_layers(client, ref, digest, [(json.dumps(env).encode(), ptype)])
    res = verify_attestations(client, ref, [signer.public_key], CDX)
    assert not res.ok
    expected = {"payload-type": "payloadType 'application/json'", "edited-statement": "does not verify",
                "lying-annotation": "annotation says https://cyclonedx.org/bom but the signed statement says"}[tamper]
    assert expected in res.reason(), res.reason()


def test_unknown_signer_next_to_valid(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref, digest = _image(registry, client, repo_name)
    good, stranger = new_signer(), new_signer()
    _attest(client, stranger, ref, digest, bom("2026-11-01T00:00:00Z"))
    _attest(client, good, ref, digest, bom())
    res = verify_attestations(client, ref, [good.public_key], CDX, parse_age("90d"), now=NOW)
    assert res.ok and len(res.verified) == 1  # the valid one counts
    assert any("does not verify" in p for p in res.problems())  # the unknown one is reported


def vouch(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, input=stdin, timeout=300,
                          env={**os.environ, "COSIGN_PASSWORD": "pw", **(env or {})})


def test_cli_attest_sbom_verify_download(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                         tmp_path: Path) -> None:
    """The ADR's operator pipeline: download attestation | jq -r .payload | base64 -d | jq .predicate."""
    ref, digest = _image(registry, client, repo_name)
    priv, pub, _ = write_keypair(tmp_path, "k")
    image = f"{ref.name}@{digest}"
    r = vouch("attest-sbom", "--key", str(priv), image)
    assert r.returncode == 0, r.stderr
    r = vouch("verify-attestation", "--key", str(pub), "--type", "cyclonedx", "--max-age", "90d", image)
    assert r.returncode == 0, r.stderr
    envs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(envs) == 1 and envs[0]["payloadType"] == "application/vnd.in-toto+json"
    r = vouch("download", "attestation", image)
    line = r.stdout.decode().splitlines()[0]
    predicate = json.loads(base64.b64decode(json.loads(line)["payload"]))["predicate"]
    assert predicate["bomFormat"] == "CycloneDX" and predicate["metadata"]["component"]["version"] == digest
    r = vouch("download", "sbom", image)
    assert json.loads(r.stdout) == predicate
    # and the verifier's exit codes
    _, other_pub, _ = write_keypair(tmp_path, "other")
    r = vouch("verify-attestation", "--key", str(other_pub), "--type", "cyclonedx", image)
    assert r.returncode == 1 and b"does not verify" in r.stderr and b"Traceback" not in r.stderr
    r = vouch("verify-attestation", "--key", str(pub), "--type", "cyclonedx", "--max-age", "1s", image)
    assert r.returncode == 1 and b"SBOM expired" in r.stderr
    r = vouch("attest", "--key", str(priv), "--type", "nonsense", "--predicate", "-", image, stdin=b"{}")
    assert r.returncode == 2 and b"unknown predicate type" in r.stderr


def test_large_bom_roundtrips(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    """The biggest BOM vouch writes (per-file detail of the debootstrap image) as an attestation."""
    from tests.support.testdata import debian_layered
    from vouch.oci.copy import copy_image
    from vouch.oci.source import LayoutSource, RegistrySource
    from vouch.sbom.generate import generate_sbom

    img = debian_layered()
    ref = Reference(registry.host, repo_name, "bookworm")
    digest = copy_image(LayoutSource(img.layout, None), client, ref)
    result = generate_sbom(RegistrySource(client, ref), timestamp="2026-11-20T10:00:00Z")
    full = json.loads(result.to_json(files_detail=True))
    compact = json.loads(result.to_json())
    size_full, size_compact = len(json.dumps(full)), len(json.dumps(compact))
    assert size_full > 2 * size_compact  # the compact default leaves the file lists out
    signer = new_signer()
    _attest(client, signer, ref, digest, full)
    res = verify_attestations(client, ref, [signer.public_key], CDX)
    assert res.ok
    assert res.verified[0].statement is not None and res.verified[0].statement["predicate"] == \
        json.loads(json.dumps(full, sort_keys=True))


def test_replace_never_shows_a_half_state(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    """While SBOM attestations are replaced again and again, a reader polling the tag always finds
    exactly one valid CycloneDX statement: the tag is never empty and never holds two."""
    import threading

    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    _attest(client, signer, ref, digest, bom("2026-11-01T00:00:00Z"), replace=True)
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        with RegistryClient() as c:
            while not stop.is_set():
                res = verify_attestations(c, ref, [signer.public_key], CDX)
                seen.append(len(res.verified) if all(ch.ok for ch in res.checks) else -1)

    t = threading.Thread(target=reader)
    t.start()
    try:
        # replace until the reader has polled often enough (at least 10 replaces, at most 200), so the
        # check does not depend on which side is faster on this machine
        n = 0
        while n < 10 or (len(seen) <= 10 and n < 200):
            day = 2 + n % 27
            _attest(client, signer, ref, digest, bom(f"2026-11-{day:02d}T00:00:{n % 60:02d}Z"), replace=True)
            n += 1
    finally:
        stop.set()
        t.join()
    assert len(seen) > 10
    assert set(seen) == {1}, seen


def test_statements_read_ahead_with_their_tag_are_taken_once(registry: RegistryServer, client: RegistryClient,
                                                             repo_name: str) -> None:
    """`vouch release` reads a `.att` tag ahead with its envelopes (store.layout.attestation_blobs): checking
    the SBOM then costs no request for them; an envelope read ahead is taken once (a second read asks the
    registry again)."""
    from vouch.store.layout import TAG_ACCEPT, attestation_blobs

    ref, digest = _image(registry, client, repo_name)
    signer = new_signer()
    _attest(client, signer, ref, digest, bom())
    tag = ref.with_tag(tag_for(digest, ATT_SUFFIX))
    with RegistryClient() as ahead:
        ahead.prefetch_manifests([tag], TAG_ACCEPT, 1, attestation_blobs)
        layer = ahead.get_manifest(tag, TAG_ACCEPT).layers()[0]
        pending = ahead._prefetched_blobs[(f"{ref.registry}/{ref.repository}", layer.digest)]
        assert pending.done.wait(10) and pending.data is not None
        before = ahead.request_count
        envelope_bytes = ahead.get_blob(ref, layer.digest)
        assert ahead.request_count == before  # taken from the read ahead
        assert ahead.get_blob(ref, layer.digest) == envelope_bytes and ahead.request_count == before + 1
        assert json.loads(envelope_bytes)["payloadType"] == "application/vnd.in-toto+json"
        assert verify_attestations(ahead, ref.with_digest(digest), [signer.public_key], CDX).ok
