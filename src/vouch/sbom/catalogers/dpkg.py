"""Debian packages: var/lib/dpkg/status, distroless status.d, md5sums file lists, DEP-5 copyright."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from vouch.sbom.catalogers.base import compile_globs, location, owned_layer, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize, split_expression
from vouch.sbom.model import Distro, Package

STATUS = "var/lib/dpkg/status"
_CLAIM = compile_globs(
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/*",
    "var/lib/dpkg/info/*.md5sums",
    "var/lib/dpkg/info/*.conffiles",
    "usr/share/doc/*/copyright",
)
_LICENSE_RE = re.compile(r"^License:\s*(\S.*)$", re.M)  # \s* and \S are disjoint: no backtracking
_COMMON_RE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9.+_-]+)")


def parse_paragraphs(text: str) -> list[dict[str, str]]:
    """RFC 822-style control paragraphs (continuation lines joined with newlines). Linear: a field's
    lines are collected in a list and joined once (appending to the string would copy it per line)."""
    out: list[dict[str, str]] = []
    cur: dict[str, list[str]] = {}
    key = None

    def done() -> None:
        if cur:
            out.append({k: "\n".join(v) for k, v in cur.items()})

    for line in text.splitlines():
        if not line.strip():
            done()
            cur, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            cur[key].append(line.strip())
            continue
        k, sep, v = line.partition(":")
        if not sep:
            continue
        key = k.strip()
        cur[key] = [v.strip()]
    done()
    return out


_INT_MAX = 2**31 - 1
_EPOCH = re.compile(r"[+-]?[0-9]+")


def version_error(version: str) -> str | None:
    """Why dpkg would refuse a version, in dpkg's own words (lib/dpkg/parsehelp.c parseversion: the
    checks `dpkg-deb --build` applies), or None for a valid one. Surrounding blanks are trimmed first,
    as dpkg does."""
    v = version.strip(" \t")
    if not v:
        return "version string is empty"
    if any(c.isspace() for c in v):
        return "version string has embedded spaces"
    if ":" in v:
        epoch, _, v = v.partition(":")
        number = _EPOCH.match(epoch)  # what strtol reads: a sign, then digits
        if number is None:
            return "epoch in version is empty"
        if number.end() != len(epoch):
            return "epoch in version is not number"
        if int(epoch) < 0:
            return "epoch in version is negative"
        if int(epoch) > _INT_MAX:
            return "epoch in version is too big"
        if not v:
            return "nothing after colon in version number"
    upstream, hyphen, revision = v.rpartition("-") if "-" in v else (v, "", "")
    if hyphen and not revision:
        return "revision number is empty"
    if not upstream:
        return "version number is empty"
    if not upstream[0].isascii() or not upstream[0].isdigit():
        return "version number does not start with digit"
    if any(not (c.isascii() and c.isalnum()) and c not in ".-+~:" for c in upstream):
        return "invalid character in version number"
    if any(not (c.isascii() and c.isalnum()) and c not in ".+~" for c in revision):
        return "invalid character in revision number"
    return None


def parse_relations(value: str) -> list[str]:
    """`a (>= 1), b | c, d:any` → every alternative's name: [a, b, c, d]."""
    names = []
    for group in value.split(","):
        for alt in group.split("|"):
            m = re.match(r"\s*([a-z0-9][a-z0-9+.-]*)", alt.strip())
            if m:
                names.append(m.group(1))
    return names


def copyright_licenses(text: str) -> list[str]:
    found: list[str] = []
    for m in _LICENSE_RE.finditer(text):
        for token in split_expression(m.group(1).rstrip()):
            found.append(token)
    for m in _COMMON_RE.finditer(text):
        found.append(m.group(1))
    seen: dict[str, None] = {}
    for token in found:
        spdx, name = normalize(token)
        value = spdx or name
        if value and value.lower() not in ("none", "unknown", "other", "same-as-rest-of-p11kit"):
            seen.setdefault(value)
    return list(seen)


class DpkgCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = (("var/lib/dpkg/", "usr/share/doc/"), ())
    name = "dpkg"
    max_file_bytes = 256 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return _CLAIM.match(path) is not None

    def reduce(self, path: str, data: bytes) -> Any:
        text = data.decode("utf-8", "replace")
        if path.endswith(".md5sums"):
            return [line.split(None, 1)[1].strip() for line in text.splitlines() if len(line.split(None, 1)) == 2]
        if path.endswith(".conffiles"):
            return [line.split()[0] for line in text.splitlines() if line.strip()]
        if path.endswith("/copyright"):
            return copyright_licenses(text)
        return parse_paragraphs(text)

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        sources: list[tuple[str, dict[str, str]]] = []
        status = view.get(STATUS)
        if status is not None:
            sources += [(STATUS, p) for p in status.value]
        for path, parsed in sorted(view.parsed_by(self.name)):
            if path.startswith("var/lib/dpkg/status.d/") and not path.endswith(".md5sums"):
                sources += [(path, p) for p in parsed.value]
        distro_q = distro.qualifier if distro else None
        namespace = distro.id if distro and distro.id in ("debian", "ubuntu") else (distro.id if distro else "debian")
        packages: list[Package] = []
        seen: set[tuple[str, str, str]] = set()
        for db_path, p in sources:
            name, version = p.get("Package"), p.get("Version")
            if not name:
                continue
            want, _, state = [*p.get("Status", "install ok installed").split(), "", "", ""][:3]
            if state not in ("installed",) or want in ("deinstall", "purge"):
                continue
            why = "missing 'Version' field" if not version else version_error(version)
            if why or not version:  # dpkg refuses such a record; a BOM entry without a valid version matches nothing
                shown = f" field value {version!r}" if version else ""
                view.warnings.append(f"dpkg: /{db_path}: package {name!r}:{shown} {why}; not listed")
                continue
            arch = p.get("Architecture", "")
            ident = (name, version, arch)
            if ident in seen:  # status and status.d listing the same package
                continue
            seen.add(ident)
            src_name, src_version = name, None
            if p.get("Source"):
                m = re.match(r"(\S+)(?:\s+\((.+)\))?", p["Source"])
                if m:
                    src_name, src_version = m.group(1), m.group(2)
            upstream = None
            if src_name != name or src_version:
                upstream = f"{src_name}@{src_version}" if src_version else src_name
            files = self._files(view, name, arch, db_path)
            licenses = self._licenses(view, name)
            qualifiers = {"arch": arch or None, "distro": distro_q, "upstream": upstream}
            pkg = Package(
                name=name, version=version, type="deb", cataloger=self.name, arch=arch or None,
                purl=purl("deb", namespace, name, version, qualifiers),
                licenses=licenses, source=src_name, supplier=p.get("Maintainer"),
                description=(p.get("Description") or "").split("\n")[0] or None,
                files=files,
                depends=parse_relations(p.get("Depends", "")) + parse_relations(p.get("Pre-Depends", "")),
                provides=parse_relations(p.get("Provides", "")),
            )
            layer = owned_layer(view, files)
            pkg.locations.append(location(view, db_path, layer if layer is not None else None))
            if p.get("Installed-Size"):
                pkg.properties["vouch:package:installed-size-kib"] = p["Installed-Size"]
            if src_version:
                pkg.properties["vouch:package:source-version"] = src_version
            packages.append(pkg)
        return packages

    def _files(self, view: ImageView, name: str, arch: str, db_path: str) -> list[str]:
        if db_path.startswith("var/lib/dpkg/status.d/"):
            candidates = [db_path + ".md5sums", posixpath.join(posixpath.dirname(db_path), f"{name}.md5sums")]
        else:
            candidates = [f"var/lib/dpkg/info/{name}:{arch}.md5sums", f"var/lib/dpkg/info/{name}.md5sums"]
        files: list[str] = []
        for c in candidates:
            parsed = view.get(c)
            if parsed is not None:
                files = ["/" + f.lstrip("/") for f in parsed.value]
                break
        for c in (f"var/lib/dpkg/info/{name}:{arch}.conffiles", f"var/lib/dpkg/info/{name}.conffiles"):
            parsed = view.get(c)
            if parsed is not None:
                files += [f for f in parsed.value if f not in files]
                break
        return files

    def _licenses(self, view: ImageView, name: str) -> list[str]:
        parsed = view.get(f"usr/share/doc/{name}/copyright")
        return list(parsed.value) if parsed is not None else []
