"""Issue 16 §2: `release` attaches SPDX 2.3 beside CycloneDX (release.yaml `sbomFormats:` or --sbom-format), from
one scan, for every image and every platform; idempotent; stock cosign 2 and 3 `verify-attestation --type
spdxjson` accept it, and the CycloneDX attestation stays what cosign `--type cyclonedx` finds."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import ATT_SUFFIX, read_tag, tag_for

pytestmark = pytest.mark.interop
COSIGN = ["--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true"]
CDX, SPDX = "https://cyclonedx.org/bom", "https://spdx.dev/Document"


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_release_attaches_spdx_beside_cyclonedx(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                                tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "rel")
    single = Reference(registry.host, f"{repo_name}/single", "2026.04")
    single_digest = push_image(client, single, small_image("spdx-single"))
    multi = Reference(registry.host, f"{repo_name}/multi", "2026.04")
    push_image(client, multi, two_platform_index("spdx-multi"))
    manifest = tmp_path / "release.yaml"
    manifest.write_text(yaml.safe_dump({"release": "2026.04", "sbomFormats": ["cyclonedx-json", "spdx-json"],
                                        "images": [str(single), str(multi)]}))
    r = vouch("-o", "json", "release", "--key", str(priv), "--manifest", str(manifest))
    assert r.returncode == 0, r.stderr
    reports = json.loads(r.stdout)["images"]
    by_platform = {(x["image"].split("/")[-1], x["platform"]): x for x in reports}
    assert by_platform[("single", "")]["spdx"] == "attested"
    assert by_platform[("multi", "linux/amd64")]["spdx"] == "attested"
    assert by_platform[("multi", "linux/arm64")]["spdx"] == "attested"
    assert by_platform[("multi", "index")]["spdx"] == ""  # the index's merged BOM is CycloneDX only

    # both statements on one digest, neither replacing the other; the same packages in both
    att = read_tag(client, Reference(single.registry, single.repository), tag_for(single_digest, ATT_SUFFIX))
    types = sorted(x.annotations.get("predicateType", "") for x in att.layers)
    assert types == [CDX, SPDX], types
    image = f"{single.registry}/{single.repository}@{single_digest}"
    spdx_doc = json.loads(vouch("download", "sbom", "--format", "spdx-json", image).stdout)
    cdx_doc = json.loads(vouch("download", "sbom", image).stdout)
    assert spdx_doc["spdxVersion"] == "SPDX-2.3" and cdx_doc["bomFormat"] == "CycloneDX"
    spdx_purls = {ref["referenceLocator"] for p in spdx_doc["packages"] for ref in p.get("externalRefs", [])
                  if ref["referenceType"] == "purl" and not ref["referenceLocator"].startswith("pkg:oci/")}
    cdx_purls = {c["purl"] for c in cdx_doc.get("components", []) if c.get("purl") and c.get("type") != "container"}
    assert spdx_purls == cdx_purls

    # vouch and stock cosign 2 and 3 verify the SPDX attestation (and still find the CycloneDX one)
    r = vouch("verify-attestation", "--key", str(pub), "--type", "spdxjson", "--max-age", "1d", image)
    assert r.returncode == 0, r.stderr
    for cosign in ("cosign2", "cosign3"):
        for kind in ("spdxjson", "cyclonedx"):
            out = run_peer(peer(cosign), "verify-attestation", "--key", str(pub), "--type", kind, *COSIGN, image,
                           home=tmp_path)
            payloads = [json.loads(base64.b64decode(json.loads(line)["payload"]))
                        for line in out.stdout.splitlines() if line.strip()]
            assert {p["predicateType"] for p in payloads} == {SPDX if kind == "spdxjson" else CDX}, (cosign, kind)

    # a re-run writes nothing: both documents are current
    before = [x.descriptor.digest for x in att.layers]
    r = vouch("-o", "json", "release", "--key", str(priv), "--manifest", str(manifest))
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)["images"]
    assert all(x["sbom"] == "current" and x["spdx"] in ("current", "") for x in again), again
    after = read_tag(client, Reference(single.registry, single.repository), tag_for(single_digest, ATT_SUFFIX))
    assert [x.descriptor.digest for x in after.layers] == before


def test_sbom_formats_are_checked(tmp_path: Path) -> None:
    manifest = tmp_path / "release.yaml"
    manifest.write_text(yaml.safe_dump({"sbomFormats": ["spdx-json"], "images": ["127.0.0.1:1/x@sha256:" + "a" * 64]}))
    r = vouch("release", "--key", "nope.key", "--manifest", str(manifest))
    assert r.returncode == 2 and "must include cyclonedx-json" in r.stderr and "Traceback" not in r.stderr
    r = vouch("release", "--key", "nope.key", "--sbom-format", "swid", "127.0.0.1:1/x@sha256:" + "a" * 64)
    assert r.returncode == 2 and "unknown SBOM format 'swid'" in r.stderr
