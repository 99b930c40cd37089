"""Sigstore bundles signed with a key: parsed, written and verified by `vouch.bundle`, against bundles the real
cosign 3.1.2 makes (`sign-blob` / `attest-blob --new-bundle-format`, `sign` of an image) with P-256, P-384,
P-521, RSA and Ed25519 keys, and against transparency-log entries of a test log built here (a real ECDSA
log key, Merkle tree, checkpoint and SET), each tampered with one way at a time."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import VECTORS
from tests.support.images import small_image
from tests.support.keys import new_signer
from tests.support.peers import PEERS_DIR, run_peer
from tests.support.registry import RegistryServer
from vouch.bundle import tlog
from vouch.bundle.model import (
    BUNDLE_V01,
    BUNDLE_V02,
    BUNDLE_V03,
    BUNDLE_V03_ALT,
    bundle_envelope_json,
    dsse_bundle_v03,
    parse_bundle,
)
from vouch.bundle.trustroot import load_trusted_root, parse_trusted_root, production_trusted_root
from vouch.bundle.verify import BundleCheck, verify_bundle
from vouch.errors import InputError, VerificationError
from vouch.keys.cosign import load_public_keys
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import envelope, statement
from vouch.store.bundles import SIGN_PREDICATE_TYPE, list_bundles, read_bundles
from vouch.store.layout import TagReading
from vouch.trust import KeyTrust, PublicKey, key_hint, key_id, public_key_pem, spki_der

CONFORMANCE = VECTORS / "sigstore-conformance" / "bundle-verify"
ARTIFACT = b"the artifact vouch and cosign sign\n"
NO_TLOG = ["--new-bundle-format", "--use-signing-config=false", "--tlog-upload=false"]
KEY_TYPES = ("p256", "p384", "p521", "rsa", "ed25519")


def cosign3() -> Path:
    """The real cosign 3 (scripts/install-peers.sh); a test needing it fails when it is missing."""
    found = shutil.which("cosign3")
    path = Path(found) if found else PEERS_DIR / "cosign3"
    if not path.exists():
        pytest.fail("peer cosign3 is not installed: run scripts/install-peers.sh")
    return path


def flip(data: bytes, at: int = -1) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- bundles made by the real cosign 3 ---------------------------------------------------------------------------


@dataclass
class Made:
    key: PublicKey
    blob: bytes  # sign-blob --bundle
    attestation: bytes  # attest-blob --bundle


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    """One key of each type and, for each, the bundles cosign 3 writes with it over ARTIFACT."""
    work = tmp_path_factory.mktemp("cosign3")
    binary = cosign3()
    env = {"COSIGN_PASSWORD": ""}
    (work / "a.txt").write_bytes(ARTIFACT)
    (work / "pred.json").write_text('{"built": "here"}')
    run_peer(binary, "generate-key-pair", "--output-key-prefix", "p256", home=work, env=env, cwd=work)
    private: dict[str, Any] = {"p384": ec.generate_private_key(ec.SECP384R1()),
                               "p521": ec.generate_private_key(ec.SECP521R1()),
                               "rsa": rsa.generate_private_key(65537, 2048),
                               "ed25519": ed25519.Ed25519PrivateKey.generate()}
    for name, k in private.items():
        pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        (work / f"{name}.pem").write_bytes(pem)
        run_peer(binary, "import-key-pair", "--key", f"{name}.pem", "--output-key-prefix", name, home=work, env=env,
                 cwd=work)
    out = {}
    for name in KEY_TYPES:
        run_peer(binary, "sign-blob", "--key", f"{name}.key", "--bundle", f"{name}.blob.json", *NO_TLOG, "a.txt",
                 home=work, env=env, cwd=work)
        run_peer(binary, "attest-blob", "--key", f"{name}.key", "--bundle", f"{name}.att.json", *NO_TLOG,
                 "--predicate", "pred.json", "--type", "custom", "a.txt", home=work, env=env, cwd=work)
        [key] = load_public_keys((work / f"{name}.pub").read_bytes())
        out[name] = Made(key, (work / f"{name}.blob.json").read_bytes(), (work / f"{name}.att.json").read_bytes())
    return out


def check(bundle: bytes, key: PublicKey | list[PublicKey], *, artifact: bytes | None = ARTIFACT,
          digest: str | None = None, root: Any = None, tlog_required: bool = False,
          now: dt.datetime | None = None) -> BundleCheck:
    keys = key if isinstance(key, list) else [key]
    return verify_bundle(bundle, artifact=None if digest else artifact, artifact_digest=digest,
                         trust=KeyTrust.of(keys), trusted_root=root, require_tlog=tlog_required, now=now)


def refused(result: BundleCheck, reason: str) -> None:
    assert not result.ok, result
    assert reason in result.reason, result.reason
    assert "\n" not in result.reason


def edit(bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    obj = json.loads(bundle)
    change(obj)
    return json.dumps(obj).encode()


SHA256 = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()


# ---- model ----------------------------------------------------------------------------------------------------


def test_model_reads_cosign3_bundles(made: dict[str, Made]) -> None:
    for name, m in made.items():
        blob = parse_bundle(m.blob)
        assert (blob.media_type, blob.version) == (BUNDLE_V03, "0.3")
        assert blob.key_signed and blob.material.public_key_hint == key_hint(m.key)
        assert blob.material.tlog_entries == () and blob.material.certificates == ()
        assert blob.message_signature is not None and blob.dsse_envelope is None
        digest = blob.message_signature.digest
        if name == "ed25519":
            assert digest is None  # cosign writes "messageDigest": {} for Ed25519 keys
        else:
            assert digest is not None
            want = {"p384": "sha384", "p521": "sha512"}.get(name, "sha256")
            assert digest.text() == f"{want}:" + hashlib.new(want, ARTIFACT).hexdigest()
        att = parse_bundle(m.attestation)
        assert att.dsse_envelope is not None and att.message_signature is None
        assert att.dsse_envelope.payload_type == "application/vnd.in-toto+json"
        assert [s.keyid for s in att.dsse_envelope.signatures] == [""]


def test_dsse_bundle_v03_is_byte_for_byte_cosigns_and_reverses(made: dict[str, Made]) -> None:
    """cosign 3 writes the same fields in the same order (its protojson adds random spaces, which a registry's
    copy does not have: see the image test); the accessor gives back the envelope vouch signed."""
    m = made["p256"]
    env = bundle_envelope_json(m.attestation)
    ours = dsse_bundle_v03(env, m.key)
    assert ours == json.dumps(json.loads(m.attestation), separators=(",", ":")).encode()
    signer = new_signer()
    mine = envelope(signer, statement("https://example.com/p", "a.txt", SHA256, {"x": 1}))
    bundle = dsse_bundle_v03(mine, signer.public_key)
    assert bundle_envelope_json(bundle) == mine
    assert b'"keyid"' not in bundle and b" " not in bundle
    assert json.loads(bundle)["verificationMaterial"] == {"publicKey": {"hint": key_hint(signer.public_key)}}
    with pytest.raises(VerificationError, match="holds no DSSE envelope"):
        bundle_envelope_json(m.blob)
    with pytest.raises(InputError, match="not a DSSE envelope"):
        dsse_bundle_v03(b'{"payload": 1}', signer.public_key)


def test_cosign3_verifies_a_vouch_written_bundle(made: dict[str, Made], tmp_path: Path) -> None:
    signer = new_signer()
    bundle = dsse_bundle_v03(envelope(signer, statement("https://cosign.sigstore.dev/attestation/v1", "a.txt", SHA256,
                                                        {"made": "by vouch"})), signer.public_key)
    (tmp_path / "b.json").write_bytes(bundle)
    (tmp_path / "a.txt").write_bytes(ARTIFACT)
    (tmp_path / "k.pub").write_bytes(public_key_pem(signer.public_key))
    run_peer(cosign3(), "verify-blob-attestation", "--key", "k.pub", "--bundle", "b.json", "--insecure-ignore-tlog",
             "--type", "custom", "a.txt", home=tmp_path, cwd=tmp_path)
    (tmp_path / "a.txt").write_bytes(flip(ARTIFACT))
    r = run_peer(cosign3(), "verify-blob-attestation", "--key", "k.pub", "--bundle", "b.json",
                 "--insecure-ignore-tlog", "--type", "custom", "a.txt", home=tmp_path, cwd=tmp_path, check=False)
    assert r.returncode != 0


ENTRY = {"logIndex": "1", "logId": {"keyId": "AAAA"}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
         "canonicalizedBody": "e30="}


def _v01(b: dict[str, Any]) -> None:
    b["mediaType"] = BUNDLE_V01


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None] | bytes, str]] = [
    ("not json", b'{"mediaType": ', "the sigstore bundle is not valid JSON"),
    ("not utf-8", b'{"mediaType": "\xff"}', "the sigstore bundle is not valid JSON"),
    ("duplicate key", b'{"mediaType": "x", "mediaType": "y"}', "the sigstore bundle is not valid JSON"),
    ("deep", b"[" * 100000, "the sigstore bundle is not valid JSON"),
    ("array", b"[]", "the sigstore bundle is not a JSON object"),
    ("unknown version", lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle.v0.4+json"),
     "unsupported sigstore bundle version"),
    ("other type", lambda b: b.update(mediaType="application/json"), "not a sigstore bundle (mediaType"),
    ("no material", lambda b: b.pop("verificationMaterial"), "verificationMaterial is missing or not an object"),
    ("both contents", lambda b: b.update(dsseEnvelope={"payload": "", "payloadType": "x", "signatures": []}),
     "the bundle must hold exactly one of messageSignature, dsseEnvelope (it holds 2)"),
    ("no content", lambda b: b.pop("messageSignature"), "must hold exactly one of messageSignature, dsseEnvelope"),
    ("two materials", lambda b: b["verificationMaterial"].update(certificate={"rawBytes": "AAAA"}),
     "verificationMaterial must hold exactly one of publicKey, x509CertificateChain, certificate"),
    ("v0.3 chain", lambda b: b.update(verificationMaterial={"x509CertificateChain": {"certificates": [
        {"rawBytes": "AAAA"}]}}), "a v0.3 bundle carries one certificate, never an x509CertificateChain"),
    ("empty chain", lambda b: b.update(mediaType=BUNDLE_V02, verificationMaterial={"x509CertificateChain": {
        "certificates": []}}), "the x509CertificateChain holds no certificate"),
    ("bad base64", lambda b: b["messageSignature"].update(signature="INVALID!!!"),
     "messageSignature.signature is not base64"),
    ("empty signature", lambda b: b["messageSignature"].update(signature=""), "messageSignature.signature is empty"),
    ("hint not a string", lambda b: b["verificationMaterial"]["publicKey"].update(hint=7),
     "verificationMaterial.publicKey.hint is missing or not a string"),
    ("digest algorithm", lambda b: b["messageSignature"]["messageDigest"].update(algorithm="MD5"),
     "unsupported message digest algorithm 'MD5'"),
    ("digest size", lambda b: b["messageSignature"]["messageDigest"].update(digest="AAAA"),
     "messageSignature.messageDigest.digest is 3 bytes, not a sha256 digest"),
    ("tlog not a list", lambda b: b["verificationMaterial"].update(tlogEntries={}),
     "verificationMaterial.tlogEntries is not a list"),
    ("too many entries", lambda b: b["verificationMaterial"].update(tlogEntries=[{}] * 33),
     "33 transparency-log entries, over the limit of 32"),
    ("negative index", lambda b: b["verificationMaterial"].update(tlogEntries=[{**ENTRY, "logIndex": "-1"}]),
     "verificationMaterial.tlogEntries[0].logIndex is not a non-negative integer"),
    ("v0.3 entry without proof", lambda b: b["verificationMaterial"].update(tlogEntries=[{
        "logIndex": "1", "logId": {"keyId": "AAAA"}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "canonicalizedBody": "e30="}]), "has no inclusion proof (a v0.2 or v0.3 bundle's log entries must carry one)"),
    ("v0.1 entry without promise", lambda b: (_v01(b), b["verificationMaterial"].update(tlogEntries=[{
        "logIndex": "1", "logId": {"keyId": "AAAA"}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "canonicalizedBody": "e30="}])), "has no inclusion promise (a v0.1 bundle's log entries must carry one)"),
    ("proof without checkpoint", lambda b: b["verificationMaterial"].update(tlogEntries=[{
        "logIndex": "1", "logId": {"keyId": "AAAA"}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "canonicalizedBody": "e30=", "inclusionProof": {"rootHash": "AAAA", "treeSize": "2"}}]),
     "verificationMaterial.tlogEntries[0].inclusionProof has no checkpoint"),
]


@pytest.mark.parametrize(("change", "reason"), [(c, r) for _, c, r in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_malformed_bundles_are_refused_with_one_line(made: dict[str, Made], change: Any, reason: str) -> None:
    raw = change if isinstance(change, bytes) else edit(made["p256"].blob, change)
    with pytest.raises(VerificationError) as exc:
        parse_bundle(raw)
    assert reason in str(exc.value) and "\n" not in str(exc.value)
    refused(check(raw, made["p256"].key), reason)  # verify_bundle turns it into a reason, never raises


def test_model_reads_every_version_and_protobuf_json_habits(made: dict[str, Made],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    m = made["p256"]
    for media_type in (BUNDLE_V01, BUNDLE_V02, BUNDLE_V03_ALT, BUNDLE_V03):
        assert check(edit(m.blob, lambda b, t=media_type: b.update(mediaType=t)), m.key).ok  # type: ignore[misc]
    # URL-safe, unpadded and line-wrapped base64 all read as the same bytes; null is absent; unknown fields ignored
    sig = json.loads(m.blob)["messageSignature"]["signature"]
    for spelling in (sig.replace("+", "-").replace("/", "_"), sig.rstrip("="), sig[:20] + "\n" + sig[20:]):
        assert check(edit(m.blob, lambda b, s=spelling: b["messageSignature"].update(signature=s)), m.key).ok  # type: ignore[misc]
    assert check(edit(m.blob, lambda b: b.update(timestampVerificationData=None, futureField={"x": 1})), m.key).ok
    from vouch.bundle import model

    monkeypatch.setattr(model, "MAX_BUNDLE_BYTES", len(m.blob) - 1)
    with pytest.raises(VerificationError, match=f"is {len(m.blob)} bytes, over the {len(m.blob) - 1}-byte limit"):
        parse_bundle(m.blob)


# ---- verification of cosign 3's bundles ------------------------------------------------------------------------


@pytest.mark.parametrize("name", KEY_TYPES)
def test_cosign3_blob_signatures_verify_and_each_tampering_is_refused(made: dict[str, Made], name: str) -> None:
    m = made[name]
    ok = check(m.blob, m.key)
    assert ok.ok and ok.key_id == key_id(m.key) and ok.notes == () and ok.statement is None
    # one byte of the signature
    sig = base64.b64decode(json.loads(m.blob)["messageSignature"]["signature"])
    bad_sig = edit(m.blob, lambda b: b["messageSignature"].update(signature=b64(flip(sig, 10))))
    refused(check(bad_sig, m.key), "the bundle's message signature does not verify with the given key")
    # one byte of the artifact
    if name == "ed25519":  # no message digest to compare: the signature itself fails
        refused(check(m.blob, m.key, artifact=flip(ARTIFACT)), "message signature does not verify")
    else:
        refused(check(m.blob, m.key, artifact=flip(ARTIFACT)), "is not the bundle's message digest")
        digest = base64.b64decode(json.loads(m.blob)["messageSignature"]["messageDigest"]["digest"])
        bad_digest = edit(m.blob, lambda b: b["messageSignature"]["messageDigest"].update(digest=b64(flip(digest))))
        refused(check(bad_digest, m.key), "is not the bundle's message digest")
    # another key
    other = made["p256" if name != "p256" else "rsa"].key
    refused(check(m.blob, other), "does not verify with the given key (the bundle's key hint names none of them)")
    # no artifact at all
    refused(check(m.blob, m.key, artifact=None), "a message signature is verified against the artifact")


@pytest.mark.parametrize("name", ["p256", "p384", "p521", "rsa"])
def test_cosign3_blob_signatures_verify_by_digest(made: dict[str, Made], name: str) -> None:
    m = made[name]
    algorithm = {"p384": "sha384", "p521": "sha512"}.get(name, "sha256")
    digest = f"{algorithm}:" + hashlib.new(algorithm, ARTIFACT).hexdigest()
    assert check(m.blob, m.key, digest=digest).ok
    refused(check(m.blob, m.key, digest=f"{algorithm}:" + hashlib.new(algorithm, b"other").hexdigest()),
            "is not the bundle's message digest")
    if algorithm != "sha256":
        refused(check(m.blob, m.key, digest=SHA256), f"the bundle's message digest is a {algorithm} one")
    sig = base64.b64decode(json.loads(m.blob)["messageSignature"]["signature"])
    bad = edit(m.blob, lambda b: b["messageSignature"].update(signature=b64(flip(sig, 10))))
    refused(check(bad, m.key, digest=digest), "message signature does not verify")


def test_ed25519_message_signature_needs_the_artifact(made: dict[str, Made]) -> None:
    m = made["ed25519"]
    refused(check(m.blob, m.key, digest=SHA256), "names no digest: verify it against the artifact itself")
    with_digest = edit(m.blob, lambda b: b["messageSignature"].update(
        messageDigest={"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(ARTIFACT).digest())}))
    assert check(with_digest, m.key).ok
    refused(check(with_digest, m.key, digest=SHA256), "an Ed25519 message signature verifies against the artifact")


@pytest.mark.parametrize("name", ["p256", "p384", "p521", "rsa"])
def test_cosign3_attestations_verify_and_each_tampering_is_refused(made: dict[str, Made], name: str) -> None:
    m = made[name]
    ok = check(m.attestation, m.key)
    assert ok.ok and ok.statement is not None
    assert ok.statement["predicateType"] == "https://cosign.sigstore.dev/attestation/v1"
    assert ok.statement["subject"][0]["digest"] == {"sha256": hashlib.sha256(ARTIFACT).hexdigest()}
    assert check(m.attestation, m.key, digest=SHA256).ok
    assert check(m.attestation, m.key, artifact=None).ok  # the signature alone
    env = json.loads(m.attestation)["dsseEnvelope"]
    payload, sig = base64.b64decode(env["payload"]), base64.b64decode(env["signatures"][0]["sig"])
    bad_payload = edit(m.attestation, lambda b: b["dsseEnvelope"].update(payload=b64(flip(payload, 30))))
    refused(check(bad_payload, m.key), "the DSSE envelope's signature does not verify with the given key")
    bad_sig = edit(m.attestation, lambda b: b["dsseEnvelope"]["signatures"][0].update(sig=b64(flip(sig, 10))))
    refused(check(bad_sig, m.key), "the DSSE envelope's signature does not verify")
    bad_type = edit(m.attestation, lambda b: b["dsseEnvelope"].update(payloadType="text/plain"))
    refused(check(bad_type, m.key), "the DSSE envelope's signature does not verify")  # the type is signed too
    refused(check(m.attestation, m.key, artifact=flip(ARTIFACT)), "is not among the statement's subjects")
    refused(check(m.attestation, m.key, digest="sha256:" + "00" * 32), "the digest sha256:00")
    two = edit(m.attestation, lambda b: b["dsseEnvelope"]["signatures"].append(b["dsseEnvelope"]["signatures"][0]))
    refused(check(two, m.key), "must hold exactly one signature (it holds 2)")


def test_cosign3_ed25519_attestations_are_ed25519ph_and_refused(made: dict[str, Made], tmp_path: Path) -> None:
    """cosign 3.1.2 signs a DSSE envelope with an Ed25519 key as Ed25519ph over the PAE, where DSSE and sigstore-go
    use plain Ed25519: neither vouch nor cosign itself verifies it."""
    m = made["ed25519"]
    refused(check(m.attestation, m.key), "the DSSE envelope's signature does not verify with the given key")
    (tmp_path / "b.json").write_bytes(m.attestation)
    (tmp_path / "a.txt").write_bytes(ARTIFACT)
    (tmp_path / "k.pub").write_bytes(public_key_pem(m.key))
    r = run_peer(cosign3(), "verify-blob-attestation", "--key", "k.pub", "--bundle", "b.json",
                 "--insecure-ignore-tlog", "--type", "custom", "a.txt", home=tmp_path, cwd=tmp_path, check=False)
    assert r.returncode != 0


def test_key_hint_orders_keys_but_never_decides(made: dict[str, Made]) -> None:
    """As sigstore-go (and cosign): a hint naming another key is no failure when a trusted key verifies."""
    m = made["p256"]
    several = check(m.blob, [made["rsa"].key, made["p384"].key, m.key])
    assert several.ok and several.key_id == key_id(m.key)
    other_hint = edit(m.blob, lambda b: b["verificationMaterial"]["publicKey"].update(hint=key_hint(made["rsa"].key)))
    r = check(other_hint, m.key)
    assert r.ok and r.notes == ("the bundle's key hint names another key than the one that verified it",)
    no_hint = edit(m.blob, lambda b: b["verificationMaterial"].update(publicKey={}))
    assert check(no_hint, m.key).ok
    refused(check(m.blob, [made["rsa"].key, made["p384"].key]), "does not verify with any of the 2 given keys")
    refused(check(m.blob, []), "no public key to verify the key-signed bundle with")


def test_arguments_and_certificate_bundles() -> None:
    cert_bundle = (CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes()
    key = new_signer().public_key
    refused(check(cert_bundle, key), "the bundle is signed with a certificate (keyless): verify it with "
                                     "--certificate-identity and --certificate-oidc-issuer, not a key")
    with pytest.raises(InputError, match="not both"):
        verify_bundle(cert_bundle, artifact=b"x", artifact_digest=SHA256, trust=KeyTrust.of([key]), trusted_root=None,
                      require_tlog=False)
    with pytest.raises(InputError, match="is not a digest"):
        check(cert_bundle, key, digest="sha256:abc")
    with pytest.raises(InputError, match="needs a trusted root"):
        check(cert_bundle, key, tlog_required=True)


def test_an_image_signature_bundle_is_checked_against_the_manifest_digest() -> None:
    """What verify_bundle does for an OCI image: the statement's subject is the manifest digest."""
    signer = new_signer()
    digest = "sha256:" + hashlib.sha256(b"a manifest").hexdigest()
    bundle = dsse_bundle_v03(envelope(signer, statement(SIGN_PREDICATE_TYPE, "registry.test/app", digest, {})),
                             signer.public_key)
    ok = check(bundle, signer.public_key, digest=digest)
    assert ok.ok and ok.statement is not None and ok.statement["predicateType"] == SIGN_PREDICATE_TYPE
    refused(check(bundle, signer.public_key, digest="sha256:" + "ab" * 32), "is not among the statement's subjects")
    refused(check(bundle, new_signer().public_key, digest=digest), "the DSSE envelope's signature does not verify")
    not_intoto = dsse_bundle_v03(envelope(signer, b"plain text", "text/plain"), signer.public_key)
    assert check(not_intoto, signer.public_key, artifact=None).ok
    refused(check(not_intoto, signer.public_key, digest=digest), "not an in-toto statement: it names no subject")
    not_statement = dsse_bundle_v03(envelope(signer, b'{"subject": 1}'), signer.public_key)
    refused(check(not_statement, signer.public_key, digest=digest),
            "the attestation payload is not an in-toto statement")


@pytest.mark.interop
def test_cosign3_image_signature_bundle_verifies_for_its_image(registry: RegistryServer, client: RegistryClient,
                                                                repo_name: str, tmp_path: Path) -> None:
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("bundle-verify"))
    binary = cosign3()
    run_peer(binary, "generate-key-pair", home=tmp_path, env={"COSIGN_PASSWORD": ""}, cwd=tmp_path)
    run_peer(binary, "sign", "--key", "cosign.key", "--new-bundle-format=true", "--use-signing-config=false",
             "--tlog-upload=false", "--yes", "--allow-insecure-registry", f"{registry.host}/{repo_name}@{digest}",
             home=tmp_path, env={"COSIGN_PASSWORD": ""}, cwd=tmp_path)
    [key] = load_public_keys((tmp_path / "cosign.pub").read_bytes())
    repo = Reference(registry.host, repo_name)
    [item] = list(read_bundles(client, repo, list_bundles(client, repo, digest), TagReading()))
    assert item.raw is not None
    ok = check(item.raw, key, digest=digest)
    assert ok.ok and ok.statement is not None and ok.statement["predicateType"] == SIGN_PREDICATE_TYPE
    refused(check(item.raw, key, digest="sha256:" + "cd" * 32), "is not among the statement's subjects")
    # cosign 3 writes the bundle as dsse_bundle_v03 does, byte for byte but for protojson's deliberately unstable
    # space after commas (this build writes ", "; none of the bundle's strings holds one)
    assert dsse_bundle_v03(bundle_envelope_json(item.raw), key) == item.raw.replace(b", ", b",")


# ---- trust roots --------------------------------------------------------------------------------------------------


def test_trusted_roots() -> None:
    prod = production_trusted_root()
    assert prod.tlogs[0].base_url == "https://rekor.sigstore.dev"
    rekor = prod.tlogs[0]
    assert rekor.log_id == hashlib.sha256(rekor.public_key_der).digest()
    assert spki_der(rekor.public_key()) == rekor.public_key_der
    assert prod.certificate_authorities and prod.ctlogs and prod.timestamp_authorities
    for path in sorted(CONFORMANCE.glob("*/trusted_root.json")):
        load_trusted_root(path)
    base = json.loads((CONFORMANCE / "managed-key-and-trusted-root" / "trusted_root.json").read_bytes())
    bad = [
        (b"{", "is not valid JSON"),
        (b'{"mediaType": "x"}', "mediaType 'x' is not a sigstore trusted root's"),
        ({**base, "tlogs": {}}, "tlogs is not a list"),
        ({**base, "tlogs": [{"publicKey": {}, "logId": {"keyId": "AAAA"}}]}, "tlogs[0].publicKey.rawBytes is missing"),
        ({**base, "tlogs": [{**base["tlogs"][0], "publicKey": {**base["tlogs"][0]["publicKey"],
                                                               "validFor": {"start": "yesterday"}}}]},
         "tlogs[0].publicKey.validFor.start is not an RFC 3339 time"),
        (b" " * (5 * 1024 * 1024), "over the 4194304-byte limit"),
    ]
    for doc, reason in bad:
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        with pytest.raises(InputError, match=reason.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
            parse_trusted_root(raw, "t.json")


# ---- transparency-log entries: the conformance suite's real ones, tampered ------------------------------------------


def _managed(case: str) -> tuple[bytes, PublicKey, Any]:
    d = CONFORMANCE / case
    [key] = load_public_keys((d / "key.pub").read_bytes())
    root = load_trusted_root(d / "trusted_root.json") if (d / "trusted_root.json").exists() else \
        production_trusted_root()
    return (d / "bundle.sigstore.json").read_bytes(), key, root


def _entry(b: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = b["verificationMaterial"]["tlogEntries"][0]
    return entry


def test_real_rekor_entries_verify(made: dict[str, Made]) -> None:
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    for case in ("managed-key-happy-path", "managed-key-and-trusted-root"):
        bundle, key, root = _managed(case)
        r = check(bundle, key, artifact=artifact, root=root, tlog_required=True)
        assert r.ok and r.tlog_entries == 1 and r.integrated_time == int(_entry(json.loads(bundle))["integratedTime"])
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
        assert check(bundle, key, digest=digest, root=root, tlog_required=True).ok
    # the production bundle's log is not in the staging root (and the reverse): nothing from a trusted log
    bundle, key, _ = _managed("managed-key-happy-path")
    _, _, staging = _managed("managed-key-and-trusted-root")
    refused(check(bundle, key, artifact=artifact, root=staging, tlog_required=True),
            "none of the bundle's transparency-log entries is from a log of the trusted root")
    # without require_tlog the entry is not looked at, and that is said
    r = check(bundle, key, artifact=artifact)
    assert r.ok and "1 transparency-log entry not checked" in r.notes


def _b64_flip(value: str, at: int = -1) -> str:
    return b64(flip(base64.b64decode(value), at))


def _checkpoint_root(e: dict[str, Any]) -> None:
    cp = e["inclusionProof"]["checkpoint"]["envelope"].split("\n")
    cp[2] = b64(b"\x00" * 32)
    e["inclusionProof"]["checkpoint"]["envelope"] = "\n".join(cp)


def _checkpoint_sig(e: dict[str, Any]) -> None:
    head, _, sig = e["inclusionProof"]["checkpoint"]["envelope"].rpartition(" ")
    e["inclusionProof"]["checkpoint"]["envelope"] = head + " " + _b64_flip(sig.strip()) + "\n"


def _checkpoint_hint(e: dict[str, Any]) -> None:
    head, _, sig = e["inclusionProof"]["checkpoint"]["envelope"].rpartition(" ")
    e["inclusionProof"]["checkpoint"]["envelope"] = head + " " + _b64_flip(sig.strip(), 0) + "\n"


REAL_TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("SET", lambda e: e["inclusionPromise"].update(signedEntryTimestamp=_b64_flip(
        e["inclusionPromise"]["signedEntryTimestamp"], 10)), "inclusion promise (SET) does not verify"),
    ("integrated time", lambda e: e.update(integratedTime=str(int(e["integratedTime"]) - 1)),
     "inclusion promise (SET) does not verify"),
    ("log index", lambda e: e.update(logIndex=str(int(e["logIndex"]) + 1)), "inclusion promise (SET) does not verify"),
    ("proof hash", lambda e: e["inclusionProof"]["hashes"].__setitem__(0, _b64_flip(e["inclusionProof"]["hashes"][0])),
     "the inclusion proof does not lead to its root hash"),
    ("proof index", lambda e: e["inclusionProof"].update(logIndex=str(int(e["inclusionProof"]["logIndex"]) - 1)),
     "the inclusion proof has fewer hashes than its tree size needs"),  # another leaf's path is shorter here
    ("proof short", lambda e: e["inclusionProof"]["hashes"].pop(), "fewer hashes than its tree size needs"),
    ("proof long", lambda e: e["inclusionProof"]["hashes"].append(b64(b"\x00" * 32)), "more hashes than"),
    ("root hash", lambda e: e["inclusionProof"].update(rootHash=_b64_flip(e["inclusionProof"]["rootHash"])),
     "the inclusion proof does not lead to its root hash"),
    ("checkpoint root", _checkpoint_root, "the checkpoint's signature does not verify"),
    ("checkpoint signature", _checkpoint_sig, "the checkpoint's signature does not verify"),
    ("checkpoint hint", _checkpoint_hint, "the checkpoint has no signature from"),
    ("checkpoint shape", lambda e: e["inclusionProof"]["checkpoint"].update(envelope="just text\n"),
     "malformed checkpoint: no blank line"),
    ("body", lambda e: e.update(canonicalizedBody=_b64_flip(e["canonicalizedBody"], 30)), "the log entry's"),
    ("kind", lambda e: e["kindVersion"].update(kind="dsse"), "but its kindVersion says dsse 0.0.1"),
    ("log id", lambda e: e["logId"].update(keyId=_b64_flip(e["logId"]["keyId"])), "none of the bundle's"),
]


@pytest.mark.parametrize(("change", "reason"), [(c, r) for _, c, r in REAL_TAMPERING],
                         ids=[n for n, _, _ in REAL_TAMPERING])
def test_real_rekor_entry_tampered(change: Callable[[dict[str, Any]], None], reason: str) -> None:
    bundle, key, root = _managed("managed-key-and-trusted-root")
    tampered = edit(bundle, lambda b: change(_entry(b)))
    refused(check(tampered, key, artifact=(CONFORMANCE / "a.txt").read_bytes(), root=root, tlog_required=True), reason)


def test_real_rekor_entry_against_the_clock_and_the_roots_validity() -> None:
    bundle, key, root = _managed("managed-key-and-trusted-root")
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    refused(check(bundle, key, artifact=artifact, root=root, tlog_required=True, now=long_ago), "is in the future")
    doc = json.loads((CONFORMANCE / "managed-key-and-trusted-root" / "trusted_root.json").read_bytes())
    doc["tlogs"][0]["publicKey"]["validFor"] = {}
    refused(check(bundle, key, artifact=artifact, root=parse_trusted_root(json.dumps(doc).encode(), "t"),
                  tlog_required=True), "no validity start")
    doc["tlogs"][0]["publicKey"]["validFor"] = {"start": "2021-01-01T00:00:00Z", "end": "2022-01-01T00:00:00Z"}
    refused(check(bundle, key, artifact=artifact, root=parse_trusted_root(json.dumps(doc).encode(), "t"),
                  tlog_required=True), "outside the validity of the key of https://rekor.sigstage.dev")
    integrated = dt.datetime.fromtimestamp(int(_entry(json.loads(bundle))["integratedTime"]), dt.UTC)
    doc["tlogs"][0]["publicKey"]["validFor"]["end"] = integrated.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert check(bundle, key, artifact=artifact, root=parse_trusted_root(json.dumps(doc).encode(), "t"),
                 tlog_required=True).ok  # the end is inclusive
    twice = edit(bundle, lambda b: b["verificationMaterial"]["tlogEntries"].append(_entry(b)))
    refused(check(twice, key, artifact=artifact, root=root, tlog_required=True),
            "lists one transparency-log entry twice")
    # another artifact signed by the same key does not borrow this log entry
    refused(check(bundle, key, artifact=b"other", root=root, tlog_required=True), "is not the bundle's message digest")


# ---- transparency-log entries of a test log: DSSE kinds, and bodies that lie --------------------------------------


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle tree hash, by its recursive definition (the reference for the audit paths)."""
    if len(leaves) == 1:
        return tlog.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return tlog.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path of leaf m."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def test_merkle_inclusion_matches_rfc6962_for_every_small_tree() -> None:
    for size in range(1, 34):
        leaves = [b"leaf %d" % i for i in range(size)]
        root = _mth(leaves)
        for m in range(size):
            proof = tuple(_path(m, leaves))
            assert tlog.root_from_inclusion_proof(m, size, tlog.leaf_hash(leaves[m]), proof) == root
            if proof:
                with pytest.raises(VerificationError, match="fewer hashes"):
                    tlog.root_from_inclusion_proof(m, size, tlog.leaf_hash(leaves[m]), proof[:-1])
    with pytest.raises(VerificationError, match="is not below its tree size"):
        tlog.root_from_inclusion_proof(5, 5, b"\x00" * 32, ())


class TestLog:
    """A Rekor v1 log of our own: a P-256 key, a tree of a few other entries around ours, a signed checkpoint and
    a SET, all made the way Rekor makes them."""

    __test__ = False

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.log_id = hashlib.sha256(spki_der(self.key.public_key())).digest()

    def root(self, valid_for: dict[str, str] | None = None) -> Any:
        doc = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [{
            "baseUrl": "https://rekor.test", "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(spki_der(self.key.public_key())), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": valid_for if valid_for is not None else {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": b64(self.log_id)}}]}
        return parse_trusted_root(json.dumps(doc).encode(), "test root")

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def entry(self, body: dict[str, Any] | bytes, *, kind: tuple[str, str] | None = None, at: int | None = None,
              position: int = 5, size: int = 11, hint: bytes | None = None) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        kv = kind or ((body["kind"], body["apiVersion"]) if isinstance(body, dict) else ("hashedrekord", "0.0.1"))
        leaves = [b"other entry %d" % i for i in range(size)]
        leaves[position] = raw
        root = _mth(leaves)
        note = f"rekor.test - 1234\n{size}\n{b64(root)}\n"
        signature = (hint if hint is not None else self.log_id[:4]) + self.sign(note.encode())
        integrated = at if at is not None else int(dt.datetime.now(dt.UTC).timestamp()) - 60
        entry = {"logIndex": str(1000 + position), "logId": {"keyId": b64(self.log_id)},
                 "kindVersion": {"kind": kv[0], "version": kv[1]}, "integratedTime": str(integrated),
                 "inclusionProof": {"logIndex": str(position), "rootHash": b64(root), "treeSize": str(size),
                                    "hashes": [b64(h) for h in _path(position, leaves)],
                                    "checkpoint": {"envelope": f"{note}\n\u2014 rekor.test {b64(signature)}\n"}},
                 "canonicalizedBody": b64(raw)}
        parsed = parse_bundle(json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": {
            "publicKey": {}, "tlogEntries": [entry]}, "messageSignature": {"signature": "AAAA"}}).encode())
        entry["inclusionPromise"] = {"signedEntryTimestamp": b64(self.sign(tlog.set_payload(
            parsed.material.tlog_entries[0])))}
        return entry


def hashedrekord(bundle: bytes, key: PublicKey, *, digest: str | None = None, signature: bytes | None = None) -> dict[
        str, Any]:
    ms = json.loads(bundle)["messageSignature"]
    algorithm, value = (digest or SHA256).split(":")
    return {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": algorithm, "value": value}},
        "signature": {"content": b64(signature) if signature else ms["signature"],
                      "publicKey": {"content": b64(public_key_pem(key))}}}}


def dsse_body(bundle: bytes, key: PublicKey, *, payload_hash: str | None = None) -> dict[str, Any]:
    env = json.loads(bundle)["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    return {"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(b"not checkable").hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": payload_hash or hashlib.sha256(payload).hexdigest()},
        "signatures": [{"signature": s["sig"], "verifier": b64(public_key_pem(key))} for s in env["signatures"]]}}


def intoto_body(bundle: bytes, key: PublicKey, *, single_b64: bool = False) -> dict[str, Any]:
    env = json.loads(bundle)["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    return {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {
        "envelope": {"payloadType": env["payloadType"], "signatures": [
            {"sig": s["sig"] if single_b64 else b64(s["sig"].encode()), "publicKey": b64(public_key_pem(key))}
            for s in env["signatures"]]},
        "hash": {"algorithm": "sha256", "value": hashlib.sha256(b"envelope").hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}}}}


def with_entries(bundle: bytes, *entries: dict[str, Any], media_type: str = BUNDLE_V03) -> bytes:
    return edit(bundle, lambda b: (b.update(mediaType=media_type),
                                   b["verificationMaterial"].update(tlogEntries=list(entries))))


@pytest.fixture(scope="module")
def log() -> TestLog:
    return TestLog()


@pytest.mark.parametrize("name", ["p256", "p384", "rsa", "ed25519"])
def test_test_log_hashedrekord_entries(made: dict[str, Made], log: TestLog, name: str) -> None:
    m = made[name]
    algorithm = {"p384": "sha384"}.get(name, "sha256")
    digest = f"{algorithm}:" + hashlib.new(algorithm, ARTIFACT).hexdigest()
    good = with_entries(m.blob, log.entry(hashedrekord(m.blob, m.key, digest=digest)))
    r = check(good, m.key, root=log.root(), tlog_required=True)
    assert r.ok and r.tlog_entries == 1 and r.integrated_time is not None
    for media_type in (BUNDLE_V01, BUNDLE_V02):  # the same entry in the older layouts
        assert check(with_entries(m.blob, log.entry(hashedrekord(m.blob, m.key, digest=digest)),
                                  media_type=media_type), m.key, root=log.root(), tlog_required=True).ok
    other = made["rsa" if name != "rsa" else "p256"].key
    lying = [
        (hashedrekord(m.blob, m.key, digest="sha256:" + "00" * 32), "the log entry records the digest sha256:00"),
        (hashedrekord(m.blob, other, digest=digest), "the log entry's public key is another key than the one"),
        (hashedrekord(m.blob, m.key, digest=digest, signature=b"another"), "records another signature"),
    ]
    for body, reason in lying:
        refused(check(with_entries(m.blob, log.entry(body)), m.key, root=log.root(), tlog_required=True), reason)


def test_test_log_dsse_and_intoto_entries(made: dict[str, Made], log: TestLog) -> None:
    m = made["p256"]
    for body in (dsse_body(m.attestation, m.key), intoto_body(m.attestation, m.key)):
        r = check(with_entries(m.attestation, log.entry(body)), m.key, root=log.root(), tlog_required=True)
        assert r.ok and r.statement is not None, r
    lying = [
        (dsse_body(m.attestation, m.key, payload_hash="00" * 32), "records another payload hash"),
        (dsse_body(m.attestation, made["rsa"].key), "the log entry's verifier key is another key"),
        (intoto_body(m.attestation, m.key, single_b64=True), "the log entry's signature is not base64"),
        (hashedrekord(m.blob, m.key), "the log entry is a hashedrekord, but the bundle holds a DSSE envelope"),
    ]
    for body, reason in lying:
        refused(check(with_entries(m.attestation, log.entry(body)), m.key, root=log.root(), tlog_required=True), reason)
    refused(check(with_entries(m.blob, log.entry(dsse_body(m.attestation, m.key))), m.key, root=log.root(),
                  tlog_required=True), "the log entry is a dsse entry, but the bundle holds a message signature")


def test_test_log_entries_that_cannot_be_trusted(made: dict[str, Made], log: TestLog) -> None:
    m = made["p256"]
    body = hashedrekord(m.blob, m.key)
    root = log.root()

    def run(*entries: dict[str, Any], trust_root: Any = root) -> BundleCheck:
        return check(with_entries(m.blob, *entries), m.key, root=trust_root, tlog_required=True)

    assert run(log.entry(body, position=0, size=1)).ok  # a tree of one entry: an empty audit path
    assert run(log.entry(body, position=10, size=11)).ok  # the last, on the right border
    refused(run(log.entry(body, hint=b"\x00\x00\x00\x00")), "the checkpoint has no signature from https://rekor.test")
    refused(run(log.entry(body, at=int(dt.datetime.now(dt.UTC).timestamp()) + 3600)), "is in the future")
    refused(run(log.entry(body, at=1500000000)), "outside the validity of the key of https://rekor.test (2020-01-01")
    refused(run(log.entry(body), trust_root=log.root({})), "gives the key of https://rekor.test no validity start")
    refused(run(log.entry(body), trust_root=TestLog().root()), "none of the bundle's transparency-log entries")
    refused(run(log.entry(body, kind=("hashedrekord", "0.0.2"))),
            "the log entry's body is a hashedrekord 0.0.1 entry, but its kindVersion says hashedrekord 0.0.2")
    refused(run(log.entry({**body, "kind": "rekord"}, kind=("rekord", "0.0.1"))),
            "unsupported transparency-log entry type rekord 0.0.1")
    refused(run(log.entry(b"not json")), "the log entry's body is not JSON")
    # an entry from an unknown log is passed over when another one verifies
    stranger = TestLog().entry(body)
    r = run(stranger, log.entry(body))
    assert r.ok and r.tlog_entries == 1 and "is from a log the trusted root does not name" in r.notes[0]
    # a second entry from the trusted log must verify too
    bad = log.entry(body)
    bad["inclusionPromise"]["signedEntryTimestamp"] = _b64_flip(bad["inclusionPromise"]["signedEntryTimestamp"], 8)
    refused(run(log.entry(body, position=2), bad), "inclusion promise (SET) does not verify")
    # v0.1 bundles: the promise suffices, a proof without checkpoint is passed over
    entry = log.entry(body)
    entry.pop("inclusionProof")
    assert check(with_entries(m.blob, entry, media_type=BUNDLE_V01), m.key, root=root, tlog_required=True).ok
    entry["inclusionProof"] = {"logIndex": "1", "rootHash": "AAAA", "treeSize": "2", "hashes": []}
    assert check(with_entries(m.blob, entry, media_type=BUNDLE_V01), m.key, root=root, tlog_required=True).ok
    # v0.2+: a proof without a promise is enough (no integrated time is vouched for then)
    entry = log.entry(body)
    entry.pop("inclusionPromise")
    r = run(entry)
    assert r.ok and r.integrated_time is None


# ---- the CLI ----------------------------------------------------------------------------------------------------


def vouch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSIGN_")}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_cli_verify_blob(made: dict[str, Made], tmp_path: Path) -> None:
    m = made["p256"]
    for name, data in (("blob.json", m.blob), ("att.json", m.attestation), ("ed.json", made["ed25519"].blob)):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "a.txt").write_bytes(ARTIFACT)
    (tmp_path / "k.pub").write_bytes(public_key_pem(m.key))
    (tmp_path / "ed.pub").write_bytes(public_key_pem(made["ed25519"].key))
    base = ["verify-blob", "--key", "k.pub", "--insecure-ignore-tlog"]
    for target in ("a.txt", SHA256):
        for bundle in ("blob.json", "att.json"):
            r = vouch(*base, "--bundle", bundle, target, cwd=tmp_path)
            assert r.returncode == 0 and r.stderr.rstrip().endswith("Verified OK"), r.stderr
    r = vouch(*base, "--bundle", "blob.json", "a.txt", "-o", "json", cwd=tmp_path)
    assert json.loads(r.stdout)["verified"] is True and json.loads(r.stdout)["keyId"] == key_id(m.key)
    assert vouch("verify-blob", "--key", "ed.pub", "--insecure-ignore-tlog=true", "--bundle", "ed.json", "a.txt",
                 cwd=tmp_path).returncode == 0
    (tmp_path / "b.txt").write_bytes(flip(ARTIFACT))
    r = vouch(*base, "--bundle", "blob.json", "b.txt", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip().startswith("Error: the artifact's digest sha256:"), r.stderr
    r = vouch(*base, "--bundle", "blob.json", "-o", "json", "b.txt", cwd=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["verified"] is False
    # the transparency log is required unless skipped, as in cosign
    r = vouch("verify-blob", "--key", "k.pub", "--bundle", "blob.json", "a.txt", cwd=tmp_path)
    assert r.returncode == 1 and "the bundle has no transparency-log entry" in r.stderr, r.stderr
    r = vouch("verify-blob", "--bundle", "blob.json", "a.txt", cwd=tmp_path)
    assert r.returncode == 2 and "give --key" in r.stderr
    r = vouch(*base, "--bundle", "missing.json", "a.txt", cwd=tmp_path)
    assert r.returncode == 2 and "cannot read the bundle missing.json" in r.stderr
    r = vouch(*base, "--bundle", "blob.json", "missing.txt", cwd=tmp_path)
    assert r.returncode == 2 and "cannot read missing.txt" in r.stderr
    r = vouch(*base, "--bundle", "blob.json", "--certificate-identity", "me", "a.txt", cwd=tmp_path)
    assert r.returncode == 2 and "exclude each other" in r.stderr
    for out in (vouch(*base, "--bundle", "blob.json", "sha256:12", cwd=tmp_path),):
        assert out.returncode == 2 and "is not a digest" in out.stderr
    assert "Traceback" not in r.stderr
