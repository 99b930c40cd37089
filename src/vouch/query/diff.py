"""What changed between two SBOMs: packages added, removed, up- or downgraded, licences changed.

Packages are keyed by purl identity (type, namespace, name) and their `arch` qualifier, so libc6 for
amd64 and for i386 stay apart; versions compare by the ecosystem's ordering (vouch.query.vers). Pure
functions over BOM dicts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from vouch.query.match import _norm_name, iter_components
from vouch.query.vers import compare, orderable, scheme_for


@dataclass(frozen=True)
class Package:
    key: str  # pkg:type/namespace/name (+ ?arch=…)
    type: str
    version: str
    licenses: tuple[str, ...]
    purl: str


def _licenses(comp: dict[str, Any]) -> tuple[str, ...]:
    out = set()
    for lic in comp.get("licenses") or []:
        if not isinstance(lic, dict):
            continue
        if lic.get("expression"):
            out.add(str(lic["expression"]))
        inner = lic.get("license")
        if isinstance(inner, dict) and (inner.get("id") or inner.get("name")):
            out.add(str(inner.get("id") or inner.get("name")))
    return tuple(sorted(out))


def packages(bom: Any) -> dict[str, list[Package]]:
    """The BOM's packages by key (several versions of one package may be installed side by side)."""
    out: dict[str, list[Package]] = {}
    for comp in iter_components(bom):
        text = comp.get("purl")
        if not isinstance(text, str):
            continue
        try:
            p = PackageURL.from_string(text)
        except ValueError:
            continue
        if p.type == "oci":
            continue  # the image's own platform images in a merged index BOM, not packages
        quals = p.qualifiers if isinstance(p.qualifiers, dict) else {}
        key = PackageURL(p.type, p.namespace, _norm_name(p.type, p.name), None,
                         {"arch": quals["arch"]} if quals.get("arch") else None).to_string()
        pkg = Package(key, p.type, str(comp.get("version") or p.version or ""), _licenses(comp), text)
        if pkg not in out.setdefault(key, []):
            out[key].append(pkg)
    return out


@dataclass
class Change:
    key: str
    kind: str  # added, removed, upgraded, downgraded, changed (several versions, or no ordering), license
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    old_licenses: list[str] = field(default_factory=list)
    new_licenses: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"package": self.key, "change": self.kind, "old": self.old, "new": self.new}
        if self.old_licenses != self.new_licenses:
            out["oldLicenses"], out["newLicenses"] = self.old_licenses, self.new_licenses
        return out

    def text(self) -> str:
        lic = (f"  licence {', '.join(self.old_licenses) or 'none'} -> {', '.join(self.new_licenses) or 'none'}"
               if self.old_licenses != self.new_licenses and self.kind != "added" and self.kind != "removed"
               else "")
        if self.kind == "added":
            return f"+ {self.key} {', '.join(self.new)}"
        if self.kind == "removed":
            return f"- {self.key} {', '.join(self.old)}"
        if self.kind == "license":
            return f"~ {self.key} {', '.join(self.new)}{lic}"
        arrow = {"upgraded": "↑", "downgraded": "↓"}.get(self.kind, "~")
        return f"{arrow} {self.key} {', '.join(self.old)} -> {', '.join(self.new)}{lic}"


def _sorted_versions(scheme: str | None, pkgs: list[Package]) -> list[str]:
    def cmp(a: str, b: str) -> int:
        return compare(scheme, a, b)

    return sorted(sorted({p.version for p in pkgs}), key=functools.cmp_to_key(cmp))


def diff_boms(old: Any, new: Any) -> list[Change]:
    a, b = packages(old), packages(new)
    out: list[Change] = []
    for key in sorted(set(a) | set(b)):
        pa, pb = a.get(key, []), b.get(key, [])
        scheme = scheme_for((pa or pb)[0].type)
        va, vb = _sorted_versions(scheme, pa), _sorted_versions(scheme, pb)
        la = sorted({lic for p in pa for lic in p.licenses})
        lb = sorted({lic for p in pb for lic in p.licenses})
        if not pa:
            out.append(Change(key, "added", [], vb, [], lb))
            continue
        if not pb:
            out.append(Change(key, "removed", va, [], la, []))
            continue
        if va != vb:
            kind = "changed"
            if len(va) == 1 and len(vb) == 1 and orderable(scheme, va[0], vb[0]):
                c = compare(scheme, va[0], vb[0])
                kind = "upgraded" if c < 0 else "downgraded" if c > 0 else "changed"
            out.append(Change(key, kind, va, vb, la, lb))
        elif la != lb:
            out.append(Change(key, "license", va, vb, la, lb))
    return out


def summary(changes: list[Change]) -> dict[str, int]:
    counts = {k: 0 for k in ("added", "removed", "upgraded", "downgraded", "changed", "license")}
    for c in changes:
        counts[c.kind] += 1
    counts["licenseChanges"] = sum(1 for c in changes if c.old_licenses != c.new_licenses
                                   and c.kind not in ("added", "removed"))
    return counts
