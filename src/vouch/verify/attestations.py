"""Verification of cosign attestations: DSSE signature, payload type, subject digest, freshness."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from vouch.errors import InputError, VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, PREDICATE_TYPES, open_envelope
from vouch.store.attest import ANN_PREDICATE_TYPE, read_attestations
from vouch.store.layout import ATT_SUFFIX, fetch_payload

_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> dt.timedelta:
    m = _AGE_RE.match(text.strip())
    if not m:
        raise InputError(f"invalid age {text!r}: write e.g. 90d, 2160h, 12w")
    return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def _fmt(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if days >= 1 else f"{delta.total_seconds() / 3600:.1f} hours"


def bom_timestamp(predicate: Any) -> dt.datetime | None:
    try:
        raw = predicate["metadata"]["timestamp"]
        ts = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class AttestationCheck:
    layer_digest: str
    ok: bool
    reason: str = ""
    predicate_type: str | None = None
    key_id: str | None = None
    envelope: bytes | None = None
    statement: dict[str, Any] | None = None
    age: dt.timedelta | None = None


@dataclass
class AttestationResult:
    image: str
    digest: str
    predicate_type: str | None
    checks: list[AttestationCheck] = field(default_factory=list)

    @property
    def verified(self) -> list[AttestationCheck]:
        return [c for c in self.checks if c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.verified)

    def reason(self) -> str:
        relevant = [c for c in self.checks if c.predicate_type == self.predicate_type or self.predicate_type is None
                    or c.predicate_type is None]
        if not relevant:
            what = f"of type {self.predicate_type}" if self.predicate_type else ""
            return f"no attestation {what} found".replace("  ", " ")
        return "no valid attestation: " + "; ".join(sorted({c.reason for c in relevant if not c.ok}))

    def problems(self) -> list[str]:
        """Reasons of the layers that did not verify (reported even when another one did)."""
        return [f"{c.layer_digest[:19]}: {c.reason}" for c in self.checks if not c.ok and c.reason]


def verify_attestations(client: RegistryClient, image: Reference, keys: list[ec.EllipticCurvePublicKey],
                        predicate_type: str | None, max_age: dt.timedelta | None = None,
                        now: dt.datetime | None = None) -> AttestationResult:
    now = now or dt.datetime.now(dt.UTC)
    desc = client.resolve(image)
    digest = desc.digest
    result = AttestationResult(f"{image.name}@{digest}", digest, predicate_type)
    repo, layers = read_attestations(client, image, digest)
    algo, _, hexd = digest.partition(":")
    for layer in layers:
        d = layer.descriptor
        check = AttestationCheck(d.digest, False, predicate_type=layer.annotations.get(ANN_PREDICATE_TYPE))
        result.checks.append(check)
        if d.media_type != mt.DSSE_ENVELOPE:
            check.reason = f"layer media type {d.media_type!r} is not a DSSE envelope"
            continue
        try:
            raw = fetch_payload(client, repo, layer, ATT_SUFFIX)
            env = open_envelope(raw)
        except VouchError as exc:
            check.reason = str(exc)
            continue
        check.envelope = raw
        if env.payload_type != INTOTO_PAYLOAD_TYPE:
            check.reason = f"payloadType {env.payload_type!r} is not {INTOTO_PAYLOAD_TYPE!r}"
            continue
        check.key_id = env.verify(keys)
        try:
            stmt = env.statement()
        except VouchError as exc:
            check.reason = str(exc)
            continue
        stmt_type = stmt.get("predicateType")
        annotated = check.predicate_type
        check.predicate_type = str(stmt_type) if stmt_type is not None else None
        if predicate_type is not None and check.predicate_type != predicate_type:
            check.reason = f"statement is of type {check.predicate_type}, not {predicate_type}"
            if annotated == predicate_type:
                check.reason = (f"the layer's predicateType annotation says {annotated} but the signed statement "
                                f"says {check.predicate_type}")
                check.predicate_type = predicate_type  # count it as a refused attestation of the asked type
            continue
        if check.key_id is None:
            check.reason = "DSSE signature does not verify with the given key(s) (unknown signer or edited statement)"
            continue
        if annotated is not None and annotated != check.predicate_type:
            check.reason = (f"the layer's predicateType annotation says {annotated} but the signed statement says "
                            f"{check.predicate_type}")
            continue
        subjects = stmt.get("subject") or []
        if not any(isinstance(s, dict) and (s.get("digest") or {}).get(algo) == hexd for s in subjects):
            names = [f"{s.get('name')}@{algo}:{(s.get('digest') or {}).get(algo)}" for s in subjects
                     if isinstance(s, dict)]
            check.reason = f"statement subject {', '.join(names) or '(none)'} is not this image ({digest})"
            continue
        check.statement = stmt
        if check.predicate_type == PREDICATE_TYPES["cyclonedx"]:
            ts = bom_timestamp(stmt.get("predicate"))
            if ts is not None:
                check.age = now - ts
            if max_age is not None:
                if ts is None:
                    check.reason = "the SBOM has no metadata.timestamp, so its age cannot be checked"
                    continue
                if check.age is not None and check.age > max_age:
                    check.reason = (f"SBOM expired: generated {ts.isoformat()}, {_fmt(check.age)} old, over the "
                                    f"{_fmt(max_age)} limit by {_fmt(check.age - max_age)}")
                    continue
        check.ok = True
    return result
