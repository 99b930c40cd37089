"""SBOMs of images built from real package databases, read from the real registry."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.support.registry import RegistryServer
from tests.support.testdata import REMOVED_PACKAGE, deb_tree, debian_layered, require_minbase, rpm_root
from vouch.oci.build import Image, Layer, TarEntry, write_layout
from vouch.oci.client import RegistryClient
from vouch.oci.copy import copy_image
from vouch.oci.reference import Reference
from vouch.oci.source import LayoutSource, RegistrySource
from vouch.sbom.catalogers.dpkg import parse_paragraphs
from vouch.sbom.generate import SbomResult, generate_sbom

TS = "2026-04-25T10:00:00Z"


def validate(text: str) -> dict:  # type: ignore[type-arg]
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert errors is None, errors
    return json.loads(text)  # type: ignore[no-any-return]


def no_duplicates(result: SbomResult) -> None:
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls))
    keys = [p.key for p in result.packages]
    assert len(keys) == len(set(keys))


@pytest.fixture(scope="module")
def debian_in_registry(registry: RegistryServer) -> tuple[Reference, object]:
    img = debian_layered()
    ref = Reference(registry.host, "sbom/debian", "bookworm")
    with RegistryClient() as c:
        copy_image(LayoutSource(img.layout, None), c, ref)
    return ref, img


def test_debian_layered_matches_dpkg(debian_in_registry: tuple[Reference, object], client: RegistryClient) -> None:
    ref, img = debian_in_registry
    result = generate_sbom(RegistrySource(client, ref), timestamp=TS)
    expected = img.expected  # type: ignore[attr-defined]
    got = {p.name: p for p in result.packages}
    assert set(got) == set(expected)  # every installed package, exactly once; no extras
    assert REMOVED_PACKAGE not in got  # purged in layer 2 (whiteouts), gone from the BOM
    for name, (version, arch, source) in expected.items():
        p = got[name]
        assert (p.version, p.arch, p.source) == (version, arch, source), name
        assert "distro=debian-12" in p.purl and f"arch={arch}" in p.purl
    no_duplicates(result)
    assert result.distro is not None and (result.distro.id, result.distro.version_id) == ("debian", "12")
    # licences from DEP-5 copyright files, as SPDX ids where certain
    assert "GPL-3.0-or-later" in got["bash"].licenses
    # the base packages came with layer 1; their evidence says so
    assert all(loc.layer_index == 0 for loc in got["libc6"].locations)
    # dependencies resolved to installed packages
    assert "libc6" in got["bash"].depends


def test_debian_bom_document(debian_in_registry: tuple[Reference, object], client: RegistryClient) -> None:
    ref, _ = debian_in_registry
    digest = client.resolve(ref).digest
    a = generate_sbom(RegistrySource(client, ref), timestamp=TS).to_json()
    b = generate_sbom(RegistrySource(client, ref), timestamp=TS).to_json()
    assert a == b  # same image, same pinned timestamp: byte-identical BOM
    doc = validate(a)
    meta = doc["metadata"]
    assert meta["timestamp"].startswith("2026-04-25T10:00:00")
    assert meta["component"]["type"] == "container" and meta["component"]["version"] == digest
    assert meta["component"]["name"] == ref.name
    assert meta["tools"]["components"][0]["name"] == "vouch"
    os_comp = [c for c in doc["components"] if c["type"] == "operating-system"]
    assert len(os_comp) == 1 and os_comp[0]["name"] == "debian" and os_comp[0]["version"] == "12"
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    libc = next(c for c in doc["components"] if c["name"] == "libc6")
    assert libc["evidence"]["occurrences"][0]["location"] == "/var/lib/dpkg/status"
    props = {p["name"]: p["value"] for p in libc["properties"]}
    assert props["vouch:location:0:layerID"].startswith("sha256:")
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    bash = next(c for c in doc["components"] if c["name"] == "bash")
    assert libc["bom-ref"] in deps[bash["bom-ref"]]


def test_cli_sbom_source_date_epoch(debian_in_registry: tuple[Reference, object], tmp_path: Path) -> None:
    ref, _ = debian_in_registry
    out = tmp_path / "bom.json"
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1777111200"}
    r = subprocess.run([sys.executable, "-m", "vouch", "sbom", str(ref), "--output-file", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = validate(out.read_text())
    assert doc["metadata"]["timestamp"].startswith("2026-04-25T10:00:00")


def _layout(tmp_path: Path, image: Image, name: str = "img") -> LayoutSource:
    write_layout(tmp_path / name, image)
    return LayoutSource(tmp_path / name, None)


def test_distroless_status_d(tmp_path: Path) -> None:
    """distroless keeps one control file per package in status.d, md5sums beside, copyright symlinked."""
    base = require_minbase()
    paragraphs = parse_paragraphs((base / "var/lib/dpkg/status").read_text())
    wanted = {"libc6", "base-files", "tzdata", "libssl3", "zlib1g", "gcc-12-base"}
    files: dict[str, bytes | TarEntry] = {
        "etc/os-release": (base / "etc/os-release").read_bytes(),
    }
    raw_status = (base / "var/lib/dpkg/status").read_text().split("\n\n")
    present = set()
    for block in raw_status:
        fields = parse_paragraphs(block)
        if not fields or fields[0].get("Package") not in wanted:
            continue
        name = fields[0]["Package"]
        present.add(name)
        files[f"var/lib/dpkg/status.d/{name}"] = (block.strip() + "\n").encode()
        md5 = base / f"var/lib/dpkg/info/{name}:amd64.md5sums"
        if not md5.exists():
            md5 = base / f"var/lib/dpkg/info/{name}.md5sums"
        if md5.exists():
            files[f"var/lib/dpkg/status.d/{name}.md5sums"] = md5.read_bytes()
        cp = base / f"usr/share/doc/{name}/copyright"
        if cp.exists():
            files[f"usr/share/doc/{name}/copyright"] = cp.read_bytes()
    # distroless ships some copyright files as symlinks to another package's
    files["usr/share/doc/gcc-12-base/copyright"] = TarEntry(type=b"2", linkname="../libc6/copyright")
    assert len(paragraphs) > 50 and present
    result = generate_sbom(_layout(tmp_path, Image([Layer.from_files(files)])), timestamp=TS)
    got = {p.name: p for p in result.packages}
    assert set(got) == present
    assert got["gcc-12-base"].licenses == got["libc6"].licenses  # followed the symlink
    assert got["libc6"].files  # md5sums in status.d give file ownership
    no_duplicates(result)


# Alpine's package repository is not reachable from this machine: this installed database is
# written in apk's real format with the metadata of real Alpine 3.20 packages.
APK_INSTALLED = """C:Q1uTH2X4c4mhvuyTyV63N7gkbc5xo=
P:musl
V:1.2.5-r0
A:x86_64
S:411323
I:649216
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712101741
c:6a08d6cd22a0ac4e5ea5ec2a3ed4bb65b9d1e8a4
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1x+cQ6VJP3Q8fcqbbdFWD5GbqbRo=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1Wq1yhBcv7OIkmHdLXGtqm6kzqBU=
P:busybox
V:1.36.1-r29
A:x86_64
S:505633
I:925696
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1716373556
c:1dbfbd4d3a5a6e1e5cb1f1b8c6b0b7d8a4c2a1f9
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r29 cmd:sh=1.36.1-r29
F:bin
R:busybox
a:0:0:755
Z:Q1ly4U6Y5cJCh5M2lh0jL9Xo8/ryg=
R:sh
a:0:0:777

C:Q1Bw5mQk5a0zLHYJjHJg3V2ZO7nB0=
P:libcrypto3
V:3.3.2-r0
A:x86_64
S:1780233
I:4431872
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1725367845
c:7a7e8fb0a2b1c8d5f2ea71f4a3a3b0c7e6c55a0b
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:usr
F:usr/lib
R:libcrypto.so.3
a:0:0:755

C:Q1xU5ZtYX6bGq8pH0Q8DqC2s1wq3I=
P:libssl3
V:3.3.2-r0
A:x86_64
S:348312
I:802816
T:SSL shared libraries
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1725367845
c:7a7e8fb0a2b1c8d5f2ea71f4a3a3b0c7e6c55a0b
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3
p:so:libssl.so.3=3
F:usr
F:usr/lib
R:libssl.so.3
a:0:0:755

C:Q1p6U2W9J0rQy8bqOnwPfVqk4v3lA=
P:ca-certificates-bundle
V:20240705-r0
A:x86_64
S:126403
I:229376
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1720168012
c:3c4ab7a7c6bd3d8e6ad3cd2b05a4f1f0f7a0d1e2
F:etc
F:etc/ssl
F:etc/ssl/certs
R:ca-certificates.crt
a:0:0:644
"""


def test_apk_installed_db(tmp_path: Path) -> None:
    files: dict[str, bytes | TarEntry] = {
        "etc/os-release": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
        "etc/alpine-release": b"3.20.3\n",
        "lib/apk/db/installed": APK_INSTALLED.encode(),
        "lib/ld-musl-x86_64.so.1": b"\x7fELF",
        # a real busybox binary (Debian's static build): the busybox classifier recognises it, and the apk
        # database owns /bin/busybox, so it is that apk package and not a second busybox component
        "bin/busybox": TarEntry(data=(deb_tree("busybox-static") / "root" / "bin" / "busybox").read_bytes(),
                                mode=0o755),
    }
    result = generate_sbom(_layout(tmp_path, Image([Layer.from_files(files)])), timestamp=TS)
    got = {p.name: p for p in result.packages}
    assert set(got) == {"musl", "busybox", "libcrypto3", "libssl3", "ca-certificates-bundle"}
    assert got["busybox"].type == "apk"
    assert got["libssl3"].purl == ("pkg:apk/alpine/libssl3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3"
                                   "&upstream=openssl")
    assert got["musl"].purl == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"
    assert got["ca-certificates-bundle"].licenses == ["MPL-2.0", "MIT"]
    assert "/lib/ld-musl-x86_64.so.1" in got["musl"].files
    doc = validate(result.to_json())
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    # so: dependencies resolve through `provides`
    assert got["libcrypto3"].purl in deps[got["libssl3"].purl]
    assert got["musl"].purl in deps[got["libssl3"].purl]


def _ndb(blobs: list[bytes]) -> bytes:
    """An ndb Packages.db laid out as rpm's rpmpkg.c does (Debian's rpm cannot write ndb)."""
    slots_pages = 1
    header = struct.pack("<IIII16x", int.from_bytes(b"RpmP", "little"), 0, 1, slots_pages)
    slots = bytearray()
    data = bytearray()
    block = (32 + slots_pages * 4096 - 32) // 16  # first free 16-byte block after the slot pages
    offset = block
    for i, blob in enumerate(blobs, start=1):
        body = struct.pack("<IIII", int.from_bytes(b"BlbS", "little"), i, 0, len(blob)) + blob + b"\0" * 12
        body += b"\0" * (-len(body) % 16)
        slots += struct.pack("<IIII", int.from_bytes(b"Slot", "little"), i, offset, len(body) // 16)
        data += body
        offset += len(body) // 16
    n_slots = slots_pages * 256 - 2
    slots += struct.pack("<IIII", int.from_bytes(b"Slot", "little"), 0, 0, 0) * (n_slots - len(blobs))
    return header + bytes(slots) + bytes(data)


@pytest.mark.parametrize("layout", ["sqlite", "sysimage-sqlite", "bdb", "ndb"])
def test_rpm_databases(tmp_path: Path, layout: str) -> None:
    rr = rpm_root()
    sqlite_db = (rr.root / "var/lib/rpm/rpmdb.sqlite").read_bytes()
    os_release = (rr.root / "etc/os-release").read_bytes()
    files: dict[str, bytes | TarEntry] = {"etc/os-release": os_release, "usr/bin/vouch-demo": b"demo"}
    if layout == "sqlite":
        files["var/lib/rpm/rpmdb.sqlite"] = sqlite_db
    elif layout == "sysimage-sqlite":
        files["usr/lib/sysimage/rpm/rpmdb.sqlite"] = sqlite_db
    elif layout == "bdb":
        files["var/lib/rpm/Packages"] = rr.bdb.read_bytes()
    else:
        import sqlite3

        conn = sqlite3.connect(rr.root / "var/lib/rpm/rpmdb.sqlite")
        blobs = [bytes(b) for (b,) in conn.execute("SELECT blob FROM Packages ORDER BY hnum")]
        conn.close()
        files["usr/lib/sysimage/rpm/Packages.db"] = _ndb(blobs)
    result = generate_sbom(_layout(tmp_path, Image([Layer.from_files(files)])), timestamp=TS)
    got = {p.name: p for p in result.packages}
    assert set(got) == set(rr.expected)
    for name, (vr, arch, epoch, srpm) in rr.expected.items():
        p = got[name]
        assert p.arch == arch
        assert p.version == (f"{epoch}:{vr}" if epoch else vr)
        assert "distro=rocky-9.4" in p.purl and f"upstream={srpm}" in p.purl
        assert (f"epoch={epoch}" in p.purl) == bool(epoch)
    assert got["vouch-demo-app"].licenses == ["GPL-2.0-or-later", "BSD-3-Clause"]
    assert len(got["vouch-demo-many"].files) == 400
    assert got["vouch-demo-app"].depends == ["vouch-demo-lib"]
    validate(result.to_json())
    no_duplicates(result)
