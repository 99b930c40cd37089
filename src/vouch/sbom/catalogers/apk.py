"""Alpine packages: lib/apk/db/installed."""

from __future__ import annotations

import re
from typing import Any

from vouch.sbom.catalogers.base import location, owned_layer, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize, split_expression
from vouch.sbom.model import Distro, Package

INSTALLED = "lib/apk/db/installed"


def parse_installed(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] = {"files": []}
    directory = ""
    for line in text.splitlines():
        if not line.strip():
            if cur.get("P"):
                out.append(cur)
            cur, directory = {"files": []}, ""
            continue
        if len(line) < 2 or line[1] != ":":
            continue
        k, v = line[0], line[2:]
        if k == "F":
            directory = v
        elif k == "R":
            cur["files"].append(f"/{directory}/{v}" if directory else f"/{v}")
        elif k in ("D", "p"):
            cur[k] = v.split()
        else:
            cur.setdefault(k, v)
    if cur.get("P"):
        out.append(cur)
    return out


# apk-tools' version grammar (src/version.c: apk_version_validate): digits, `.digits` or `letter digits`
# groups, one optional letter, `_suffix[digits]` (the suffixes apk knows), an optional `~hash` and
# `-r<digits>`. Alternatives start with distinct characters, so matching is linear.
_APK_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+|[a-z][0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*"
                          r"(?:~[0-9a-f]+)?(?:-r[0-9]+)?")


def version_valid(version: str) -> bool:
    return _APK_VERSION.fullmatch(version) is not None


def _dep_name(token: str) -> str | None:
    if token.startswith("!"):
        return None
    return re.split(r"[<>=~]", token, maxsplit=1)[0] or None


class ApkCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((INSTALLED,), ())
    name = "apk"
    max_file_bytes = 256 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return path == INSTALLED

    def reduce(self, path: str, data: bytes) -> Any:
        return parse_installed(data.decode("utf-8", "replace"))

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        parsed = view.get(INSTALLED)
        if parsed is None:
            return []
        namespace = distro.id if distro else "alpine"
        packages = []
        for p in parsed.value:
            name, version, arch = p["P"], p.get("V", ""), p.get("A")
            if not version_valid(version):  # apk refuses such a record; a version matches nothing without it
                why = f"invalid version {version!r}" if version else "no version (V:)"
                view.warnings.append(f"apk: /{INSTALLED}: package {name!r} has {why}; not listed")
                continue
            origin = p.get("o")
            licenses = []
            for token in split_expression(p.get("L", "")):
                spdx, raw = normalize(token)
                if spdx or raw:
                    licenses.append(spdx or raw)
            pkg = Package(
                name=name, version=version, type="apk", cataloger=self.name, arch=arch,
                purl=purl("apk", namespace, name, version,
                          {"arch": arch, "distro": distro.qualifier if distro else None,
                           "upstream": origin if origin and origin != name else None}),
                licenses=licenses, source=origin, supplier=p.get("m"), description=p.get("T"),
                files=p["files"], depends=[n for t in p.get("D", []) if (n := _dep_name(t))],
                provides=[n for t in p.get("p", []) if (n := _dep_name(t))],
            )
            if p.get("U"):
                pkg.properties["vouch:package:url"] = p["U"]
            if p.get("c"):
                pkg.properties["vouch:apk:commit"] = p["c"]
            layer = owned_layer(view, pkg.files)
            pkg.locations.append(location(view, INSTALLED, layer))
            packages.append(pkg)
        return packages
