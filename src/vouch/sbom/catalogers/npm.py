"""npm packages: every `node_modules/[@scope/]name/package.json`; an application's own package.json
(outside node_modules, beside one) as an application component."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from vouch.sbom.catalogers.base import location, owned_layer, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize, split_expression
from vouch.sbom.model import Distro, Package

_MODULE = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/]+/package\.json$")
_ANY = re.compile(r"(?:^|/)package\.json$")


def _license(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, list):
        return [x for v in value for x in _license(v)]
    if not isinstance(value, str) or not value.strip():
        return []
    text = value.strip().strip("()")
    out = []
    for token in split_expression(text):
        spdx, raw = normalize(token)
        if spdx or raw:
            out.append(spdx or raw)
    return out


class NpmCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), ("package.json",))
    name = "npm"
    max_file_bytes = 4 * 1024 * 1024

    def claims(self, path: str) -> bool:
        if not path.endswith("package.json"):  # cheap test first: this runs for every path
            return False
        if _MODULE.search(path):
            return True
        # an application's manifest: not inside node_modules, not a test fixture deep in a package
        return _ANY.search(path) is not None and "node_modules/" not in path and not path.startswith("usr/share/")

    def reduce(self, path: str, data: bytes) -> Any:
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser
            return None
        if not isinstance(obj, dict):
            return None
        deps = obj.get("dependencies")
        return {"name": obj.get("name"), "version": obj.get("version"), "license": obj.get("license") or
                obj.get("licenses"), "dependencies": sorted(deps) if isinstance(deps, dict) else [],
                "description": obj.get("description"), "private": bool(obj.get("private"))}

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            meta = parsed.value
            if not meta or not isinstance(meta.get("name"), str) or not isinstance(meta.get("version"), str):
                continue
            in_modules = _MODULE.search(path) is not None
            if not in_modules and not view.is_dir(posixpath.join(posixpath.dirname(path), "node_modules")):
                continue  # a stray package.json, not an installed application
            full = meta["name"]
            scope, _, base = full.rpartition("/") if full.startswith("@") else ("", "", full)
            if not base.strip() or not meta["version"].strip():
                continue  # "@scope/" or blanks: no package a purl can name
            pkg = Package(
                name=full, version=meta["version"], type="npm", cataloger=self.name,
                purl=purl("npm", scope or None, base, meta["version"]), licenses=_license(meta.get("license")),
                description=meta.get("description") if isinstance(meta.get("description"), str) else None,
                depends=list(meta.get("dependencies") or []),
                component_type="library" if in_modules else "application",
            )
            pkg.locations.append(location(view, path, owned_layer(view, ["/" + path])))
            packages.append(pkg)
        return packages
