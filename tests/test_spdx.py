"""SPDX 2.3 as the second SBOM format (issue 16 §2): the same scan encoded as CycloneDX and SPDX, the SPDX
document validated by the SPDX project's own tools (spdx-tools from PyPI: its parser and validator, and its
`pyspdxtools` command), compared with real syft's `spdx-json` of the same image, attested beside the
CycloneDX statement and checked both ways with real cosign 2 and 3 (`--type spdxjson`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import spdx_tools.spdx.parser.parse_anything as spdx_parse  # the SPDX project's tools (dev extra)
import spdx_tools.spdx.validation.document_validator as spdx_validate
from packageurl import PackageURL

from tests.support.images import small_image
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from tests.support.testdata import debian_layered
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.copy import copy_image
from vouch.oci.reference import Reference
from vouch.oci.source import LayoutSource
from vouch.sbom.fsview import ViewOptions
from vouch.sbom.generate import generate_sbom
from vouch.verify.bomfacts import bom_subject_digests, bom_subject_problem, bom_time, sbom_age_problem

TS = "2026-04-25T10:00:00Z"
SPDX = "https://spdx.dev/Document"
CDX = "https://cyclonedx.org/bom"
COSIGNS = ["cosign2", "cosign3"]
VERIFY_OFFLINE = ["--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true"]


def validate_spdx(doc: dict[str, object], tmp_path: Path, name: str = "doc.spdx.json") -> None:
    """The SPDX project's validator finds nothing wrong (its library, and its command line)."""
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    parsed = spdx_parse.parse_file(str(path))
    messages = spdx_validate.validate_full_spdx_document(parsed)
    assert [m.validation_message for m in messages] == []
    tool = shutil.which("pyspdxtools")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("pyspdxtools (spdx-tools) is not installed")
    else:
        r = subprocess.run([tool, "-i", str(path)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "invalid" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def purl_of(pkg: dict[str, object]) -> str | None:
    refs = pkg.get("externalRefs") or []
    assert isinstance(refs, list)
    return next((r["referenceLocator"] for r in refs if r["referenceType"] == "purl"), None)


def vouch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


def test_one_scan_two_formats_and_spdx_tools_validate(tmp_path: Path) -> None:
    img = debian_layered()
    result = generate_sbom(LayoutSource(img.layout, None), timestamp=TS)
    cdx = json.loads(result.to_json())
    spdx = json.loads(result.to_json(format="spdx-json"))
    validate_spdx(spdx, tmp_path)
    assert spdx["spdxVersion"] == "SPDX-2.3" and spdx["dataLicense"] == "CC0-1.0"
    assert spdx["creationInfo"]["created"] == TS
    # the same packages in both documents, by purl (the image and the OS aside)
    cdx_purls = {c["purl"] for c in cdx["components"] if "purl" in c}
    pkgs = spdx["packages"]
    root = pkgs[0]
    assert root["primaryPackagePurpose"] == "CONTAINER" and root["versionInfo"] == result.subject.digest
    spdx_purls = {purl_of(p) for p in pkgs[1:] if p.get("primaryPackagePurpose") != "OPERATING-SYSTEM"}
    assert spdx_purls == cdx_purls and len(spdx_purls) == len(result.packages) == len(img.expected)
    # relationships: the document DESCRIBES the image, which CONTAINS every package and the OS
    kinds = Counter(r["relationshipType"] for r in spdx["relationships"])
    assert spdx["relationships"][0] == {"relatedSpdxElement": root["SPDXID"], "relationshipType": "DESCRIBES",
                                        "spdxElementId": "SPDXRef-DOCUMENT"}
    assert kinds["DESCRIBES"] == 1 and kinds["CONTAINS"] == len(result.packages) + 1
    # CycloneDX dependsOn edges = SPDX DEPENDENCY_OF edges
    assert kinds["DEPENDENCY_OF"] == sum(len(d.get("dependsOn", [])) for d in cdx["dependencies"]
                                         if d["ref"] != cdx["metadata"]["component"]["bom-ref"]
                                         and not d["ref"].startswith("os:")) > 100
    # licences: SPDX ids kept, other names as LicenseRef- with their text
    by_name = {p["name"]: p for p in pkgs}
    assert "GPL-2.0-or-later" in by_name["bash"]["licenseDeclared"].split(" AND ")
    refs = {e["licenseId"]: e["extractedText"] for e in spdx["hasExtractedLicensingInfos"]}
    used = {t for p in pkgs for t in p["licenseDeclared"].split(" AND ") if t.startswith("LicenseRef-")}
    assert used == set(refs) and used
    # deterministic for a pinned time: the same bytes; another time, another namespace
    again = generate_sbom(LayoutSource(img.layout, None), timestamp=TS).to_json(format="spdx-json")
    assert again == result.to_json(format="spdx-json")
    later = json.loads(generate_sbom(LayoutSource(img.layout, None), timestamp="2026-04-26T10:00:00Z")
                       .to_json(format="spdx-json"))
    assert later["documentNamespace"] != spdx["documentNamespace"]
    # the verifier's facts read SPDX as CycloneDX: time and subject
    assert bom_time(spdx) == (dt.datetime(2026, 4, 25, 10, tzinfo=dt.UTC), "")
    assert bom_subject_digests(spdx) == {result.subject.digest}
    assert "another image" in bom_subject_problem(spdx, "sha256:" + "0" * 64)
    assert sbom_age_problem(spdx, dt.datetime(2026, 8, 1, tzinfo=dt.UTC), dt.timedelta(days=90)).startswith(
        "SBOM expired")


def test_spdx_files_carry_the_content_digests(tmp_path: Path) -> None:
    img = debian_layered()
    result = generate_sbom(LayoutSource(img.layout, None), timestamp=TS, options=ViewOptions(file_digests=True))
    doc = json.loads(result.to_json(files_detail=True, format="spdx-json"))
    validate_spdx(doc, tmp_path)
    files = {f["fileName"]: f for f in doc["files"]}
    bash = files["./bin/bash"]  # as dpkg lists it; /bin is a symlink to usr/bin
    data = (img.upper / "usr/bin/bash").read_bytes()
    sums = {c["algorithm"]: c["checksumValue"] for c in bash["checksums"]}
    assert sums == {"SHA1": hashlib.sha1(data).hexdigest(), "SHA256": hashlib.sha256(data).hexdigest()}
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in doc["relationships"]
                if r["relationshipType"] == "CONTAINS"}
    bash_pkg = next(p["SPDXID"] for p in doc["packages"] if p["name"] == "bash")
    assert (bash_pkg, bash["SPDXID"]) in contains


def test_compared_with_syft_spdx(tmp_path: Path) -> None:
    """syft's `-o spdx-json` of the same image: the same packages (purl identity), the same dependency
    edges, DESCRIBES + CONTAINS alike. The differences, each asserted:
    - the image's purl: syft names it by the whole layout path, vouch by its last component (its
      repository_url qualifier holds the rest);
    - the distro qualifier: syft writes debian-12.15 (from /etc/debian_version), vouch debian-12 (os-release's
      VERSION_ID, what the purl spec's examples and trivy use);
    - vouch lists the distribution as an OPERATING-SYSTEM package (syft leaves it out of SPDX);
    - syft lists every file (CONTAINS, and OTHER evident-by), vouch only with --files;
    - licences: both read the DEP-5 copyright files, with different parsers: most packages agree exactly."""
    img = debian_layered()
    out = tmp_path / "syft.spdx.json"
    r = subprocess.run([str(peer("syft")), "scan", f"oci-dir:{img.layout}", "-o", f"spdx-json={out}", "-q"],
                       capture_output=True, text=True, timeout=900,
                       env={"HOME": str(tmp_path), "SYFT_CHECK_FOR_APP_UPDATE": "false", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    syft = json.loads(out.read_text())
    ours = json.loads(generate_sbom(LayoutSource(img.layout, None), timestamp=TS).to_json(format="spdx-json"))
    validate_spdx(syft, tmp_path, "syft.json")  # the reference itself passes the same validator

    def packages(doc: dict[str, object]) -> dict[tuple[str, str, str], dict[str, object]]:
        out = {}
        for p in doc["packages"]:  # type: ignore[attr-defined]
            u = purl_of(p)
            if u and not u.startswith("pkg:oci/"):
                q = PackageURL.from_string(u)
                out[(q.type, q.name, q.version or "")] = p
        return out

    theirs, mine = packages(syft), packages(ours)
    assert set(theirs) == set(mine) and len(mine) == len(img.expected)
    distro = {PackageURL.from_string(str(purl_of(p))).qualifiers.get("distro") for p in theirs.values()}
    assert {PackageURL.from_string(str(purl_of(p))).qualifiers.get("distro") for p in mine.values()} == {"debian-12"}
    assert distro == {f"debian-{(img.upper / 'etc/debian_version').read_text().strip()}"}

    def edges(doc: dict[str, object], kind: str) -> set[tuple[str, str]]:
        names = {p["SPDXID"]: p["name"] for p in doc["packages"]}  # type: ignore[attr-defined]
        return {(names[r["spdxElementId"]], names[r["relatedSpdxElement"]]) for r in doc["relationships"]  # type: ignore[attr-defined]
                if r["relationshipType"] == kind and r["spdxElementId"] in names and r["relatedSpdxElement"] in names}

    assert edges(ours, "DEPENDENCY_OF") == edges(syft, "DEPENDENCY_OF") and len(edges(ours, "DEPENDENCY_OF")) > 100
    root_syft, root_ours = syft["packages"][-1], ours["packages"][0]
    assert root_syft["primaryPackagePurpose"] == root_ours["primaryPackagePurpose"] == "CONTAINER"
    assert root_syft["versionInfo"] == root_ours["versionInfo"]  # both: the image's manifest digest
    contains = edges(ours, "CONTAINS")
    assert {n for _, n in edges(syft, "CONTAINS")} | {"debian"} == {n for _, n in contains}
    assert Counter(r["relationshipType"] for r in ours["relationships"])["OTHER"] == 0 < Counter(
        r["relationshipType"] for r in syft["relationships"])["OTHER"]

    def ids(p: dict[str, object]) -> frozenset[str]:
        return frozenset(t for t in str(p["licenseDeclared"]).split(" AND ")
                         if t != "NOASSERTION" and not t.startswith("LicenseRef-"))

    agree = sum(1 for k in mine if ids(mine[k]) == ids(theirs[k]))
    assert agree >= len(mine) // 2, f"licences agree on only {agree} of {len(mine)} packages"
    assert sum(1 for k in mine if ids(mine[k])) >= sum(1 for k in theirs if ids(theirs[k]))


@pytest.fixture
def debian_image(registry: RegistryServer, client: RegistryClient, repo_name: str) -> str:
    ref = Reference(registry.host, repo_name, "v1")
    copy_image(LayoutSource(debian_layered().layout, None), client, ref)
    return f"{registry.host}/{repo_name}@{client.resolve(ref).digest}"


def att_types(client: RegistryClient, image: str) -> Counter[str | None]:
    from vouch.store.attest import read_attestations, statement_info

    ref = Reference.parse(image)
    assert ref.digest
    repo, layers = read_attestations(client, ref, ref.digest)
    return Counter(statement_info(client, repo, x)[0] for x in layers)


@pytest.mark.interop
def test_attest_sbom_spdx_beside_cyclonedx_and_cosign_verifies(debian_image: str, client: RegistryClient,
                                                               tmp_path: Path) -> None:
    ok(vouch("generate-key-pair", "--output-key-prefix", "k", cwd=tmp_path))
    key, pub = str(tmp_path / "k.key"), str(tmp_path / "k.pub")
    ok(vouch("attest-sbom", "--key", key, debian_image))
    r = ok(vouch("-o", "json", "attest-sbom", "--key", key, "--format", "spdx-json", debian_image))
    assert [x["format"] for x in json.loads(r.stdout)] == ["spdx-json"]
    assert att_types(client, debian_image) == {CDX: 1, SPDX: 1}  # side by side, neither replaced
    # both formats in one scan, re-run: the SPDX statement is new only if its time changed, never doubled
    ok(vouch("attest-sbom", "--key", key, "--format", "cyclonedx-json", "--format", "spdx-json", debian_image))
    assert att_types(client, debian_image) == {CDX: 1, SPDX: 1}
    for cosign in COSIGNS:
        out = run_peer(peer(cosign), "verify-attestation", "--key", pub, "--type", "spdxjson", *VERIFY_OFFLINE,
                       debian_image, home=tmp_path)
        envs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        stmts = [json.loads(base64.b64decode(e["payload"])) for e in envs]
        assert [s["predicateType"] for s in stmts] == [SPDX]
        assert stmts[0]["predicate"]["spdxVersion"] == "SPDX-2.3"
        validate_spdx(stmts[0]["predicate"], tmp_path, f"{cosign}.json")
        # cosign's cyclonedx check still finds the CycloneDX statement, not the SPDX one
        cdx_out = run_peer(peer(cosign), "verify-attestation", "--key", pub, "--type", "cyclonedx", *VERIFY_OFFLINE,
                           debian_image, home=tmp_path)
        assert [json.loads(base64.b64decode(json.loads(x)["payload"]))["predicateType"]
                for x in cdx_out.stdout.splitlines() if x.strip()] == [CDX]
    v = ok(vouch("verify-attestation", "--key", pub, "--type", "spdxjson", "--max-age", "1d", debian_image))
    assert len(v.stdout.splitlines()) == 1
    downloaded = json.loads(ok(vouch("download", "sbom", "--format", "spdx-json", debian_image)).stdout)
    assert downloaded["spdxVersion"] == "SPDX-2.3" and downloaded == stmts[0]["predicate"]
    verified = json.loads(ok(vouch("download", "sbom", "--key", pub, "--format", "spdx-json", debian_image)).stdout)
    assert verified == downloaded
    assert json.loads(ok(vouch("download", "sbom", debian_image)).stdout)["bomFormat"] == "CycloneDX"


@pytest.mark.interop
@pytest.mark.parametrize("cosign", COSIGNS)
def test_vouch_verifies_cosign_spdx_attestation(cosign: str, registry: RegistryServer, client: RegistryClient,
                                                repo_name: str, tmp_path: Path) -> None:
    ref = Reference(registry.host, repo_name, "v1")
    image = f"{registry.host}/{repo_name}@{push_image(client, ref, small_image('spdx'))}"
    binary = peer(cosign)
    run_peer(binary, "generate-key-pair", home=tmp_path, cwd=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    doc = {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "x",
           "documentNamespace": "https://example.com/x", "packages": [],
           "creationInfo": {"created": "2020-01-01T00:00:00Z", "creators": ["Tool: x"]}}
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    flags = ["--tlog-upload=false", "--yes", "--allow-http-registry=true"]
    if cosign == "cosign3":
        flags += ["--new-bundle-format=false", "--use-signing-config=false"]
    run_peer(binary, "attest", "--key", str(tmp_path / "cosign.key"), "--type", "spdxjson", "--predicate",
             str(tmp_path / "doc.json"), *flags, image, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    pub = str(tmp_path / "cosign.pub")
    r = ok(vouch("verify-attestation", "--key", pub, "--type", "spdxjson", image))
    assert json.loads(base64.b64decode(json.loads(r.stdout)["payload"]))["predicate"] == doc
    # its creationInfo.created is 2020: --max-age refuses it as stale (exit 1, one line naming the age)
    stale = vouch("verify-attestation", "--key", pub, "--type", "spdxjson", "--max-age", "90d", image)
    assert stale.returncode == 1 and "SBOM expired" in stale.stderr and "Traceback" not in stale.stderr
    assert json.loads(ok(vouch("download", "sbom", "--format", "spdx-json", image)).stdout) == doc
