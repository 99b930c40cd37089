"""Version orderings and `vers:` ranges per ecosystem, on top of `univers` (the purl project's own library).

One place knows which purl type uses which ordering: dpkg (epochs, `~`) for deb, rpmvercmp
(epoch:version-release) for rpm, apk for apk, PEP 440 for pypi, Maven's ComparableVersion for maven,
semver for npm and cargo, Go's module semver for golang. Everything else vouch reports as `generic`
and compares only for equality.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from univers.version_range import RANGE_CLASS_BY_SCHEMES
from univers.versions import InvalidVersion, Version

from vouch.errors import InputError

# purl type -> vers scheme (the vers spec names schemes after purl types; these are the ones we order)
SCHEMES = ("deb", "rpm", "apk", "pypi", "npm", "maven", "golang", "cargo", "gem", "nuget", "composer", "alpm")
ALIASES = {"semver": "npm", "go": "golang", "alpine": "apk", "debian": "deb", "python": "pypi"}


def scheme_for(purl_type: str) -> str | None:
    """The vers scheme ordering this purl type's versions, None when vouch has no ordering for it."""
    t = ALIASES.get(purl_type.lower(), purl_type.lower())
    return t if t in SCHEMES else None


def _range_class(scheme: str) -> Any:
    """univers's range class of the scheme (typed loosely: univers's attrs classes are partly untyped)."""
    return RANGE_CLASS_BY_SCHEMES[scheme]


@functools.lru_cache(maxsize=4096)
def parse_version(scheme: str, text: str) -> Version:
    """A version in the scheme's ordering; InputError when it is not one."""
    try:
        v: Version = _range_class(scheme).version_class(text)
    except (InvalidVersion, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{text!r} is not a valid {scheme} version: {exc}") from exc
    return v


def compare(scheme: str | None, a: str, b: str) -> int:
    """-1, 0 or 1 by the ecosystem's ordering. Without an ordering (or when a version does not parse in
    it) only equal strings are equal, and others compare as strings: callers that must not guess check
    `orderable` first."""
    if a == b:
        return 0
    if scheme is not None:
        try:
            va, vb = parse_version(scheme, a), parse_version(scheme, b)
            return (va > vb) - (va < vb)
        except InputError:
            pass
    return (a > b) - (a < b)


def orderable(scheme: str | None, *versions: str) -> bool:
    if scheme is None:
        return False
    try:
        for v in versions:
            parse_version(scheme, v)
    except InputError:
        return False
    return True


@dataclass(frozen=True)
class Range:
    """One `vers:` range (a union of intervals, as the vers spec defines them)."""

    scheme: str
    text: str
    _range: Any  # univers VersionRange

    def contains(self, version: str) -> bool:
        v = parse_version(self.scheme, version)
        return bool(self._range.contains(v))

    def __str__(self) -> str:
        return self.text


def parse_range(text: str, purl_type: str | None = None) -> Range:
    """`vers:deb/<3.0.13`, `vers:pypi/>=2.0|<2.32.0`, `vers:npm/*`; or a bare `<3.0.13` whose scheme is the
    purl type's. The scheme must order the purl's type (a deb range says nothing of an rpm)."""
    text = text.strip()
    want = scheme_for(purl_type) if purl_type else None
    if not text.startswith("vers:"):
        if want is None:
            raise InputError(f"range {text!r} has no scheme: write it as vers:<scheme>/<constraints>, "
                             f"e.g. vers:deb/<3.0.13")
        text = f"vers:{want}/{text}"
    scheme_part, _, constraints = text[len("vers:"):].partition("/")
    scheme = ALIASES.get(scheme_part.lower(), scheme_part.lower())
    if scheme not in SCHEMES:
        raise InputError(f"range {text!r}: vouch has no version ordering for scheme {scheme_part!r} "
                         f"(it has {', '.join(SCHEMES)})")
    if purl_type is not None and want != scheme:
        raise InputError(f"range {text!r} is in the {scheme} scheme but the package is a {purl_type} one: "
                         f"write vers:{want or purl_type}/…")
    if not constraints:
        raise InputError(f"range {text!r} has no constraints: write e.g. vers:{scheme}/<1.2.3 or vers:{scheme}/*")
    try:
        vr = _range_class(scheme).from_string(f"vers:{scheme}/{constraints}")
    except Exception as exc:  # univers raises ValueError, InvalidVersion and assorted others for bad input
        raise InputError(f"range {text!r} does not parse: {exc}") from exc
    return Range(scheme, f"vers:{scheme}/{constraints}", vr)


def interval(scheme: str, introduced: str | None, fixed: str | None = None,
             last_affected: str | None = None) -> Range:
    """One OSV-style interval as a vers range: [introduced, fixed) or [introduced, last_affected]."""
    parts = []
    if introduced and introduced != "0":
        parts.append(f">={introduced}")
    if fixed:
        parts.append(f"<{fixed}")
    elif last_affected:
        parts.append(f"<={last_affected}")
    return parse_range(f"vers:{scheme}/{'|'.join(parts) or '*'}")
