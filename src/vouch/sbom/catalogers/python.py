"""Python packages: `*.dist-info/METADATA` (+ RECORD), `*.egg-info/PKG-INFO` (+ installed-files.txt)."""

from __future__ import annotations

import email.message
import email.parser
import posixpath
import re
from typing import Any

from vouch.sbom.catalogers.base import location, owned_layer, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize, split_expression
from vouch.sbom.model import Distro, Package

_CLAIM = re.compile(r"(?:^|/)[^/]+\.(?:dist-info/(?:METADATA|RECORD)|egg-info/(?:PKG-INFO|installed-files\.txt)|"
                    r"egg-info)$")
_SUFFIXES = ("/METADATA", "/RECORD", "/PKG-INFO", "/installed-files.txt", ".egg-info")
_CLASSIFIERS = {
    "MIT License": "MIT", "Apache Software License": "Apache-2.0", "BSD License": "BSD",
    "ISC License (ISCL)": "ISC", "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0", "The Unlicense (Unlicense)": "Unlicense",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only", "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
}


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, as purl's pypi type requires."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _one(msg: email.message.Message, key: str) -> str | None:
    """A header's value trimmed, as the core metadata spec's readers do (`Name: simple ` names "simple"):
    the email parser keeps the spaces and tabs around a value. Empty is absent."""
    value = msg.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _all(msg: email.message.Message, key: str) -> list[str]:
    return [v.strip() for v in msg.get_all(key) or [] if isinstance(v, str) and v.strip()]


def parse_metadata(text: str) -> dict[str, Any]:
    msg = email.parser.HeaderParser().parsestr(text)
    return {
        "name": _one(msg, "Name"), "version": _one(msg, "Version"),
        "license_expression": _one(msg, "License-Expression"), "license": _one(msg, "License"),
        "classifiers": _all(msg, "Classifier"), "requires": _all(msg, "Requires-Dist"),
        "summary": _one(msg, "Summary"), "author": _one(msg, "Author") or _one(msg, "Author-email"),
    }


def _licenses(meta: dict[str, Any]) -> list[str]:
    if meta.get("license_expression"):
        return [meta["license_expression"].strip()]
    out: list[str] = []
    for c in meta.get("classifiers", []):
        if c.startswith("License :: "):
            last = c.split(" :: ")[-1]
            value = _CLASSIFIERS.get(last, last)
            if value not in out and last != "OSI Approved":
                out.append(value)
    lic = (meta.get("license") or "").strip()
    if not out and lic and "\n" not in lic and len(lic) < 80 and lic.upper() != "UNKNOWN":
        for token in split_expression(lic):
            spdx, raw = normalize(token)
            if spdx or raw:
                out.append(spdx or raw)
    return out


def _requirement_name(req: str) -> str | None:
    if ";" in req and "extra" in req.split(";", 1)[1]:
        return None  # optional extras are not installed dependencies
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return normalize_name(m.group(1)) if m else None


class PythonCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), _SUFFIXES)
    name = "python"
    max_file_bytes = 16 * 1024 * 1024

    def claims(self, path: str) -> bool:
        # a cheap suffix test first: this runs for every path of every layer
        return path.endswith(_SUFFIXES) and _CLAIM.search(path) is not None

    def reduce(self, path: str, data: bytes) -> Any:
        text = data.decode("utf-8", "replace")
        if path.endswith(("/RECORD", "installed-files.txt")):
            return [line.split(",", 1)[0] for line in text.splitlines() if line.strip()]
        return parse_metadata(text)

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            if path.endswith(("/RECORD", "installed-files.txt")):
                continue
            meta = parsed.value
            if not meta.get("name") or not meta.get("version"):
                continue
            info_dir = posixpath.dirname(path) if not path.endswith(".egg-info") else path
            site = posixpath.dirname(info_dir)
            files: list[str] = []
            for listing in (f"{info_dir}/RECORD", f"{info_dir}/installed-files.txt"):
                rec = view.parsed.get(listing)
                if rec is not None:
                    base = site if listing.endswith("RECORD") else info_dir
                    files = ["/" + posixpath.normpath(posixpath.join(base, f)) for f in rec.value]
                    break
            name = normalize_name(meta["name"])
            pkg = Package(
                name=meta["name"], version=meta["version"], type="pypi", cataloger=self.name,
                purl=purl("pypi", None, name, meta["version"]), licenses=_licenses(meta),
                description=meta.get("summary"), supplier=meta.get("author"), files=files,
                depends=[n for r in meta["requires"] if (n := _requirement_name(r))],
            )
            pkg.provides = [name]
            layer = owned_layer(view, files)
            pkg.locations.append(location(view, path, layer))
            packages.append(pkg)
        return packages
