""".NET: the `*.deps.json` a published application carries (NuGet packages and the project itself)."""

from __future__ import annotations

import json
from typing import Any

from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.model import Distro, Package


class DotnetCataloger:
    name = "dotnet"
    max_file_bytes = 32 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return path.endswith(".deps.json")

    def reduce(self, path: str, data: bytes) -> Any:
        try:
            doc = json.loads(data)
        except RecursionError as exc:
            raise ValueError("JSON nested too deep") from exc
        libraries = doc.get("libraries") if isinstance(doc, dict) else None
        out = []
        for key, info in libraries.items() if isinstance(libraries, dict) else ():
            name, sep, version = key.rpartition("/")
            kind = info.get("type") if isinstance(info, dict) else None
            if sep and name and version and kind in ("package", "project"):
                out.append({"name": name, "version": version, "type": kind,
                            "sha512": info.get("sha512") if isinstance(info.get("sha512"), str) else None})
        return out

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            for lib in parsed.value:
                pkg = Package(lib["name"], lib["version"], "nuget", purl("nuget", None, lib["name"], lib["version"]),
                              "dotnet-deps", component_type="application" if lib["type"] == "project" else "library")
                if lib["sha512"]:
                    pkg.properties["vouch:nuget:sha512"] = lib["sha512"]
                pkg.locations.append(location(view, path, parsed.layer))
                packages.append(pkg)
        return packages
