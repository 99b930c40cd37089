"""Which components of a CycloneDX BOM a package query names: purl identity, qualifiers, versions.

A query is the user's purl (`pkg:deb/debian/libssl3`, qualifiers optional, a version optional) with
`vers:` ranges, or what an OSV advisory says is affected (one query per affected package). Pure
functions over BOM dicts: no I/O here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from vouch.errors import InputError
from vouch.query.vers import Range, compare, interval, orderable, parse_range, parse_version, scheme_for

SOURCE_PROPERTY = "vouch:package:source"


@dataclass(frozen=True)
class PackageQuery:
    type: str
    namespace: str | None
    name: str
    version: str | None = None
    qualifiers: tuple[tuple[str, str], ...] = ()
    ranges: tuple[Range, ...] = ()  # any of them; none: every version
    versions: tuple[str, ...] = ()  # exact versions also affected (OSV `versions`)
    distro: str | None = None  # `debian-12`: only components whose distro qualifier is this release
    by_source: bool = True  # a distro package also matches by its source package (OSV names those)
    label: str = ""  # where it came from: the command line, an OSV id

    @property
    def scheme(self) -> str | None:
        return scheme_for(self.type)

    def purl(self) -> str:
        return PackageURL(self.type, self.namespace, self.name, self.version,
                          dict(self.qualifiers) or None).to_string()

    def to_json(self) -> dict[str, Any]:
        return {"purl": self.purl(), "ranges": [str(r) for r in self.ranges], "versions": list(self.versions),
                **({"distro": self.distro} if self.distro else {}), **({"label": self.label} if self.label else {})}


@dataclass
class Match:
    query: PackageQuery
    purl: str
    name: str
    version: str
    via: str  # "name", or "source <name>" when it matched by its source package
    where: list[str] = field(default_factory=list)
    affected: bool | None = True  # None: the version does not parse in the ecosystem's ordering
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"purl": self.purl, "name": self.name, "version": self.version, "via": self.via,
                "where": self.where, "affected": self.affected, **({"note": self.note} if self.note else {}),
                **({"query": self.query.label} if self.query.label else {})}


def _norm_name(purl_type: str, name: str) -> str:
    t = purl_type.lower()
    if t == "pypi":
        return re.sub(r"[-_.]+", "-", name).lower()
    if t in ("deb", "apk", "npm", "alpm", "gem", "nuget", "composer", "cargo"):
        return name.lower()
    return name


def _norm_ns(purl_type: str, ns: str | None) -> str | None:
    if ns is None:
        return None
    return ns if purl_type.lower() in ("maven", "golang", "github") else ns.lower()


def parse_query(purl_text: str, ranges: list[str] | None = None, by_source: bool = True) -> PackageQuery:
    """The command line's PURL and --range options."""
    try:
        p = PackageURL.from_string(purl_text.strip())
    except ValueError as exc:
        raise InputError(f"{purl_text!r} is not a package URL ({exc}): write e.g. pkg:deb/debian/libssl3") from exc
    if p.subpath:
        raise InputError(f"{purl_text!r}: a query purl has no #subpath")
    rs = tuple(parse_range(r, p.type) for r in ranges or [])
    if p.version is not None and scheme_for(p.type) is not None:
        parse_version(scheme_for(p.type) or "", p.version)
    quals = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    return PackageQuery(p.type.lower(), p.namespace, p.name, p.version, tuple(sorted(quals.items())), rs,
                        by_source=by_source)


def iter_components(bom: Any) -> Iterator[dict[str, Any]]:
    """Every component of a CycloneDX BOM, nested ones too (metadata.component is the image, not a package)."""
    stack = list(reversed((bom or {}).get("components") or [])) if isinstance(bom, dict) else []
    while stack:
        comp = stack.pop()
        if not isinstance(comp, dict):
            continue
        yield comp
        stack.extend(reversed(comp.get("components") or []))


def _properties(comp: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(p.get("name")), str(p.get("value"))) for p in comp.get("properties") or [] if isinstance(p, dict)]


def source_name(p: PackageURL, comp: dict[str, Any]) -> str | None:
    """The source package a distro package was built from: the purl's `upstream` qualifier (deb, apk:
    the name; rpm: the source rpm's file name), else vouch's `vouch:package:source` property."""
    quals = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    up = quals.get("upstream")
    if up:
        if p.type == "rpm" and up.endswith(".src.rpm"):
            parts = up[: -len(".src.rpm")].rsplit("-", 2)
            return parts[0] if len(parts) == 3 else None
        return up.split("@", 1)[0]
    for name, value in _properties(comp):
        if name == SOURCE_PROPERTY:
            return value
    return None


def where_found(comp: dict[str, Any]) -> list[str]:
    """Where the cataloger saw it: vouch's location properties (path, layer), else CycloneDX evidence."""
    props = _properties(comp)
    paths: dict[str, str] = {}
    layers: dict[str, str] = {}
    for name, value in props:
        m = re.fullmatch(r"vouch:location:(\d+):(path|layerIndex)", name)
        if m:
            (paths if m.group(2) == "path" else layers)[m.group(1)] = value
    if paths:
        return [p + (f" (layer {layers[i]})" if i in layers else "") for i, p in sorted(paths.items())]
    occ = ((comp.get("evidence") or {}).get("occurrences") or []) if isinstance(comp.get("evidence"), dict) else []
    return [str(o.get("location")) for o in occ if isinstance(o, dict) and o.get("location")]


def _distro_ok(want: str | None, quals: dict[str, str]) -> bool:
    if want is None:
        return True
    have = quals.get("distro")
    if not have:
        return True  # the component does not say: the version decides
    have = have.lower()
    return have == want or have.startswith(want + ".") or have.startswith(want + "-")


def match_component(q: PackageQuery, comp: dict[str, Any]) -> Match | None:
    purl_text = comp.get("purl")
    if not isinstance(purl_text, str):
        return None
    try:
        p = PackageURL.from_string(purl_text)
    except ValueError:
        return None
    if p.type.lower() != q.type:
        return None
    if q.namespace is not None and _norm_ns(p.type, p.namespace) != _norm_ns(q.type, q.namespace):
        return None
    quals = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    if any(quals.get(k) != v for k, v in q.qualifiers):
        return None
    if not _distro_ok(q.distro, quals):
        return None
    want = _norm_name(q.type, q.name)
    if _norm_name(p.type, p.name) == want:
        via = "name"
    else:
        src = source_name(p, comp) if q.by_source else None
        if src is None or _norm_name(p.type, src) != want:
            return None
        via = f"source {src}"
    version = str(comp.get("version") or p.version or "")
    m = Match(q, purl_text, p.name, version, via, where_found(comp))
    scheme = q.scheme
    if q.version is None and not q.ranges and not q.versions:
        return m
    if not version:
        m.affected, m.note = None, "the component has no version"
        return m
    if q.ranges and not orderable(scheme, version):
        m.affected, m.note = None, f"version {version!r} does not parse as a {scheme} version"
        return m
    if q.version is not None and compare(scheme, version, q.version) != 0:
        return None
    if q.ranges or q.versions:
        in_range = any(r.contains(version) for r in q.ranges)
        listed = any(compare(scheme, version, v) == 0 for v in q.versions)
        if not (in_range or listed):
            return None
    return m


def match_bom(queries: list[PackageQuery], bom: Any) -> list[Match]:
    out: list[Match] = []
    seen: set[tuple[str, str]] = set()
    for comp in iter_components(bom):
        for q in queries:
            m = match_component(q, comp)
            if m is not None and (m.purl, m.version) not in seen:
                seen.add((m.purl, m.version))
                out.append(m)
                break
    return out


# ---- OSV advisories ---------------------------------------------------------------------------------

# OSV ecosystem -> (purl type, purl namespace); distro ecosystems name source packages.
OSV_ECOSYSTEMS: dict[str, tuple[str, str | None]] = {
    "Debian": ("deb", "debian"), "Ubuntu": ("deb", "ubuntu"), "Alpine": ("apk", "alpine"),
    "Wolfi": ("apk", "wolfi"), "Chainguard": ("apk", "chainguard"),
    "Rocky Linux": ("rpm", "rocky"), "AlmaLinux": ("rpm", "almalinux"), "Red Hat": ("rpm", "redhat"),
    "openSUSE": ("rpm", "opensuse"), "SUSE": ("rpm", "suse"), "Mageia": ("rpm", "mageia"),
    "PyPI": ("pypi", None), "npm": ("npm", None), "Maven": ("maven", None), "Go": ("golang", None),
    "crates.io": ("cargo", None), "RubyGems": ("gem", None), "NuGet": ("nuget", None),
    "Packagist": ("composer", None),
}


def _osv_distro(namespace: str | None, release: str) -> str | None:
    """`Debian:12` -> debian-12, `Alpine:v3.20` -> alpine-3.20, `Ubuntu:22.04:LTS` -> ubuntu-22.04."""
    if not namespace or not release:
        return None
    rel = release.split(":", 1)[0].strip()
    if namespace in ("alpine", "wolfi", "chainguard"):
        rel = rel.removeprefix("v")
    if not re.fullmatch(r"[0-9][0-9A-Za-z.]*", rel):
        return None
    return f"{namespace}-{rel.lower()}"


def _osv_name(purl_type: str, name: str) -> tuple[str | None, str]:
    if purl_type == "maven" and ":" in name:
        g, _, a = name.partition(":")
        return g, a
    if purl_type in ("golang", "composer") and "/" in name:
        ns, _, n = name.rpartition("/")
        return ns, n
    if purl_type == "npm" and name.startswith("@") and "/" in name:
        ns, _, n = name.partition("/")
        return ns, n
    return None, name


def _osv_intervals(scheme: str, events: list[Any]) -> list[Range]:
    out: list[Range] = []
    start: str | None = None
    open_ = False
    for ev in events:
        if not isinstance(ev, dict):
            continue
        if "introduced" in ev:
            start, open_ = str(ev["introduced"]), True
        elif "fixed" in ev and open_:
            out.append(interval(scheme, start, fixed=str(ev["fixed"])))
            open_ = False
        elif "last_affected" in ev and open_:
            out.append(interval(scheme, start, last_affected=str(ev["last_affected"])))
            open_ = False
    if open_:
        out.append(interval(scheme, start))
    return out


def osv_queries(raw: bytes, by_source: bool = True) -> tuple[list[PackageQuery], list[str]]:
    """An OSV advisory (osv.dev's JSON) as package queries, and notes on what of it could not be used."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the OSV file is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("affected"), list):
        raise InputError("the OSV file has no affected[] list: is it an advisory in osv.dev's format?")
    label = str(doc.get("id") or "")
    queries: list[PackageQuery] = []
    notes: list[str] = []
    for aff in doc["affected"]:
        pkg = aff.get("package") if isinstance(aff, dict) else None
        if not isinstance(pkg, dict):
            notes.append("an affected entry without a package was passed over")
            continue
        eco_full = str(pkg.get("ecosystem") or "")
        eco, _, release = eco_full.partition(":")
        purl_text = pkg.get("purl")
        if eco not in OSV_ECOSYSTEMS and not purl_text:
            notes.append(f"ecosystem {eco_full!r} ({pkg.get('name')}) has no purl type vouch knows: passed over")
            continue
        ptype, ns = OSV_ECOSYSTEMS.get(eco, ("", None))
        if purl_text:
            try:
                p = PackageURL.from_string(str(purl_text))
            except ValueError as exc:
                raise InputError(f"the OSV file's purl {purl_text!r} does not parse: {exc}") from exc
            ptype, ns, name = p.type.lower(), p.namespace, p.name
        else:
            ns2, name = _osv_name(ptype, str(pkg.get("name") or ""))
            ns = ns2 if ns2 is not None else ns
        scheme = scheme_for(ptype)
        if scheme is None:
            notes.append(f"{ptype} packages have no version ordering in vouch: {name} passed over")
            continue
        ranges: list[Range] = []
        for r in aff.get("ranges") or []:
            rtype = str((r or {}).get("type"))
            if rtype not in ("ECOSYSTEM", "SEMVER"):
                notes.append(f"{name}: a {rtype} range (commits) says nothing of package versions: passed over")
                continue
            ranges += _osv_intervals(scheme, list(r.get("events") or []))
        versions = tuple(str(v) for v in aff.get("versions") or [])
        if not ranges and not versions:
            notes.append(f"{name}: no version range or list: every version counts as affected")
            ranges = [parse_range(f"vers:{scheme}/*")]
        queries.append(PackageQuery(ptype, ns, name, None, (), tuple(ranges), versions,
                                    _osv_distro(ns, release), by_source, label or eco_full))
    if not queries:
        raise InputError("the OSV file names no package vouch can look for" + (f" ({'; '.join(notes)})"
                                                                                if notes else ""))
    return queries, notes
