"""Facts of an SBOM statement that policies judge: its timestamp (RFC 3339, as Go reads it), its age, and
which image its metadata.component names."""

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
