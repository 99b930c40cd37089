"""Verification of cosign attestations: DSSE signature, payload type, subject digest, freshness."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from vouch import limits
from vouch.errors import InputError, VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, PREDICATE_TYPES, open_envelope
from vouch.store.attest import ANN_PREDICATE_TYPE, read_attestations
from vouch.store.layout import ATT_SUFFIX, PayloadRead, TagReading, read_payloads
from vouch.trust import PublicKey

_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> dt.timedelta:
    m = _AGE_RE.fullmatch(text.strip())
    if not m:
        raise InputError(f"invalid age {text!r}: write e.g. 90d, 2160h, 12w")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds > limits.MAX_AGE_DAYS * 86400:
        raise InputError(f"age {text!r} is over {limits.MAX_AGE_DAYS // 365} years; write a real limit such as 90d")
    return dt.timedelta(seconds=seconds)


def _fmt(delta: dt.timedelta) -> str:
    """A duration in the largest unit that reads well: 1 s, 12 min, 5.5 hours, 3.2 days."""
    s = abs(delta.total_seconds())
    if s < 60:
        return f"{s:.0f} s" if s >= 1 else f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} hours"
    return f"{s / 86400:.1f} days"


CLOCK_SKEW = dt.timedelta(seconds=limits.MAX_CLOCK_SKEW_SECONDS)
# RFC 3339 date-time, as Go's time.Parse(time.RFC3339, …) reads it (Kyverno's and cosign's parser):
# upper-case T and Z, seconds required, an optional fraction, a zone always.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def parse_rfc3339(text: str) -> dt.datetime:
    """An RFC 3339 timestamp, strictly; InputError for anything else (dates alone, week dates, no zone)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise InputError(f"timestamp {text[:60]!r} is not RFC 3339 (write e.g. 2026-05-01T12:00:00Z)")
    try:
        base = dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                           int((m[7] or ".0")[1:7].ljust(6, "0")))
        zone = m[8]
        if zone == "Z":
            tz = dt.UTC
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("zone offset out of range")
            offset = dt.timedelta(hours=hours, minutes=minutes)
            tz = dt.timezone(offset if zone[0] == "+" else -offset)
        return base.replace(tzinfo=tz)
    except ValueError as exc:
        raise InputError(f"timestamp {text[:60]!r} is not a valid RFC 3339 date-time ({exc})") from exc


def bom_time(predicate: Any) -> tuple[dt.datetime | None, str]:
    """(metadata.timestamp, "") or (None, why it cannot be used); a missing timestamp is (None, "")."""
    metadata = predicate.get("metadata") if isinstance(predicate, dict) else None
    raw = metadata.get("timestamp") if isinstance(metadata, dict) else None
    if raw is None:
        return None, ""
    if not isinstance(raw, str):
        return None, "the SBOM's metadata.timestamp is not a string"
    try:
        return parse_rfc3339(raw), ""
    except InputError as exc:
        return None, f"the SBOM's metadata.{exc}"


_DIGEST_IN = re.compile(r"(sha256|sha384|sha512)(?::|%3[aA])([0-9a-f]{64,128})")


def bom_subject_digests(predicate: Any) -> set[str]:
    """The image digests a CycloneDX BOM says it describes: metadata.component's version, purl
    (`pkg:oci/NAME@sha256%3A…`) and bom-ref, where they hold one. Empty when it names none (syft
    given a tag writes the tag as the version): such a BOM cannot be bound to a digest by its content."""
    metadata = predicate.get("metadata") if isinstance(predicate, dict) else None
    comp = metadata.get("component") if isinstance(metadata, dict) else None
    if not isinstance(comp, dict):
        return set()
    found: set[str] = set()
    for key in ("version", "purl", "bom-ref"):
        value = comp.get(key)
        if isinstance(value, str):
            found |= {f"{m[1]}:{m[2]}" for m in _DIGEST_IN.finditer(value)}
    return found


def bom_subject_problem(predicate: Any, digest: str, also: frozenset[str] = frozenset()) -> str:
    """Why a BOM is not this image's (it names another digest in metadata.component), or ""."""
    named = bom_subject_digests(predicate)
    if not named or digest in named or named & also:
        return ""
    return (f"the SBOM describes {', '.join(sorted(named))} (its metadata.component), not this image ({digest}): "
            "an SBOM of another image")


def age_problem(ts: dt.datetime, now: dt.datetime, max_age: dt.timedelta | None) -> str:
    """Why an SBOM generated at ts does not pass max_age now (a future date never does), or ""."""
    if ts - now > CLOCK_SKEW:
        return (f"SBOM timestamp {ts.isoformat()} is in the future ({_fmt(ts - now)} ahead of this clock, beyond the "
                f"{limits.MAX_CLOCK_SKEW_SECONDS} s skew allowed); refusing it")
    age = now - ts
    if max_age is not None and age > max_age:
        return (f"SBOM expired: generated {ts.isoformat()}, {_fmt(age)} old, over the "
                f"{_fmt(max_age)} limit by {_fmt(age - max_age)}")
    return ""


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


def _check_layer(item: PayloadRead, keys: list[PublicKey], predicate_type: str | None,
                 max_age: dt.timedelta | None, now: dt.datetime, digest: str) -> AttestationCheck:
    """One attestation layer against the policy (signature, payload type, statement type, subject, age)."""
    algo, _, hexd = digest.partition(":")
    layer = item.layer
    d = layer.descriptor
    check = AttestationCheck(d.digest, False, predicate_type=layer.annotations.get(ANN_PREDICATE_TYPE))
    if d.media_type != mt.DSSE_ENVELOPE:
        check.reason = f"layer media type {d.media_type!r} is not a DSSE envelope"
        return check
    if item.payload is None:
        check.reason = item.error
        return check
    try:
        env = open_envelope(item.payload)
    except VouchError as exc:
        check.reason = str(exc)
        return check
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        check.reason = f"payloadType {env.payload_type!r} is not {INTOTO_PAYLOAD_TYPE!r}"
        return check
    check.key_id = env.verify(keys)
    if check.key_id is None:
        # Nothing of an unverified statement is read further (nor kept): it is not evidence.
        check.reason = "DSSE signature does not verify with the given key(s) (unknown signer or edited statement)"
        return check
    try:
        stmt = env.statement()
    except VouchError as exc:
        check.reason = str(exc)
        return check
    stmt_type = stmt.get("predicateType")
    annotated = check.predicate_type
    check.predicate_type = str(stmt_type) if stmt_type is not None else None
    if predicate_type is not None and check.predicate_type != predicate_type:
        check.reason = f"statement is of type {check.predicate_type}, not {predicate_type}"
        if annotated == predicate_type:
            check.reason = (f"the layer's predicateType annotation says {annotated} but the signed statement "
                            f"says {check.predicate_type}")
            check.predicate_type = predicate_type  # count it as a refused attestation of the asked type
        return check
    if annotated is not None and annotated != check.predicate_type:
        check.reason = (f"the layer's predicateType annotation says {annotated} but the signed statement says "
                        f"{check.predicate_type}")
        return check
    subjects = stmt.get("subject") or []
    if not any(isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get(algo) == hexd
               for s in subjects):
        names = [f"{s.get('name')}@{algo}:{s['digest'].get(algo) if isinstance(s.get('digest'), dict) else '?'}"
                 for s in subjects if isinstance(s, dict)]
        check.reason = f"statement subject {', '.join(names) or '(none)'} is not this image ({digest})"
        return check
    if check.predicate_type == PREDICATE_TYPES["cyclonedx"]:
        check.reason = bom_subject_problem(stmt.get("predicate"), digest)
        if check.reason:
            return check
        ts, problem = bom_time(stmt.get("predicate"))
        if ts is not None:
            check.age = now - ts
        if max_age is not None:
            if problem:
                check.reason = problem
                return check
            if ts is None:
                check.reason = "the SBOM has no metadata.timestamp, so its age cannot be checked"
                return check
            check.reason = age_problem(ts, now, max_age)
            if check.reason:
                return check
    check.statement = stmt
    check.envelope = item.payload
    check.ok = True
    return check


def verify_attestations(client: RegistryClient, image: Reference, keys: list[PublicKey],
                        predicate_type: str | None, max_age: dt.timedelta | None = None,
                        now: dt.datetime | None = None) -> AttestationResult:
    now = now or dt.datetime.now(dt.UTC)
    desc = client.resolve(image)
    digest = desc.digest
    result = AttestationResult(f"{image.name}@{digest}", digest, predicate_type)
    repo, layers = read_attestations(client, image, digest)
    reading = TagReading()
    for item in read_payloads(client, repo, layers, ATT_SUFFIX, reading):
        result.checks.append(_check_layer(item, keys, predicate_type, max_age, now, digest))
        del item  # one envelope in memory at a time
    result.skipped = reading.note()
    return result
