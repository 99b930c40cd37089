"""`vouch diff`: packages added, removed, up/downgraded (each ecosystem's ordering) and licence changes, from
constructed BOMs, then between two signed releases on the real registry (paired by repository)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from tests.test_release import vouch
from vouch.oci.build import Image, Index, Layer, push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.query.diff import diff_boms, summary
from vouch.testbed.samples import APK_INSTALLED, DPKG_STATUS, OS_RELEASE


def _c(purl: str, version: str, lic: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"purl": purl, "version": version}
    if lic:
        out["licenses"] = [{"license": {"id": lic}}]
    return out


def test_diff_boms() -> None:
    old = {"components": [
        _c("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64", "3.0.11-1~deb12u2"),
        _c("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64", "1:1.2.13.dfsg-1"),
        _c("pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all", "2024a-0+deb12u1"),
        _c("pkg:pypi/requests@2.31.0", "2.31.0", "Apache-2.0"),
        _c("pkg:npm/left-pad@1.3.0", "1.3.0", "WTFPL"),
        _c("pkg:oci/x@sha256:aa", "sha256:aa"),
    ]}
    new = {"components": [
        _c("pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64", "3.0.15-1~deb12u1"),
        _c("pkg:deb/debian/zlib1g@1.3.1-1?arch=amd64", "1.3.1-1"),  # lower: the epoch is gone
        _c("pkg:pypi/requests@2.31.0", "2.31.0", "Apache-2.0 OR MIT"),
        _c("pkg:npm/left-pad@1.10.0", "1.10.0", "MIT"),
        _c("pkg:apk/alpine/musl@1.2.5-r0", "1.2.5-r0", "MIT"),
    ]}
    changes = {c.key: c for c in diff_boms(old, new)}
    assert changes["pkg:deb/debian/libssl3?arch=amd64"].kind == "upgraded"
    assert changes["pkg:deb/debian/zlib1g?arch=amd64"].kind == "downgraded"
    assert changes["pkg:deb/debian/tzdata?arch=all"].kind == "removed"
    assert changes["pkg:apk/alpine/musl"].kind == "added"
    assert changes["pkg:pypi/requests"].kind == "license"
    lp = changes["pkg:npm/left-pad"]
    assert lp.kind == "upgraded" and lp.old_licenses == ["WTFPL"] and lp.new_licenses == ["MIT"]  # 1.10 > 1.3
    assert lp.text() == "↑ pkg:npm/left-pad 1.3.0 -> 1.10.0  licence WTFPL -> MIT"
    assert not any(k.startswith("pkg:oci") for k in changes)
    s = summary(list(changes.values()))
    assert (s["added"], s["removed"], s["upgraded"], s["downgraded"], s["license"], s["licenseChanges"]) == \
        (1, 1, 2, 1, 1, 2)
    assert diff_boms(old, old) == []


def _image(distro: str, db: bytes, arch: str = "amd64") -> Image:
    path = "var/lib/dpkg/status" if distro == "debian" else "lib/apk/db/installed"
    return Image([Layer.from_files({path: db, "etc/os-release": OS_RELEASE[distro]})], architecture=arch)


def test_diff_two_releases(registry: RegistryServer, client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    old_dpkg = DPKG_STATUS.replace(b"Version: 3.0.15-1~deb12u1", b"Version: 3.0.11-1~deb12u2")
    new_dpkg = DPKG_STATUS.replace(b"Version: 1:1.2.13.dfsg-1", b"Version: 1:1.3.dfsg-1").replace(
        b"Package: base-files", b"Package: base-files-renamed")
    new_apk = APK_INSTALLED.replace(b"L:GPL-2.0-only", b"L:GPL-2.0-or-later")
    releases = {
        "2026.03": {"web": Index([_image("debian", old_dpkg, a) for a in ("amd64", "arm64")]),
                    "edge": _image("alpine", APK_INSTALLED), "gone": _image("alpine", APK_INSTALLED)},
        "2026.04": {"web": Index([_image("debian", new_dpkg, a) for a in ("amd64", "arm64")]),
                    "edge": _image("alpine", new_apk), "fresh": _image("debian", new_dpkg)},
    }
    manifests = []
    for tag, images in releases.items():
        refs = []
        for name, img in images.items():
            ref = Reference(registry.host, f"{repo_name}/{name}", tag)
            push_image(client, ref, img)
            refs.append(str(ref))
        r = vouch("release", "--key", str(priv), *refs)
        assert r.returncode == 0, r.stderr
        man = tmp_path / f"{tag}.yaml"
        man.write_text(yaml.safe_dump({"release": tag, "images": refs}))
        manifests.append(str(man))
    r = vouch("diff", "--key", str(pub), "--cache-dir", str(tmp_path / "c"), "-o", "json",
              "--manifest", manifests[0], "--manifest", manifests[1])
    assert r.returncode == 0, r.stderr
    out = {(e["image"].rsplit("/", 1)[-1], e["platform"]): e for e in json.loads(r.stdout)["images"]}
    assert set(out) == {("web", "linux/amd64"), ("web", "linux/arm64"), ("edge", ""), ("gone", ""), ("fresh", "")}
    assert out[("gone", "")]["status"] == "removed" and out[("fresh", "")]["status"] == "added"
    web = {c["package"].split("?")[0]: c for c in out[("web", "linux/arm64")]["changes"]}
    assert web["pkg:deb/debian/libssl3"]["change"] == "upgraded"
    assert web["pkg:deb/debian/libssl3"]["old"] == ["3.0.11-1~deb12u2"]
    assert web["pkg:deb/debian/zlib1g"]["change"] == "upgraded"
    assert web["pkg:deb/debian/base-files"]["change"] == "removed"
    assert web["pkg:deb/debian/base-files-renamed"]["change"] == "added"
    edge = out[("edge", "")]["changes"]
    assert [(c["package"].split("?")[0], c["change"], c["newLicenses"]) for c in edge] == \
        [("pkg:apk/alpine/busybox", "license", ["GPL-2.0-or-later"])]

    r = vouch("diff", "--key", str(pub), "--no-cache", f"{registry.host}/{repo_name}/edge:2026.03",
              f"{registry.host}/{repo_name}/edge:2026.04")
    assert r.returncode == 0, r.stderr
    assert "1 licence change(s)" in r.stdout and "licence GPL-2.0-only -> GPL-2.0-or-later" in r.stdout

    # an image without an SBOM is not compared, and says why: exit 1
    bare = Reference(registry.host, f"{repo_name}/bare", "1")
    push_image(client, bare, _image("alpine", APK_INSTALLED))
    r = vouch("diff", "--key", str(pub), "--no-cache", f"{registry.host}/{repo_name}/edge:2026.04", str(bare))
    assert r.returncode == 1 and "NOT COMPARED" in r.stdout and "no attestation" in r.stdout, r.stdout
    r = vouch("diff", "--key", str(pub), str(bare))
    assert r.returncode == 2 and "give two images" in r.stderr
