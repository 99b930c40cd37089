"""vouch vs real trivy (the build shipped in cdxgen's npm plugin package) on the same root filesystems:
vouch must find every package trivy finds, with the same version and arch."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.peers import peer
from tests.support.testdata import debian_layered, debian_minbase_image, require_minbase
from vouch.oci.client import RegistryClient
from vouch.oci.source import LayoutSource
from vouch.sbom.generate import generate_sbom

pytestmark = pytest.mark.interop


def trivy_packages(root: Path, tmp_path: Path) -> dict[str, tuple[str, str]]:
    out = tmp_path / "trivy.json"
    r = subprocess.run([str(peer("trivy")), "rootfs", "--offline-scan", "--skip-db-update", "--cache-dir",
                        str(tmp_path / "trivy-cache"), "--format", "cyclonedx", "-o", str(out), str(root)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    pkgs = {}
    for c in doc.get("components", []):
        purl = c.get("purl") or ""
        if not purl.startswith("pkg:deb/"):
            continue
        arch = re.search(r"arch=([^&]+)", purl)
        pkgs[c["name"]] = (c.get("version", ""), arch.group(1) if arch else "")
    return pkgs


def _strip_epoch(v: str) -> str:
    return v.split(":", 1)[1] if re.match(r"^\d+:", v) else v


def compare(vouch_pkgs: dict[str, tuple[str, str]], trivy: dict[str, tuple[str, str]]) -> list[str]:
    problems = []
    for name, (version, arch) in trivy.items():
        if name not in vouch_pkgs:
            problems.append(f"{name}: trivy finds it, vouch does not")
            continue
        v, a = vouch_pkgs[name]
        if _strip_epoch(v) != _strip_epoch(version) or a != arch:
            problems.append(f"{name}: trivy {version}/{arch}, vouch {v}/{a}")
    return problems


def test_minbase_recall_vs_trivy(tmp_path: Path) -> None:
    trivy = trivy_packages(require_minbase(), tmp_path)
    assert len(trivy) > 80  # the peer really scanned the tree
    result = generate_sbom(LayoutSource(debian_minbase_image(), None), timestamp="2026-04-25T10:00:00Z")
    ours = {p.name: (p.version, p.arch or "") for p in result.packages if p.type == "deb"}
    assert compare(ours, trivy) == []
    assert set(ours) == set(trivy)  # and nothing trivy considers absent


def test_layered_purge_vs_trivy(tmp_path: Path) -> None:
    """trivy scans the tree after the real `dpkg --purge`; vouch reads the 3-layer image with whiteouts."""
    img = debian_layered()
    trivy = trivy_packages(img.upper, tmp_path)
    with RegistryClient():
        result = generate_sbom(LayoutSource(img.layout, None), timestamp="2026-04-25T10:00:00Z")
    ours = {p.name: (p.version, p.arch or "") for p in result.packages if p.type == "deb"}
    assert compare(ours, trivy) == []
    assert set(ours) == set(trivy)
