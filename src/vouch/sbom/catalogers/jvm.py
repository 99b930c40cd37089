"""Java runtimes: the `release` file every JDK/JRE build (OpenJDK, Temurin, Zulu, Corretto, ...) has at
the top of its installation directory."""

from __future__ import annotations

import posixpath
from typing import Any

from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import ImageView
from vouch.sbom.model import Distro, Package


def parse_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isupper():
            out[key.strip()] = value.strip().strip('"')
    return out


def vendor_product(release: dict[str, str], path: str, jdk: bool) -> tuple[str, str]:
    """syft's naming, so that both tools give a runtime the same purl."""
    implementor = release.get("IMPLEMENTOR", "").lower().replace(" ", "")
    kind = "jdk" if jdk or release.get("IMAGE_TYPE", "").upper() == "JDK" else "jre"
    if "azul" in implementor or "zulu" in path:
        return "azul", "zulu"
    if "sun" in implementor:
        return "sun", kind
    if "ibm" in implementor or "/ibm" in path:
        return "ibm", "java_sdk" if jdk else "java"
    if "oracle" in implementor or "oracle" in path or "commercial" in release.get("BUILD_TYPE", ""):
        return "oracle", kind
    return "oracle", "openjdk"


class JvmCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = ((), ("/release",))
    name = "java-jvm-release"
    max_file_bytes = 512 * 1024

    def claims(self, path: str) -> bool:
        return path.endswith("/release")

    def reduce(self, path: str, data: bytes) -> Any:
        release = parse_release(data.decode("utf-8", "replace"))
        return release if release.get("JAVA_VERSION") else None  # /etc/*/release and others are not JVMs

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        out = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            release = parsed.value
            if not release:
                continue
            home = posixpath.dirname(path)
            jdk = view.exists(f"{home}/bin/javac")
            vendor, product = vendor_product(release, "/" + path, jdk)
            version = release.get("JAVA_RUNTIME_VERSION") or release["JAVA_VERSION"]
            repo = release.get("SOURCE_REPO") or release.get("BUILD_SOURCE_REPO")
            ref = purl("generic", vendor, product, version, {"repository_url": repo})
            pkg = Package(product, version, "binary", ref, self.name, files=["/" + path], component_type="application",
                          cpes=[f"cpe:2.3:a:{vendor}:{product}:{release['JAVA_VERSION']}:*:*:*:*:*:*:*"])
            if release.get("IMPLEMENTOR"):
                pkg.supplier = release["IMPLEMENTOR"]
            pkg.locations.append(location(view, path, parsed.layer))
            out.append(pkg)
        return out
