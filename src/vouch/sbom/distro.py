"""Distro detection from os-release and the usual fallbacks."""

from __future__ import annotations

import re
import shlex
from typing import Any

from vouch.sbom.fsview import ImageView
from vouch.sbom.model import Distro

CLAIMED = ("etc/os-release", "usr/lib/os-release", "etc/alpine-release", "etc/debian_version",
           "etc/redhat-release", "etc/centos-release", "etc/lsb-release", "etc/system-release")


class DistroFiles:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = (CLAIMED, ())
    name = "distro"
    max_file_bytes = 64 * 1024

    def claims(self, path: str) -> bool:
        return path in CLAIMED

    def reduce(self, path: str, data: bytes) -> Any:
        return data.decode("utf-8", "replace")


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        try:
            parts = shlex.split(v)
            out[k.strip()] = parts[0] if parts else ""
        except ValueError:
            out[k.strip()] = v.strip().strip("\"'")
    return out


def detect_distro(view: ImageView) -> Distro | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        p = view.get(path)
        if p is not None:
            f = parse_os_release(p.value)
            if f.get("ID"):
                version = f.get("VERSION_ID", "")
                if f["ID"] == "alpine":
                    alp = view.get("etc/alpine-release")
                    if alp is not None and alp.value.strip():
                        version = alp.value.strip()
                return Distro(f["ID"].lower(), version, f.get("NAME", f["ID"]), f.get("PRETTY_NAME"),
                              f.get("ID_LIKE", "").split(), f.get("VERSION_CODENAME"))
    p = view.get("etc/alpine-release")
    if p is not None:
        return Distro("alpine", p.value.strip(), "Alpine Linux")
    p = view.get("etc/debian_version")
    if p is not None:
        m = re.match(r"(\d+)", p.value.strip())
        return Distro("debian", m.group(1) if m else "", "Debian GNU/Linux")
    for path in ("etc/redhat-release", "etc/centos-release", "etc/system-release"):
        p = view.get(path)
        if p is not None:
            m = re.search(r"release (\d+(?:\.\d+)?)", p.value)
            name = p.value.split(" release")[0].strip()
            if not name:
                continue  # an empty file names no distribution
            ident = "centos" if "CentOS" in name else "rhel" if "Red Hat" in name else name.split()[0].lower()
            return Distro(ident, m.group(1) if m else "", name)
    p = view.get("etc/lsb-release")
    if p is not None:
        f = parse_os_release(p.value)
        if f.get("DISTRIB_ID"):
            return Distro(f["DISTRIB_ID"].lower(), f.get("DISTRIB_RELEASE", ""), f["DISTRIB_ID"])
    return None
