""".NET: the `*.deps.json` a published application carries (NuGet packages, the project itself, and
the bundled runtime of a self-contained app).

`libraries` says what each entry is (`package`, `project`, `runtimepack`, `referenceassembly`);
`targets[runtimeTarget]` says what the app loads: an entry is listed when it brings runtime assets
there (`runtime`, `native`, `resources`, `runtimeTargets`), or is a meta-package whose dependencies
do, or is the application's own project. A `compileOnly` entry, or one with no assets of its own and
none below it (a compile-time reference, an analyzer), is not in the running app and is not listed.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.model import Distro, Package

_KINDS = ("package", "project", "runtimepack")
_ASSETS = ("runtime", "native", "resources", "runtimeTargets")
_RUNTIMEPACK = "runtimepack."


@dataclass
class Library:
    name: str
    version: str
    type: str
    sha512: str | None = None
    deps: list[str] = field(default_factory=list)  # "Name/Version" keys
    assets: bool = False
    compile_only: bool = False
    in_targets: bool = False


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The runtime target's libraries (a self-contained app's `.NETCoreApp,Version=v8.0/linux-x64`); all
    targets when the file names none or names one it lacks."""
    targets = _dict(doc.get("targets"))
    name = _dict(doc.get("runtimeTarget")).get("name")
    if isinstance(name, str) and isinstance(targets.get(name), dict):
        return [targets[name]]
    return [t for t in targets.values() if isinstance(t, dict)]


def parse_deps(doc: Any) -> tuple[list[Library], bool]:
    """(libraries, whether the file has a targets section at all)."""
    if not isinstance(doc, dict):
        return [], False
    libs: dict[str, Library] = {}
    for key, info in _dict(doc.get("libraries")).items():
        name, sep, version = key.rpartition("/")
        kind = _dict(info).get("type")
        if sep and name and version and kind in _KINDS:
            sha = _dict(info).get("sha512")
            libs[key] = Library(name, version, str(kind), sha if isinstance(sha, str) and sha else None)
    targets = _targets(doc)
    for target in targets:
        for key, entry in target.items():
            lib = libs.get(key)
            if lib is None or not isinstance(entry, dict):
                continue
            lib.in_targets = True
            lib.compile_only = lib.compile_only or entry.get("compileOnly") is True
            lib.assets = lib.assets or any(_dict(entry.get(a)) for a in _ASSETS)
            lib.deps += [f"{n}/{v}" for n, v in _dict(entry.get("dependencies")).items() if isinstance(v, str)]
    return list(libs.values()), bool(targets)


def _loaded(libs: list[Library]) -> set[str]:
    """Keys of the libraries the app loads: assets of their own, or (meta-packages) below them."""
    by_key = {f"{lib.name}/{lib.version}": lib for lib in libs}
    memo: dict[str, bool] = {}

    def reaches(key: str) -> bool:
        if key in memo:
            return memo[key]
        memo[key] = False  # a cycle adds nothing
        lib = by_key.get(key)
        if lib is None or lib.compile_only:
            return False
        memo[key] = lib.assets or any(reaches(d) for d in lib.deps)
        return memo[key]

    return {k for k in by_key if reaches(k)}


class DotnetCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), (".deps.json",))
    name = "dotnet"
    max_file_bytes = 32 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return path.endswith(".deps.json")

    def reduce(self, path: str, data: bytes) -> Any:
        try:
            doc = json.loads(data)
        except RecursionError as exc:
            raise ValueError("JSON nested too deep") from exc
        libs, has_targets = parse_deps(doc)
        root = posixpath.basename(path).removesuffix(".deps.json")
        if not has_targets:  # nothing says what is loaded: every package the file lists
            return libs
        loaded = _loaded(libs)
        return [lib for lib in libs if f"{lib.name}/{lib.version}" in loaded
                or (lib.type == "project" and lib.name == root and lib.in_targets and not lib.compile_only)]

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            for lib in parsed.value:
                packages.append(_package(lib))
                packages[-1].locations.append(location(view, path, parsed.layer))
        return packages


def _package(lib: Library) -> Package:
    name = lib.name
    cpes: list[str] = []
    if lib.type == "runtimepack":
        # `runtimepack.Microsoft.NETCore.App.Runtime.linux-x64` is the SDK's label for the runtime pack
        # NuGet package `Microsoft.NETCore.App.Runtime.linux-x64`: the id advisories name
        if name.lower().startswith(_RUNTIMEPACK):
            name = name[len(_RUNTIMEPACK):]
        cpes = _runtime_cpes(name, lib.version)
    pkg = Package(name, lib.version, "nuget", purl("nuget", None, name, lib.version), "dotnet-deps", cpes=cpes,
                  component_type="application" if lib.type == "project" else
                  "framework" if lib.type == "runtimepack" else "library")
    if lib.sha512:
        pkg.properties["vouch:nuget:sha512"] = lib.sha512
    if lib.type != "package":
        pkg.properties["vouch:nuget:library-type"] = lib.type
    return pkg


def _runtime_cpes(name: str, version: str) -> list[str]:
    """NVD's names for the runtime: `.net` (5 and later), `.net_core` (before 5), `asp.net_core`."""
    lower = name.lower()
    parts = version.split("-", 1)[0].split(".")
    if not all(p.isdigit() for p in parts):
        return []
    numeric = ".".join(str(int(p)) for p in parts)
    if lower.startswith("microsoft.aspnetcore.app"):
        product = "asp.net_core"
    elif lower.startswith("microsoft.netcore.app"):
        product = ".net" if int(parts[0]) >= 5 else ".net_core"
    else:
        return []
    return [f"cpe:2.3:a:microsoft:{product}:{numeric}:*:*:*:*:*:*:*"]
