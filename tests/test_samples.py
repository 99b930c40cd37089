"""The demo's sample release: every base it claims carries a real package database (issue 15: the rpm
samples used to have none, so the demo showed "0 packages" for an "rpm" image)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image, write_layout
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.samples import RELEASE_IMAGES, sample_image, sample_rpmdb


def _ecosystems(bom: dict[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in bom.get("components", []):  # type: ignore[union-attr]
        purl = c.get("purl") or ""
        if purl.startswith("pkg:"):
            t = purl[4:].split("/", 1)[0]
            out[t] = out.get(t, 0) + 1
    return out


@pytest.mark.parametrize("distro", sorted({d for _, d, _ in RELEASE_IMAGES}))
def test_every_sample_base_lists_its_os_packages(tmp_path: Path, distro: str) -> None:
    write_layout(tmp_path / "l", sample_image("probe", distro), "v1")
    r = subprocess.run([sys.executable, "-m", "vouch", "sbom", f"oci:{tmp_path}/l:v1"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    os_type = {"debian": "deb", "distroless": "deb", "alpine": "apk", "rpm": "rpm"}[distro]
    assert _ecosystems(json.loads(r.stdout)).get(os_type, 0) >= 4, r.stdout[:500]


def test_sample_rpmdb_is_what_real_rpm_reads(tmp_path: Path) -> None:
    if shutil.which("rpm") is None:
        msg = "rpm is missing: run scripts/make-testdata.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    db = tmp_path / "root" / "var" / "lib" / "rpm"
    db.mkdir(parents=True)
    (db / "rpmdb.sqlite").write_bytes(sample_rpmdb())
    q = subprocess.run(["rpm", "--root", str(tmp_path / "root"), "--dbpath", "/var/lib/rpm", "-qa", "--qf",
                        "%{NAME}@%{VERSION}-%{RELEASE}\\n"], capture_output=True, text=True, check=True)
    by_rpm = sorted(q.stdout.split())
    write_layout(tmp_path / "l", sample_image("probe", "rpm"), "v1")
    bom = json.loads(subprocess.run([sys.executable, "-m", "vouch", "sbom", f"oci:{tmp_path}/l:v1"],
                                    capture_output=True, text=True, timeout=120, check=True).stdout)
    by_vouch = sorted(f"{c['name']}@{c['version']}" for c in bom["components"]
                      if str(c.get("purl", "")).startswith("pkg:rpm/"))
    assert by_vouch == by_rpm and len(by_rpm) == 4


def test_release_report_counts_packages_per_ecosystem(registry: RegistryServer, repo_name: str,
                                                      tmp_path: Path) -> None:
    ref = Reference(registry.host, f"{repo_name}/model-server", "2026.04")
    with RegistryClient() as c:
        push_image(c, ref, sample_image("model-server", "rpm"))
    priv, _, _ = write_keypair(tmp_path, "k")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKKO_", "VOUCH_SIGN", "COSIGN_"))}
    r = subprocess.run([sys.executable, "-m", "vouch", "-o", "json", "release", "--key", str(priv), str(ref)],
                       capture_output=True, text=True, timeout=300, env={**env, "COSIGN_PASSWORD": "pw"},
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    [img] = json.loads(r.stdout)["images"]
    assert img["ecosystems"]["rpm"] == 4 and img["packages"] == sum(img["ecosystems"].values())
