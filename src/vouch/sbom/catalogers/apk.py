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


def _dep_name(token: str) -> str | None:
    if token.startswith("!"):
        return None
    return re.split(r"[<>=~]", token, maxsplit=1)[0] or None


class ApkCataloger:
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
