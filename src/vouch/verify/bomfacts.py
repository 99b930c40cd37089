"""Facts of an SBOM statement that policies judge: its timestamp (RFC 3339, as Go reads it), its age, and
which image it names as its subject. Both SBOM formats: CycloneDX (metadata.timestamp, metadata.component)
and SPDX 2.3 (creationInfo.created, the packages the document DESCRIBES)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from vouch import limits
from vouch.errors import InputError

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


CDX_TYPE = "https://cyclonedx.org/bom"
SPDX_TYPE = "https://spdx.dev/Document"
SBOM_TYPES = (CDX_TYPE, SPDX_TYPE)  # the predicate types whose documents these facts are read from


def is_spdx(predicate: Any) -> bool:
    return isinstance(predicate, dict) and isinstance(predicate.get("spdxVersion"), str)


def bom_time(predicate: Any) -> tuple[dt.datetime | None, str]:
    """(the document's time, "") or (None, why it cannot be used); a missing time is (None, ""). CycloneDX:
    metadata.timestamp; SPDX: creationInfo.created."""
    spdx = is_spdx(predicate)
    outer, inner = ("creationInfo", "created") if spdx else ("metadata", "timestamp")
    metadata = predicate.get(outer) if isinstance(predicate, dict) else None
    raw = metadata.get(inner) if isinstance(metadata, dict) else None
    if raw is None:
        return None, ""
    if not isinstance(raw, str):
        return None, f"the SBOM's {outer}.{inner} is not a string"
    try:
        return parse_rfc3339(raw), ""
    except InputError as exc:
        return None, f"the SBOM's {outer}.{exc}" if not spdx else f"the SBOM's creationInfo.created: {exc}"


def sbom_age_problem(predicate: Any, now: dt.datetime, max_age: dt.timedelta | None) -> str:
    """Why an SBOM document (either format) fails max_age now, or "" (BomMaxAge's rule, for any format)."""
    ts, problem = bom_time(predicate)
    if problem:
        return problem
    if ts is None:
        return "the SBOM has no " + ("creationInfo.created" if is_spdx(predicate) else "metadata.timestamp") + \
            ", so its age cannot be checked"
    return age_problem(ts, now, max_age)


_DIGEST_IN = re.compile(r"(sha256|sha384|sha512)(?::|%3[aA])([0-9a-f]{64,128})")


def _spdx_subject_digests(doc: dict[str, Any]) -> set[str]:
    """The digests an SPDX document's described packages hold: versionInfo, a purl external reference,
    a checksum (syft and vouch write the image's manifest digest in all three)."""
    described = {r.get("relatedSpdxElement") for r in doc.get("relationships") or [] if isinstance(r, dict)
                 and r.get("spdxElementId") == "SPDXRef-DOCUMENT" and r.get("relationshipType") == "DESCRIBES"}
    described |= {d for d in doc.get("documentDescribes") or [] if isinstance(d, str)}
    found: set[str] = set()
    for pkg in doc.get("packages") or []:
        if not isinstance(pkg, dict) or pkg.get("SPDXID") not in described:
            continue
        texts = [pkg.get("versionInfo")]
        texts += [r.get("referenceLocator") for r in pkg.get("externalRefs") or [] if isinstance(r, dict)
                  and r.get("referenceType") == "purl"]
        for text in texts:
            if isinstance(text, str):
                found |= {f"{m[1]}:{m[2]}" for m in _DIGEST_IN.finditer(text)}
        for c in pkg.get("checksums") or []:
            if isinstance(c, dict) and isinstance(c.get("algorithm"), str) and isinstance(c.get("checksumValue"), str):
                algo = c["algorithm"].lower()
                if algo in ("sha256", "sha384", "sha512") and re.fullmatch(r"[0-9a-f]{64,128}", c["checksumValue"]):
                    found.add(f"{algo}:{c['checksumValue']}")
    return found


def bom_subject_digests(predicate: Any) -> set[str]:
    """The image digests a BOM says it describes: a CycloneDX metadata.component's version, purl
    (`pkg:oci/NAME@sha256%3A…`) and bom-ref, where they hold one; an SPDX document's described packages
    (see _spdx_subject_digests). Empty when it names none (syft given a tag writes the tag as the version):
    such a BOM cannot be bound to a digest by its content."""
    if is_spdx(predicate):
        return _spdx_subject_digests(predicate)
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
    where = "the package its document DESCRIBES" if is_spdx(predicate) else "its metadata.component"
    return (f"the SBOM describes {', '.join(sorted(named))} ({where}), not this image ({digest}): "
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
