"""PHP packages Composer installed: `vendor/composer/installed.json` (Composer 1 list or Composer 2 object)."""

from __future__ import annotations

import json
from typing import Any

from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize
from vouch.sbom.model import Distro, Package


class ComposerCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), ("composer/installed.json",))
    name = "php-composer"
    max_file_bytes = 32 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return path.endswith("composer/installed.json")

    def reduce(self, path: str, data: bytes) -> Any:
        try:
            doc = json.loads(data)
        except RecursionError as exc:
            raise ValueError("JSON nested too deep") from exc
        entries = doc.get("packages") if isinstance(doc, dict) else doc
        dev_names = doc.get("dev-package-names") if isinstance(doc, dict) else None
        dev = {x for x in dev_names if isinstance(x, str)} if isinstance(dev_names, list) else set()
        out = []
        for p in entries if isinstance(entries, list) else []:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("version"), str):
                continue
            lic = p.get("license") or []
            lic = [lic] if isinstance(lic, str) else [x for x in lic if isinstance(x, str)] if isinstance(lic, list) \
                else []
            require = p.get("require")
            out.append({"name": p["name"], "version": p["version"], "licenses": lic, "dev": p["name"] in dev,
                        "description": p.get("description") if isinstance(p.get("description"), str) else None,
                        "requires": sorted(k for k in require if "/" in k) if isinstance(require, dict) else []})
        return out

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            for meta in parsed.value:
                vendor, _, name = meta["name"].rpartition("/")
                if not name.strip() or not meta["version"].strip():
                    continue  # "vendor/" or blanks: no package a purl can name
                licenses = []
                for value in meta["licenses"]:
                    spdx, raw = normalize(value)
                    if spdx or raw:
                        licenses.append(spdx or raw)
                pkg = Package(meta["name"], meta["version"], "composer",
                              purl("composer", vendor or None, name, meta["version"]), "php-composer-installed",
                              licenses=licenses, description=meta["description"], depends=meta["requires"])
                if meta["dev"]:
                    pkg.properties["vouch:composer:dev"] = "true"
                pkg.locations.append(location(view, path, parsed.layer))
                packages.append(pkg)
        return packages
