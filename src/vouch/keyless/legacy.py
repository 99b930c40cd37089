"""A keyless signature in cosign's legacy layout, read as the sigstore bundle it amounts to, so that one
engine (`vouch.bundle.verify.verify_bundle`) checks both layouts.

A legacy layer carries the leaf certificate (PEM), the chain (ignored for trust: intermediates and roots
come from the trusted root), the Rekor v1 bundle annotation (body, integrated time, log index, log id, SET:
a v0.1 bundle's inclusion promise, with no inclusion proof) and optionally an RFC 3161 timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from vouch.bundle.model import (
    Bundle,
    DsseEnvelope,
    DsseSignature,
    HashOutput,
    MessageSignature,
    TlogEntry,
    VerificationMaterial,
    load_json,
)
from vouch.errors import KeyError_, VerificationError
from vouch.keyless.annotations import ANN_BUNDLE, ANN_CERTIFICATE, ANN_RFC3161
from vouch.keyless.annotations import is_keyless as is_keyless  # (re-exported)

__all__ = ["ANN_BUNDLE", "ANN_CERTIFICATE", "ANN_RFC3161", "attestation_bundle", "is_keyless", "signature_bundle"]
from vouch.keys.cosign import pem_blocks

LEGACY_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.1"


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"the layer's {what} is missing or not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"the layer's {what} is not base64") from exc


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"the layer's {what} is not a non-negative integer")
    return value


def _entry(annotation: str) -> TlogEntry:
    try:
        obj = load_json(annotation.encode())
    except ValueError as exc:
        raise VerificationError(f"the layer's {ANN_BUNDLE} annotation is not JSON") from exc
    payload = obj.get("Payload") if isinstance(obj, dict) else None
    if not isinstance(payload, dict):
        raise VerificationError(f"the layer's {ANN_BUNDLE} annotation has no Payload object")
    body = _b64(payload.get("body"), "Rekor bundle body")
    log_id_hex = payload.get("logID")
    try:
        log_id = bytes.fromhex(log_id_hex) if isinstance(log_id_hex, str) else b""
    except ValueError:
        log_id = b""
    if len(log_id) != 32:
        raise VerificationError("the layer's Rekor bundle logID is not 64 hex digits")
    try:
        parsed = load_json(body)
    except ValueError as exc:
        raise VerificationError("the layer's Rekor entry body is not JSON") from exc
    kind = parsed.get("kind") if isinstance(parsed, dict) else None
    version = parsed.get("apiVersion") if isinstance(parsed, dict) else None
    if not isinstance(kind, str) or not isinstance(version, str):
        raise VerificationError("the layer's Rekor entry body names no kind and apiVersion")
    return TlogEntry(_int(payload.get("logIndex"), "Rekor bundle logIndex"), log_id, kind[:40], version[:20],
                     _int(payload.get("integratedTime"), "Rekor bundle integratedTime"), body,
                     _b64(obj.get("SignedEntryTimestamp"), "Rekor bundle SignedEntryTimestamp"), None)


def _material(annotations: dict[str, str]) -> VerificationMaterial:
    try:
        blocks = pem_blocks(annotations[ANN_CERTIFICATE].encode())
    except KeyError_ as exc:
        raise VerificationError(f"the layer's {ANN_CERTIFICATE} annotation is not PEM") from exc
    certs = [der for label, der in blocks if label == "CERTIFICATE"]
    if len(certs) != 1:
        raise VerificationError(f"the layer's {ANN_CERTIFICATE} annotation must hold one certificate")
    entries = (_entry(annotations[ANN_BUNDLE]),) if ANN_BUNDLE in annotations else ()
    stamps: tuple[bytes, ...] = ()
    if ANN_RFC3161 in annotations:
        try:
            ts = load_json(annotations[ANN_RFC3161].encode())
        except ValueError as exc:
            raise VerificationError(f"the layer's {ANN_RFC3161} annotation is not JSON") from exc
        stamps = (_b64(ts.get("SignedRFC3161Timestamp") if isinstance(ts, dict) else None,
                       "SignedRFC3161Timestamp"),)
    return VerificationMaterial(None, (certs[0],), False, entries, stamps)


def signature_bundle(annotations: dict[str, str], signature: bytes, payload: bytes) -> Bundle:
    """A `.sig` layer: a message signature over the simple-signing payload."""
    digest = HashOutput("sha256", hashlib.sha256(payload).digest())
    return Bundle(LEGACY_MEDIA_TYPE, "0.1", _material(annotations), MessageSignature(digest, signature), None)


def attestation_bundle(annotations: dict[str, str], envelope: DsseEnvelope) -> Bundle:
    """An `.att` layer: its DSSE envelope."""
    return Bundle(LEGACY_MEDIA_TYPE, "0.1", _material(annotations), None,
                  DsseEnvelope(envelope.payload, envelope.payload_type,
                               tuple(DsseSignature(s.sig, s.keyid) for s in envelope.signatures)))
