"""Verification of cosign attestations: DSSE signature, payload type, subject digest, freshness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from vouch.errors import VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, open_envelope
from vouch.store.attest import ANN_PREDICATE_TYPE
from vouch.store.bundles import BundleRead, bundle_envelope
from vouch.store.layout import PayloadRead, TagReading
from vouch.verify.policy import Policy, attestation_policy, bom_age
from vouch.verify.signer import Trust, envelope_signer

LAYOUTS = ("legacy", "bundle")


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
    where: str = "legacy"  # the layout it was found in: legacy, referrers API, fallback tag …


@dataclass
class AttestationResult:
    image: str
    digest: str
    predicate_type: str | None
    checks: list[AttestationCheck] = field(default_factory=list)
    skipped: str = ""  # layers not read (over the bounds of limits.py), said to the user

    @property
    def verified(self) -> list[AttestationCheck]:
        return [c for c in self.checks if c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.verified)

    def reason(self) -> str:
        relevant = [c for c in self.checks if c.predicate_type == self.predicate_type or self.predicate_type is None
                    or c.predicate_type is None]
        tail = f" ({self.skipped})" if self.skipped else ""
        if not relevant:
            what = f"of type {self.predicate_type}" if self.predicate_type else ""
            return f"no attestation {what} found".replace("  ", " ") + tail
        return "no valid attestation: " + "; ".join(sorted({c.reason for c in relevant if not c.ok})) + tail

    def problems(self) -> list[str]:
        """Reasons of the layers that did not verify (reported even when another one did)."""
        return [f"{c.layer_digest[:19]}: {c.reason}" for c in self.checks if not c.ok and c.reason]


def check_envelope(raw: bytes, keys: Trust, policy: Policy, predicate_type: str | None,
                   annotated: str | None, now: dt.datetime, entry: str, annotations: dict[str, str] | None = None,
                   bundle: bytes | None = None) -> AttestationCheck:
    """One DSSE envelope (a legacy `.att` layer's payload with its annotations, or a bundle's dsseEnvelope):
    signed by a trusted key or identity, an in-toto statement, consistent with its storage's predicateType
    hint, then the policy."""
    check = AttestationCheck(entry, False, predicate_type=annotated)
    try:
        env = open_envelope(raw)
    except VouchError as exc:
        check.reason = str(exc)
        return check
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        check.reason = f"payloadType {env.payload_type!r} is not {INTOTO_PAYLOAD_TYPE!r}"
        return check
    check.key_id, _, refusal = envelope_signer(env, keys, annotations, bundle)
    if check.key_id is None:
        # Nothing of an unverified statement is read further (nor kept): it is not evidence.
        check.reason = refusal
        return check
    try:
        stmt = env.statement()
    except VouchError as exc:
        check.reason = str(exc)
        return check
    stmt_type = stmt.get("predicateType")
    check.predicate_type = str(stmt_type) if stmt_type is not None else None
    if annotated is not None and annotated != check.predicate_type:
        check.reason = (f"the {'layer' if entry.startswith('sha256:') else 'bundle'}'s predicateType annotation "
                        f"says {annotated} but the signed statement says {check.predicate_type}")
        if annotated == predicate_type:
            check.predicate_type = predicate_type  # count it as a refused attestation of the asked type
        return check
    check.reason = policy.check(stmt)
    check.age = bom_age(stmt, now)
    if check.reason:
        return check
    check.statement = stmt
    check.envelope = raw
    check.ok = True
    return check


def check_layer_attestation(item: PayloadRead, keys: Trust, policy: Policy, predicate_type: str | None,
                 now: dt.datetime) -> AttestationCheck:
    """One legacy attestation layer: a DSSE envelope layer whose payload could be read."""
    layer = item.layer
    d = layer.descriptor
    annotated = layer.annotations.get(ANN_PREDICATE_TYPE)
    if d.media_type != mt.DSSE_ENVELOPE:
        return AttestationCheck(d.digest, False, f"layer media type {d.media_type!r} is not a DSSE envelope",
                                predicate_type=annotated)
    if item.payload is None:
        return AttestationCheck(d.digest, False, item.error, predicate_type=annotated)
    check = check_envelope(item.payload, keys, policy, predicate_type, annotated, now, d.digest,
                           annotations=layer.annotations)
    check.where = "legacy"
    return check


def check_bundle_attestation(item: BundleRead, keys: Trust, policy: Policy, predicate_type: str | None,
                  now: dt.datetime, where: str) -> AttestationCheck:
    """One sigstore bundle referrer holding a DSSE envelope (cosign 3's attestations)."""
    entry = f"bundle {item.manifest.digest}"
    if item.raw is None:
        return AttestationCheck(entry, False, item.error, predicate_type=item.predicate_type, where=where)
    try:
        raw = bundle_envelope(item.raw)
    except VouchError as exc:
        return AttestationCheck(entry, False, str(exc), predicate_type=item.predicate_type, where=where)
    check = check_envelope(raw, keys, policy, predicate_type, item.predicate_type, now, entry, bundle=item.raw)
    check.where = where
    return check


def verify_attestations(client: RegistryClient, image: Reference, keys: Trust,
                        predicate_type: str | None, max_age: dt.timedelta | None = None,
                        now: dt.datetime | None = None, layouts: tuple[str, ...] = LAYOUTS) -> AttestationResult:
    """Every attestation of the image in the given layouts ("legacy" `.att` tag, "bundle" referrers),
    each checked by the same engine: trusted signature, then `attestation_policy`. Signature bundles
    (cosign/sign/v1 statements) among the referrers are not attestations and are passed over."""
    now = now or dt.datetime.now(dt.UTC)
    desc = client.resolve(image)
    digest = desc.digest
    result = AttestationResult(f"{image.name}@{digest}", digest, predicate_type)
    policy = attestation_policy(digest, predicate_type, max_age, now)
    from vouch.layouts import layouts as by_name

    reading = TagReading()
    for layout in by_name(layouts):
        result.checks += layout.attestations(client, image, digest, keys, policy, predicate_type, now, reading)
    result.skipped = reading.note()
    return result
