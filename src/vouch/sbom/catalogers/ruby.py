"""Ruby gems: installed gemspecs (`specifications/*.gemspec`, `specifications/default/*.gemspec`)."""

from __future__ import annotations

import re
from typing import Any

from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize
from vouch.sbom.model import Distro, Package

_CLAIM = re.compile(r"(?:^|/)specifications/(?:default/)?[^/]+\.gemspec$")
# `^[ \t]*`, not `^\s*`: \s crosses newlines, and every line start would rescan the blank lines after it
_STR = r"""["']([^"']+)["']"""
_NAME = re.compile(r"^[ \t]*\w+\.name\s*=\s*" + _STR, re.M)
_VERSION = re.compile(r"^[ \t]*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?" + _STR, re.M)
_LICENSES = re.compile(r"^[ \t]*\w+\.licenses?\s*=\s*\[?([^\n\]]*)", re.M)
_STUB = re.compile(r"^# stub: (\S+) (\S+)", re.M)
_SUMMARY = re.compile(r"^[ \t]*\w+\.summary\s*=\s*" + _STR, re.M)


def parse_gemspec(text: str) -> dict[str, Any]:
    name, version = _NAME.search(text), _VERSION.search(text)
    stub = _STUB.search(text)
    licenses: list[str] = []
    for m in _LICENSES.finditer(text):
        for value in re.findall(_STR, m.group(1)):
            spdx, raw = normalize(value)
            if (spdx or raw) and (spdx or raw) not in licenses:
                licenses.append(spdx or raw)
    summary = _SUMMARY.search(text)
    return {"name": name.group(1) if name else (stub.group(1) if stub else None),
            "version": version.group(1) if version else (stub.group(2) if stub else None),
            "licenses": licenses, "summary": summary.group(1) if summary else None}


class RubyCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), (".gemspec",))
    name = "ruby"
    max_file_bytes = 1024 * 1024

    def claims(self, path: str) -> bool:
        return path.endswith(".gemspec") and _CLAIM.search(path) is not None

    def reduce(self, path: str, data: bytes) -> Any:
        return parse_gemspec(data.decode("utf-8", "replace"))

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        out = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            meta = parsed.value
            if not meta.get("name") or not meta.get("version"):
                continue
            pkg = Package(meta["name"], meta["version"], "gem", purl("gem", None, meta["name"], meta["version"]),
                          "ruby-gemspec", licenses=meta["licenses"], description=meta.get("summary"))
            pkg.locations.append(location(view, path, parsed.layer))
            out.append(pkg)
        return out
