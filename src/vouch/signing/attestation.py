"""in-toto statements in DSSE envelopes, as `cosign attest` writes them."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from vouch.errors import InputError
from vouch.keys.cosign import key_id
from vouch.signing.payload import go_json
from vouch.signing.signer import KeySigner, verify_with_any

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
PREDICATE_TYPES = {
    "cyclonedx": "https://cyclonedx.org/bom",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "openvex": "https://openvex.dev/ns",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
}


def predicate_type_uri(type_: str) -> str:
    """`--type` as cosign reads it: a known short name, or any URI verbatim."""
    if type_ in PREDICATE_TYPES:
        return PREDICATE_TYPES[type_]
    if "://" in type_ or type_.startswith("urn:"):
        return type_
    raise InputError(f"unknown predicate type {type_!r}: use one of {', '.join(sorted(PREDICATE_TYPES))} or a URI")


def _sorted(obj: Any) -> Any:
    """Go marshals maps with sorted keys: the predicate comes out the way cosign writes it."""
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(x) for x in obj]
    return obj


def statement(predicate_type: str, subject_name: str, digest: str, predicate: Any) -> bytes:
    algo, _, hexd = digest.partition(":")
    obj = {
        "_type": STATEMENT_TYPE,
        "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": {algo: hexd}}],
        "predicate": _sorted(predicate),
    }
    return go_json(obj)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def envelope(signer: KeySigner, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
    sig = signer.sign(pae(payload_type, payload))
    return go_json({"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
                    "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]})


@dataclass
class OpenedEnvelope:
    payload_type: str
    payload: bytes
    signatures: list[bytes]
    raw: bytes

    def statement(self) -> dict[str, Any]:
        try:
            obj = json.loads(self.payload)
        except ValueError as exc:
            raise InputError("the attestation payload is not JSON") from exc
        if not isinstance(obj, dict):
            raise InputError("the attestation payload is not an in-toto statement")
        return obj

    def verify(self, keys: list[ec.EllipticCurvePublicKey]) -> str | None:
        """The key id of the first key that verifies any signature, or None."""
        data = pae(self.payload_type, self.payload)
        for sig in self.signatures:
            key = verify_with_any(keys, sig, data)
            if key is not None:
                return key_id(key)
        return None


def open_envelope(raw: bytes) -> OpenedEnvelope:
    try:
        obj = json.loads(raw)
        payload = base64.b64decode(obj["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in obj.get("signatures") or []]
        return OpenedEnvelope(str(obj["payloadType"]), payload, sigs, raw)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InputError("not a DSSE envelope") from exc
