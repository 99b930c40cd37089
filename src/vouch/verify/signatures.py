"""Verification of cosign signatures, as data: each layer checked, reasons kept for humans."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from vouch.errors import VerificationError
from vouch.keys.cosign import key_id
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.payload import SIGNATURE_TYPE, go_json, parse_payload
from vouch.signing.signer import verify_with_any
from vouch.store.layout import (
    ANN_SIGNATURE,
    SIG_SUFFIX,
    StoredLayer,
    TagReading,
    read_payloads,
    read_tag,
    tag_for,
    target_repository,
)
from vouch.trust import PublicKey


@dataclass
class SignatureCheck:
    layer_digest: str
    ok: bool
    reason: str = ""
    key_id: str | None = None
    payload: dict[str, Any] | None = None


@dataclass
class VerifyResult:
    image: str
    digest: str
    checks: list[SignatureCheck] = field(default_factory=list)
    problem: str = ""  # a reason that concerns the whole tag (missing, wrong media types)
    skipped: str = ""  # layers not read (over the bounds of limits.py), said to the user

    @property
    def verified(self) -> list[SignatureCheck]:
        return [c for c in self.checks if c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.verified) and not self.problem

    def reason(self) -> str:
        if self.problem:
            return self.problem
        tail = f" ({self.skipped})" if self.skipped else ""
        if not self.checks:
            return "no signatures found" + tail
        return "no valid signature: " + "; ".join(sorted({c.reason for c in self.checks})) + tail


def check_layer(layer: StoredLayer, payload: bytes, digest: str, keys: list[PublicKey],
                annotations: dict[str, str] | None, docker_reference: str | None) -> SignatureCheck:
    """cosign's checks on one signature layer (payload already fetched and digest-checked)."""
    d = layer.descriptor
    if d.media_type != mt.COSIGN_SIMPLESIGNING:
        return SignatureCheck(d.digest, False, f"layer media type {d.media_type!r} is not a cosign signature")
    if ANN_SIGNATURE not in layer.annotations:
        return SignatureCheck(d.digest, False, f"layer has no {ANN_SIGNATURE} annotation")
    try:
        sig = base64.b64decode(layer.annotations[ANN_SIGNATURE], validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(d.digest, False, "signature annotation is not base64")
    key = verify_with_any(keys, sig, payload)
    if key is None:
        return SignatureCheck(d.digest, False, "signature does not verify with the given key(s)")
    try:
        obj = parse_payload(payload)
    except VerificationError as exc:
        return SignatureCheck(d.digest, False, str(exc))
    critical = obj["critical"]
    if not isinstance(critical, dict):
        return SignatureCheck(d.digest, False, "payload's critical section is not an object")
    if critical.get("type") != SIGNATURE_TYPE:
        return SignatureCheck(d.digest, False, f"payload type {critical.get('type')!r} is not {SIGNATURE_TYPE!r}")
    signed_digest = critical["image"]["docker-manifest-digest"]
    if signed_digest != digest:
        return SignatureCheck(d.digest, False, f"payload is for {signed_digest}, not this image ({digest})")
    if docker_reference is not None:
        got = (critical.get("identity") or {}).get("docker-reference")
        if got != docker_reference:
            return SignatureCheck(d.digest, False, f"docker-reference {got!r} is not {docker_reference!r}")
    if annotations:
        optional = obj.get("optional") or {}
        for k, v in annotations.items():
            if optional.get(k) != v:
                return SignatureCheck(d.digest, False, f"annotation {k}={v!r} missing (got {optional.get(k)!r})")
    return SignatureCheck(d.digest, True, "", key_id(key), obj)


def verify_image(client: RegistryClient, image: Reference, keys: list[PublicKey],
                 annotations: dict[str, str] | None = None, check_reference: bool = False) -> VerifyResult:
    desc = client.resolve(image)
    digest = desc.digest
    result = VerifyResult(f"{image.name}@{digest}", digest)
    repo = target_repository(image)
    tag = tag_for(digest, SIG_SUFFIX)
    state = read_tag(client, repo, tag)
    if state.manifest is None:
        result.problem = f"no signatures found (no {tag} in {repo.name})"
        return result
    if state.manifest.media_type != mt.OCI_MANIFEST:
        result.problem = (f"{tag} uses Docker media type {state.manifest.media_type}; cosign signature "
                          "manifests must be OCI (containers/image refuses Docker media types)")
        return result
    ref_check = image.docker_reference if check_reference else None
    reading = TagReading()
    for item in read_payloads(client, repo, state.layers, SIG_SUFFIX, reading):
        if item.payload is None:
            result.checks.append(SignatureCheck(item.layer.descriptor.digest, False, item.error))
            continue
        result.checks.append(check_layer(item.layer, item.payload, digest, keys, annotations, ref_check))
    result.skipped = reading.note()
    return result


def cosign_output(results: list[VerifyResult]) -> str:
    """stdout of `cosign verify`: a JSON array of the verified payloads, re-marshalled."""
    payloads = [c.payload for r in results for c in r.verified]
    return go_json(payloads).decode()

