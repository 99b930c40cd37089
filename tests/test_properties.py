"""Property tests (Hypothesis, fixed seed, bounded count) for what vouch reads from outside: image references,
simple-signing payloads, DSSE envelopes and in-toto statements, cosign key files, release.yaml and kubeconfig.

Arbitrary input gives a value of the documented shape or a VouchError, never another exception. Inputs are
structured (JSON-like documents, real documents with one part replaced, real files with byte mutations), not
only random bytes, so that the checks past the first parse are reached too."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VECTORS
from vouch.errors import InputError, KeyError_, ReferenceError_, VerificationError, VouchError
from vouch.keys import cosign
from vouch.keys.cosign import (
    encrypt_envelope,
    import_plain_private_key,
    load_private_key,
    load_public_keys,
    pem_encode,
)
from vouch.keys.k8s import KubeClient
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor
from vouch.oci.reference import Reference, parse_reference
from vouch.release.plan import Release, load_manifest
from vouch.signing.attestation import envelope, open_envelope
from vouch.signing.payload import SIGNATURE_TYPE, go_json, parse_payload
from vouch.signing.signer import KeySigner
from vouch.store.layout import ANN_SIGNATURE, StoredLayer
from vouch.verify.signatures import check_layer
from vouch.yamlsafe import load_yaml

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DIGEST = "sha256:" + "ab" * 32
KEYS = VECTORS / "cosign-keys"

# ---- strategies --------------------------------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def replaced(draw: st.DrawFn, doc: Any, values: st.SearchStrategy[Any] = json_values) -> Any:
    """doc (JSON-like) with the value at one random path replaced, or the key there removed."""
    if not isinstance(doc, dict | list) or not doc or draw(st.integers(0, 3)) == 0:
        return draw(values)
    if isinstance(doc, dict):
        key = draw(st.sampled_from(sorted(doc)))
        out = dict(doc)
        if draw(st.integers(0, 4)) == 0:
            del out[key]
        else:
            out[key] = draw(replaced(doc[key], values))
        return out
    i = draw(st.integers(0, len(doc) - 1))
    items = list(doc)
    items[i] = draw(replaced(doc[i], values))
    return items


@st.composite
def mutated(draw: st.DrawFn, base: bytes, alphabet: bytes = b"") -> bytes:
    """base with a few byte edits: flips, deletions, insertions (of alphabet bytes or any), truncation."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            pool = st.sampled_from(list(alphabet)) if alphabet else st.integers(0, 255)
            data[pos:pos] = bytes(draw(st.lists(pool, min_size=1, max_size=8)))
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


# ---- image references ----------------------------------------------------------------------------------------

REF_CHARS = string.ascii_letters + string.digits + "._-:/@[]" + "\n\t\r\x00\x1b é٣\u2028"
hosts = st.sampled_from(["", "localhost/", "localhost:5000/", "registry.example.com/", "127.0.0.1:5000/",
                         "[::1]:5000/", "index.docker.io/", "Reg.Example.COM:443/"])
paths = st.lists(st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True), min_size=1, max_size=3).map("/".join)
suffixes = st.sampled_from(["", ":1.0", ":latest", f"@{DIGEST}", f":v2@{DIGEST}", ":" + "t" * 128])
references = st.tuples(hosts, paths, suffixes).map("".join)


def _check_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ReferenceError_ as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000
        return
    parts = [ref.registry, ref.repository, ref.tag or "", ref.digest or ""]
    assert all(p.isascii() and p.isprintable() and " " not in p for p in parts), ref
    assert parse_reference(str(ref)) == ref
    assert isinstance(ref, Reference)


@SETTINGS
@given(st.text(alphabet=REF_CHARS, max_size=80))
def test_arbitrary_reference_text(text: str) -> None:
    _check_reference(text)


@SETTINGS
@given(references.flatmap(lambda r: st.tuples(st.just(r), mutated(r.encode(), REF_CHARS.encode()))))
def test_mutated_references(pair: tuple[str, bytes]) -> None:
    valid, raw = pair
    assert parse_reference(valid) == parse_reference(str(parse_reference(valid)))
    _check_reference(raw.decode("utf-8", "replace"))


@SETTINGS
@given(references, st.integers(0, 200), st.sampled_from(["\n", "\r", "\t", "\x00", "\x7f", "\x85", "\x1b"]))
def test_a_control_character_anywhere_is_refused(valid: str, where: int, char: str) -> None:
    pos = where % (len(valid) + 1)
    try:
        parse_reference(valid[:pos] + char + valid[pos:])
    except ReferenceError_:
        return
    raise AssertionError(repr(valid[:pos] + char + valid[pos:]))


# ---- simple-signing payloads ---------------------------------------------------------------------------------

PAYLOAD = {"critical": {"identity": {"docker-reference": "r.example/a/b"},
                        "image": {"docker-manifest-digest": DIGEST}, "type": SIGNATURE_TYPE},
           "optional": {"org": "akko"}}
PRIVATE = cosign.generate_private_key()
SIGNER = KeySigner(PRIVATE)


def _check_payload(raw: bytes) -> None:
    try:
        obj = parse_payload(raw)
    except VerificationError as exc:
        assert "\n" not in str(exc)
    else:
        # what verify/signatures.py and cosign_output do with a parsed payload
        critical = obj["critical"]
        assert isinstance(critical["type"], str) and isinstance(critical["image"]["docker-manifest-digest"], str)
        ref = (critical.get("identity") or {}).get("docker-reference")
        assert ref is None or isinstance(ref, str)
        (obj.get("optional") or {}).get("org")
        go_json(obj)
    # and the verifier itself, on a layer whose signature verifies: a result, not an exception
    layer = StoredLayer(Descriptor(mt.COSIGN_SIMPLESIGNING, "sha256:" + hashlib.sha256(raw).hexdigest(), len(raw),
                                   {ANN_SIGNATURE: base64.b64encode(SIGNER.sign(raw)).decode()}))
    check = check_layer(layer, raw, DIGEST, [SIGNER.public_key], {"org": "akko"}, "r.example/a/b")
    assert isinstance(check.ok, bool) and isinstance(check.reason, str)


@SETTINGS
@given(replaced(PAYLOAD))
def test_payload_with_one_part_replaced(obj: Any) -> None:
    _check_payload(json.dumps(obj).encode())


@SETTINGS
@given(json_values)
def test_payload_any_json(obj: Any) -> None:
    _check_payload(json.dumps(obj).encode())


@SETTINGS
@given(mutated(go_json(PAYLOAD), b'{}[]":,0123456789.eE-tfnul\\'))
def test_payload_mutated_bytes(raw: bytes) -> None:
    _check_payload(raw)


# ---- DSSE envelopes and in-toto statements ---------------------------------------------------------------------

STATEMENT = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://cyclonedx.org/bom",
             "subject": [{"name": "r.example/a/b", "digest": {"sha256": "ab" * 32}}],
             "predicate": {"bomFormat": "CycloneDX", "metadata": {"timestamp": "2026-04-25T10:00:00Z"}}}


def _check_envelope(raw: bytes) -> None:
    try:
        env = open_envelope(raw)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(env.payload_type, str) and isinstance(env.payload, bytes)
    assert all(isinstance(s, bytes) for s in env.signatures)
    env.verify([SIGNER.public_key])
    try:
        stmt = env.statement()
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    # what verify/attestations.py, release/run.py and store/attest.py do with a statement
    assert isinstance(stmt["predicateType"], str) and isinstance(stmt["_type"], str)
    for s in stmt["subject"]:
        assert s.get("name") is None or isinstance(s["name"], str)
        value = (s.get("digest") or {}).get("sha256")
        assert value is None or isinstance(value, str)
    stmt.get("predicate")


@SETTINGS
@given(replaced(STATEMENT))
def test_statement_with_one_part_replaced(stmt: Any) -> None:
    _check_envelope(envelope(SIGNER, json.dumps(stmt).encode()))


ENVELOPE = json.loads(envelope(SIGNER, go_json(STATEMENT)))
b64_texts = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())


@SETTINGS
@given(replaced(ENVELOPE, json_values | b64_texts))
def test_envelope_with_one_part_replaced(env: Any) -> None:
    _check_envelope(json.dumps(env).encode())


@SETTINGS
@given(st.binary(max_size=200) | mutated(json.dumps(ENVELOPE).encode(), b'{}[]":,=+/'))
def test_envelope_bytes(raw: bytes) -> None:
    _check_envelope(raw)


# ---- cosign key files ------------------------------------------------------------------------------------------


def _fast_scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.sha256(b"%d/%d/%d/" % (n, r, p) + salt + b"/" + password).digest()


@contextlib.contextmanager
def fast_kdf() -> Iterator[None]:
    """scrypt at N=32768 costs ~0.1 s; these tests are about parsing, so the KDF is swapped for a hash."""
    with mock.patch.object(cosign, "_scrypt", _fast_scrypt):
        yield


def _check_private(pem: bytes, password: bytes = b"hello") -> None:
    try:
        key = load_private_key(pem, password)
    except KeyError_ as exc:
        assert "\n" not in str(exc)
    else:
        cosign.public_key_pem(key)


def _check_public(pem: bytes) -> None:
    try:
        keys = load_public_keys(pem)
    except KeyError_ as exc:
        assert "\n" not in str(exc)
    else:
        assert keys and all(cosign.key_id(k) for k in keys)


REAL_KEY_FILES = [(KEYS / name).read_bytes() for name in sorted(p.name for p in KEYS.glob("*.key"))]
PUBLIC_PEM = cosign.public_key_pem(SIGNER.public_key)
# A real PKCS#8 key: mutated and put in a valid (fast-KDF) envelope, it reaches the DER parser.
PKCS8_DER = PRIVATE.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
PEM_ALPHABET = b"-BEGINENDPRIVATEPUBLICKEY SIGSTORECOSIGN\n=+/AQgw"


@SETTINGS
@given(st.binary(max_size=300) | st.sampled_from(REAL_KEY_FILES).flatmap(lambda b: mutated(b, PEM_ALPHABET)))
def test_private_key_bytes(pem: bytes) -> None:
    with fast_kdf():
        _check_private(pem)


@SETTINGS
@given(st.binary(max_size=300) | mutated(PUBLIC_PEM + PUBLIC_PEM, PEM_ALPHABET))
def test_public_key_bytes(pem: bytes) -> None:
    _check_public(pem)


ENC_ENVELOPE = json.loads(encrypt_envelope(b"x", b"hello", salt=b"s" * 32, nonce=b"n" * 24))


ENVELOPE_VALUES = st.sampled_from([32768, 65536, 8, 1, 2**64, -1, 32768.0, float("inf"), "32768", True])


@SETTINGS
@given(replaced(ENC_ENVELOPE, json_values | b64_texts | ENVELOPE_VALUES))
def test_encrypted_envelope_with_one_part_replaced(env: Any) -> None:
    with fast_kdf():
        _check_private(pem_encode(cosign.PEM_SIGSTORE, json.dumps(env).encode()))


@SETTINGS
@given(st.binary(max_size=200) | mutated(PKCS8_DER))
def test_decrypted_key_bytes(der: bytes) -> None:
    """Any plaintext inside a valid envelope: the PKCS#8/EC checks answer, not the DER parser's exceptions."""
    with fast_kdf():
        _check_private(pem_encode(cosign.PEM_SIGSTORE, encrypt_envelope(der, b"hello")))


@SETTINGS
@given(st.sampled_from(REAL_KEY_FILES).flatmap(lambda b: mutated(b, PEM_ALPHABET)))
def test_real_key_files_mutated_as_public_keys(pem: bytes) -> None:
    _check_public(pem)


PLAIN_PEMS = [PRIVATE.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
              for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL)]


@SETTINGS
@given(st.binary(max_size=200) | st.sampled_from(PLAIN_PEMS).flatmap(lambda b: mutated(b, PEM_ALPHABET)))
def test_plain_keys_to_import(pem: bytes) -> None:
    try:
        import_plain_private_key(pem)
    except KeyError_ as exc:
        assert "\n" not in str(exc)


# ---- release.yaml and kubeconfig -----------------------------------------------------------------------------------

RELEASE = {"release": "2026.04",
           "images": ["registry.example.com/akko/app:1.0",
                      {"ref": "registry.example.com/akko/db@" + DIGEST, "platform": "linux/amd64"}]}
YAML_ALPHABET = b"&*!|>-:?[]{},#'\"\n %@`<=\t"
WORKDIR = Path(tempfile.mkdtemp(prefix="vouch-properties-"))


def _check_release(raw: bytes) -> None:
    path = WORKDIR / "release.yaml"
    path.write_bytes(raw)
    try:
        rel = load_manifest(str(path))
    except VouchError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(rel, Release) and (rel.name is None or isinstance(rel.name, str)) and rel.images
    assert all(isinstance(i.ref, Reference) and (i.platform is None or isinstance(i.platform, str))
               for i in rel.images)


@SETTINGS
@given(replaced(RELEASE))
def test_release_manifest_with_one_part_replaced(doc: Any) -> None:
    _check_release(yaml.safe_dump(doc).encode())


@SETTINGS
@given(st.sampled_from([yaml.safe_dump(RELEASE), json.dumps(RELEASE), yaml.safe_dump(RELEASE, default_flow_style=True)])
       .flatmap(lambda text: mutated(text.encode(), YAML_ALPHABET)))
def test_release_manifest_mutated(raw: bytes) -> None:
    _check_release(raw)


@SETTINGS
@given(st.binary(max_size=200) | st.text(alphabet=string.printable + "é\u2028\ufeff", max_size=200).map(str.encode))
def test_yaml_arbitrary(raw: bytes) -> None:
    try:
        load_yaml(raw, "the document")
    except InputError as exc:
        assert "\n" not in str(exc)


KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
              "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                                     "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t", "username": "a", "password": "b"}}],
              "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}


@SETTINGS
@given(replaced(KUBECONFIG, json_values | b64_texts))
def test_kubeconfig_with_one_part_replaced(doc: Any) -> None:
    path = WORKDIR / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    try:
        kube = KubeClient.from_kubeconfig(str(path))
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(kube.server, str) and all(isinstance(v, str) and v.isprintable() for v in kube.headers.values())
