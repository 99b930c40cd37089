"""in-toto statements in DSSE envelopes, as `cosign attest` writes them."""

from __future__ import annotations

import base64
from typing import Any

from vouch.errors import InputError
from vouch.keys.cosign import key_id
from vouch.record import record
from vouch.signing.payload import go_json, loads_json
from vouch.signing.signer import KeySigner, verify_with_any
from vouch.trust import PublicKey

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"  # what sigstore-python signs (it refuses v0.1)
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


def statement(predicate_type: str, subject_name: str, digest: str, predicate: Any,
              statement_type: str = STATEMENT_TYPE) -> bytes:
    """cosign attest's statement (in-toto v0.1); keyless signing passes in-toto v1 (sigstore-python's)."""
    algo, _, hexd = digest.partition(":")
    obj = {
        "_type": statement_type,
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


@record
class OpenedEnvelope:
    payload_type: str
    payload: bytes
    signatures: list[bytes]
    raw: bytes

    def statement(self) -> dict[str, Any]:
        """The in-toto statement, its shape checked: _type and predicateType strings, a non-empty subject
        list of {name: str, digest: {algorithm: hex}} objects; the predicate may be any JSON."""
        try:
            obj = loads_json(self.payload)
        except ValueError as exc:
            raise InputError("the attestation payload is not JSON") from exc
        problem = _statement_problem(obj)
        if problem:
            raise InputError(f"the attestation payload is not an in-toto statement: {problem}")
        assert isinstance(obj, dict)
        return obj

    def verify(self, keys: list[PublicKey]) -> str | None:
        """The key id of the first key that verifies any signature, or None."""
        data = pae(self.payload_type, self.payload)
        for sig in self.signatures:
            key = verify_with_any(keys, sig, data)
            if key is not None:
                return key_id(key)
        return None


def _statement_problem(obj: Any) -> str | None:
    """What keeps obj from being an in-toto statement, or None."""
    if not isinstance(obj, dict):
        return "it is not a JSON object"
    for field in ("_type", "predicateType"):
        if not isinstance(obj.get(field), str):
            return f"{field} is missing or not a string"
    subjects = obj.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "subject is missing or not a non-empty list"
    for i, s in enumerate(subjects):
        if not isinstance(s, dict):
            return f"subject[{i}] is not an object"
        if "name" in s and not isinstance(s["name"], str):
            return f"subject[{i}].name is not a string"
        digest = s.get("digest")
        if not isinstance(digest, dict):
            return f"subject[{i}].digest is missing or not an object"
        if not all(isinstance(v, str) for v in digest.values()):
            return f"subject[{i}].digest has a value that is not a string"
    return None


def _envelope_problem(obj: Any) -> str | None:
    """What keeps obj from being a DSSE envelope, or None."""
    if not isinstance(obj, dict):
        return "it is not a JSON object"
    for field in ("payloadType", "payload"):
        if not isinstance(obj.get(field), str):
            return f"{field} is missing or not a string"
    sigs = obj.get("signatures")
    if sigs is not None and not isinstance(sigs, list):
        return "signatures is not a list"
    for i, sig in enumerate(sigs or []):
        if not isinstance(sig, dict) or not isinstance(sig.get("sig"), str):
            return f"signatures[{i}] is not an object with a sig string"
        if sig.get("keyid") is not None and not isinstance(sig["keyid"], str):
            return f"signatures[{i}].keyid is not a string"
    return None


def _b64(text: str) -> bytes:
    """Standard base64, strictly (ValueError otherwise, also for non-ASCII text)."""
    return base64.b64decode(text, validate=True)


def open_envelope(raw: bytes) -> OpenedEnvelope:
    """A DSSE envelope's fields, type-checked and base64-decoded; InputError for anything else."""
    try:
        obj = loads_json(raw)
    except ValueError as exc:
        raise InputError("not a DSSE envelope: it is not JSON") from exc
    problem = _envelope_problem(obj)
    if problem:
        raise InputError(f"not a DSSE envelope: {problem}")
    try:
        payload = _b64(obj["payload"])
    except ValueError as exc:
        raise InputError("not a DSSE envelope: payload is not base64") from exc
    sigs = []
    for i, s in enumerate(obj.get("signatures") or []):
        try:
            sigs.append(_b64(s["sig"]))
        except ValueError as exc:
            raise InputError(f"not a DSSE envelope: signatures[{i}].sig is not base64") from exc
    return OpenedEnvelope(obj["payloadType"], payload, sigs, raw)
