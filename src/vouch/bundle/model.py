"""A sigstore bundle (protobuf-specs `dev.sigstore.bundle.v1.Bundle`, in its JSON form) as typed data.

`parse_bundle` reads v0.1, v0.2 and v0.3 bundles, both spellings of the v0.3 media type, and refuses
anything malformed with one line that names the field. It checks the shape rules that depend on the
version (as sigstore-go and sigstore-python do): v0.1 log entries carry an inclusion promise, v0.2+ ones an
inclusion proof with a checkpoint, v0.3 has a single certificate and never a chain. Whether anything
*verifies* is `vouch.bundle.verify`'s business.

Protobuf JSON habits honoured: int64 fields are decimal strings (numbers accepted too) and absent means 0;
bytes are base64 (standard or URL-safe, padded or not); `null` is absent; unknown fields are ignored.
Duplicate keys are refused: two parsers must never read two different bundles out of one file.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from vouch import limits
from vouch.errors import VerificationError
from vouch.oci.mediatypes import BUNDLE_V01 as BUNDLE_V01
from vouch.oci.mediatypes import BUNDLE_V02 as BUNDLE_V02
from vouch.oci.mediatypes import BUNDLE_V03 as BUNDLE_V03
from vouch.oci.mediatypes import BUNDLE_V03_ALT as BUNDLE_V03_ALT
from vouch.record import record
from vouch.signing.attestation import open_envelope, pae
from vouch.signing.payload import go_json
from vouch.trust import PublicKey, key_hint

MEDIA_TYPES = {BUNDLE_V01: "0.1", BUNDLE_V02: "0.2", BUNDLE_V03_ALT: "0.3", BUNDLE_V03: "0.3"}

# protobuf-specs HashAlgorithm (name or enum number) -> hashlib name, with the digest size.
_HASHES = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512", 1: "sha256", 2: "sha384", 3: "sha512"}
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}

MAX_BUNDLE_BYTES = limits.MAX_ATTESTATION_BYTES  # a bundle holds an attestation: the same bound as in a registry


@record(frozen=True)
class HashOutput:
    algorithm: str  # hashlib's name: sha256, sha384 or sha512
    digest: bytes

    def text(self) -> str:
        return f"{self.algorithm}:{self.digest.hex()}"


@record(frozen=True)
class InclusionProof:
    log_index: int  # the index in the log's tree (Rekor v1: not the entry's global logIndex)
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str  # the signed note committing to root_hash and tree_size


@record(frozen=True)
class TlogEntry:
    log_index: int
    log_id: bytes  # Rekor v1: sha256 of the log's public key (DER)
    kind: str
    version: str
    integrated_time: int  # seconds since the epoch; 0 when absent (Rekor v2 has none)
    canonicalized_body: bytes
    inclusion_promise: bytes | None  # the signed entry timestamp (SET)
    inclusion_proof: InclusionProof | None


@record(frozen=True)
class VerificationMaterial:
    public_key_hint: str | None  # None: no publicKey; "": a publicKey without a hint
    certificates: tuple[bytes, ...]  # DER, leaf first: `certificate` (one) or `x509CertificateChain`
    certificate_chain: bool  # the certificates came as an x509CertificateChain (v0.1/v0.2)
    tlog_entries: tuple[TlogEntry, ...]
    signed_timestamps: tuple[bytes, ...]  # RFC 3161 timestamp responses (DER), kept, not verified yet


@record(frozen=True)
class MessageSignature:
    digest: HashOutput | None  # an identification hint, never what the signature is checked over
    signature: bytes


@record(frozen=True)
class DsseSignature:
    sig: bytes
    keyid: str


@record(frozen=True)
class DsseEnvelope:
    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_json(self) -> bytes:
        """The envelope as cosign and vouch write one on its own (keyid kept, "" when the bundle had none)."""
        return go_json({"payloadType": self.payload_type, "payload": base64.b64encode(self.payload).decode(),
                        "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()}
                                       for s in self.signatures]})


@record(frozen=True)
class Bundle:
    media_type: str
    version: str  # "0.1", "0.2" or "0.3"
    material: VerificationMaterial
    message_signature: MessageSignature | None
    dsse_envelope: DsseEnvelope | None

    @property
    def key_signed(self) -> bool:
        """Signed with a key (verificationMaterial.publicKey), not a certificate."""
        return self.material.public_key_hint is not None

    @property
    def signature(self) -> bytes:
        """The signature the log entries must record: the message signature, or the envelope's (first) one."""
        if self.message_signature is not None:
            return self.message_signature.signature
        assert self.dsse_envelope is not None
        return self.dsse_envelope.signatures[0].sig if self.dsse_envelope.signatures else b""


# ---- JSON reading ------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k[:60]!r}")
        out[k] = v
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes) -> Any:
    """UTF-8 JSON without duplicate keys or NaN; ValueError otherwise (too deep nesting too)."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


_B64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def b64decode(text: str) -> bytes:
    """protobuf JSON's bytes: standard or URL-safe base64, padding optional, line breaks ignored (as Go's
    decoder does: `base64` wraps its output at 76 columns); ValueError otherwise."""
    text = text.replace("\r", "").replace("\n", "")
    if not _B64.fullmatch(text):
        raise ValueError("not base64")
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        raise ValueError("not base64")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


class _Reader:
    """Typed access to one JSON object, with the field's path in every message."""

    def __init__(self, obj: dict[str, Any], path: str) -> None:
        self.obj, self.path = obj, path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        return self.obj.get(key)  # protobuf JSON: null is absent

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def obj_(self, key: str, required: bool = True) -> _Reader | None:
        v = self.get(key)
        if v is None and not required:
            return None
        if not isinstance(v, dict):
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is missing or not an object")
        return _Reader(v, self._where(key))

    def need(self, key: str) -> _Reader:
        r = self.obj_(key)
        assert r is not None
        return r

    def str_(self, key: str, required: bool = True) -> str:
        v = self.get(key)
        if v is None and not required:
            return ""
        if not isinstance(v, str):
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is missing or not a string")
        return v

    def int_(self, key: str) -> int:
        """An int64 (absent: 0), refused when negative."""
        v = self.get(key)
        if v is None:
            return 0
        if isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,20}", v):
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is not a non-negative integer")
        return v

    def bytes_(self, key: str, required: bool = True) -> bytes:
        v = self.get(key)
        if v is None and not required:
            return b""
        if not isinstance(v, str):
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is missing or not a string")
        try:
            out = b64decode(v)
        except ValueError as exc:
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is not base64") from exc
        if required and not out:
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is empty")
        return out

    def list_(self, key: str, limit: int | None = None, what: str = "") -> list[Any]:
        v = self.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise VerificationError(f"malformed sigstore bundle: {self._where(key)} is not a list")
        if limit is not None and len(v) > limit:
            raise VerificationError(f"malformed sigstore bundle: {len(v)} {what}, over the limit of {limit}")
        return v

    def objects(self, key: str, limit: int | None = None, what: str = "") -> list[_Reader]:
        out = []
        for i, item in enumerate(self.list_(key, limit, what)):
            if not isinstance(item, dict):
                raise VerificationError(f"malformed sigstore bundle: {self._where(key)}[{i}] is not an object")
            out.append(_Reader(item, f"{self._where(key)}[{i}]"))
        return out


def _one_of(r: _Reader, keys: tuple[str, ...]) -> str:
    present = [k for k in keys if r.has(k)]
    if len(present) != 1:
        raise VerificationError(f"malformed sigstore bundle: {r.path or 'the bundle'} must hold exactly one of "
                                f"{', '.join(keys)} (it holds {len(present)})")
    return present[0]


# ---- parsing ------------------------------------------------------------------------------------------------


def parse_bundle(raw: bytes) -> Bundle:
    """The bundle in raw (its JSON bytes), shape-checked; VerificationError with one line otherwise."""
    if len(raw) > MAX_BUNDLE_BYTES:
        raise VerificationError(f"the sigstore bundle is {len(raw)} bytes, over the {MAX_BUNDLE_BYTES}-byte limit; "
                                "refusing it")
    try:
        obj = load_json(raw)
    except ValueError as exc:
        raise VerificationError("the sigstore bundle is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise VerificationError("the sigstore bundle is not a JSON object")
    top = _Reader(obj, "")
    media_type = top.str_("mediaType")
    version = MEDIA_TYPES.get(media_type)
    if version is None:
        if media_type.startswith("application/vnd.dev.sigstore.bundle"):
            raise VerificationError(f"unsupported sigstore bundle version ({media_type[:100]!r}); vouch reads "
                                    "v0.1, v0.2 and v0.3")
        raise VerificationError(f"not a sigstore bundle (mediaType {media_type[:80]!r})")
    material = _material(top.need("verificationMaterial"), version)
    content = _one_of(top, ("messageSignature", "dsseEnvelope"))
    if content == "messageSignature":
        return Bundle(media_type, version, material, _message_signature(top.need("messageSignature")), None)
    return Bundle(media_type, version, material, None, _envelope(top.need("dsseEnvelope")))


def _material(r: _Reader, version: str) -> VerificationMaterial:
    which = _one_of(r, ("publicKey", "x509CertificateChain", "certificate"))
    hint: str | None = None
    certs: tuple[bytes, ...] = ()
    if which == "publicKey":
        hint = r.need("publicKey").str_("hint", required=False)
    elif which == "certificate":
        certs = (r.need("certificate").bytes_("rawBytes"),)
    else:
        if version == "0.3":
            raise VerificationError("malformed sigstore bundle: a v0.3 bundle carries one certificate, never an "
                                    "x509CertificateChain")
        chain = r.need("x509CertificateChain").objects("certificates")
        if not chain:
            raise VerificationError("malformed sigstore bundle: the x509CertificateChain holds no certificate")
        certs = tuple(c.bytes_("rawBytes") for c in chain)
    entries = tuple(_tlog_entry(e, version)
                    for e in r.objects("tlogEntries", limits.BUNDLE_MAX_TLOG_ENTRIES, "transparency-log entries"))
    stamps: tuple[bytes, ...] = ()
    tvd = r.obj_("timestampVerificationData", required=False)
    if tvd is not None:
        stamps = tuple(t.bytes_("signedTimestamp") for t in
                       tvd.objects("rfc3161Timestamps", limits.BUNDLE_MAX_TIMESTAMPS, "signed timestamps"))
    return VerificationMaterial(hint, certs, which == "x509CertificateChain", entries, stamps)


def _tlog_entry(r: _Reader, version: str) -> TlogEntry:
    log_index, log_id = r.int_("logIndex"), r.need("logId").bytes_("keyId")
    kv = r.need("kindVersion")
    kind, kind_version = kv.str_("kind"), kv.str_("version")
    integrated_time, body = r.int_("integratedTime"), r.bytes_("canonicalizedBody")
    promise_r = r.obj_("inclusionPromise", required=False)
    promise = promise_r.bytes_("signedEntryTimestamp") if promise_r is not None else None
    proof: InclusionProof | None = None
    proof_r = r.obj_("inclusionProof", required=False)
    if proof_r is not None:
        checkpoint = proof_r.obj_("checkpoint", required=False)
        envelope = checkpoint.str_("envelope", required=False) if checkpoint is not None else ""
        if envelope:
            hashes = tuple(_hash_item(proof_r, i, h) for i, h in enumerate(
                proof_r.list_("hashes", limits.BUNDLE_MAX_PROOF_HASHES, "inclusion-proof hashes")))
            proof = InclusionProof(proof_r.int_("logIndex"), proof_r.bytes_("rootHash"), proof_r.int_("treeSize"),
                                   hashes, envelope)
        elif version != "0.1":  # v0.1: a proof without a checkpoint proves nothing and is passed over
            raise VerificationError(f"malformed sigstore bundle: {proof_r.path} has no checkpoint")
    if version == "0.1" and promise is None:
        raise VerificationError(f"malformed sigstore bundle: {r.path} has no inclusion promise (a v0.1 bundle's "
                                "log entries must carry one)")
    if version != "0.1" and proof is None:
        raise VerificationError(f"malformed sigstore bundle: {r.path} has no inclusion proof (a v0.2 or v0.3 "
                                "bundle's log entries must carry one)")
    return TlogEntry(log_index, log_id, kind, kind_version, integrated_time, body, promise, proof)


def _hash_item(r: _Reader, i: int, value: Any) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        out = b64decode(value)
    except ValueError as exc:
        raise VerificationError(f"malformed sigstore bundle: {r.path}.hashes[{i}] is not base64") from exc
    return out


def _message_signature(r: _Reader) -> MessageSignature:
    digest: HashOutput | None = None
    md = r.obj_("messageDigest", required=False)
    if md is not None and (md.has("algorithm") or md.has("digest")):  # cosign writes {} for Ed25519 keys
        name = md.get("algorithm")
        algorithm = _HASHES.get(name) if isinstance(name, str | int) and not isinstance(name, bool) else None
        if algorithm is None:
            raise VerificationError(f"unsupported message digest algorithm {str(name)[:40]!r} in the sigstore "
                                    "bundle (SHA2_256, SHA2_384 or SHA2_512)")
        value = md.bytes_("digest")
        if len(value) != DIGEST_SIZES[algorithm]:
            raise VerificationError(f"malformed sigstore bundle: messageSignature.messageDigest.digest is "
                                    f"{len(value)} bytes, not a {algorithm} digest")
        digest = HashOutput(algorithm, value)
    return MessageSignature(digest, r.bytes_("signature"))


def _envelope(r: _Reader) -> DsseEnvelope:
    payload = r.bytes_("payload", required=False)
    sigs = tuple(DsseSignature(s.bytes_("sig"), s.str_("keyid", required=False))
                 for s in r.objects("signatures"))
    return DsseEnvelope(payload, r.str_("payloadType"), sigs)


# ---- writing ------------------------------------------------------------------------------------------------


def dsse_bundle_v03(envelope_json: bytes, key: PublicKey) -> bytes:
    """The v0.3 bundle cosign 3 writes around a DSSE envelope signed with key: the key's hint, no log entry,
    signatures without a keyid, compact JSON in cosign's field order. The envelope's base64 text is kept."""
    opened = open_envelope(envelope_json)  # InputError for anything but a DSSE envelope
    env = json.loads(envelope_json)
    bundle = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key)}},
        "dsseEnvelope": {"payload": env["payload"], "payloadType": opened.payload_type,
                         "signatures": [{"sig": s["sig"]} for s in env.get("signatures") or []]},
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def bundle_envelope_json(raw: bytes) -> bytes:
    """The reverse of dsse_bundle_v03: the DSSE envelope inside a bundle, as the envelope cosign writes on its
    own; VerificationError when the bundle is malformed or holds a message signature."""
    bundle = parse_bundle(raw)
    if bundle.dsse_envelope is None:
        raise VerificationError("the sigstore bundle holds no DSSE envelope (a message signature is not an image "
                                "signature or attestation)")
    return bundle.dsse_envelope.to_json()
