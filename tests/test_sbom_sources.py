"""The sources and flags syft users type (issue 16 §3): `dir:PATH` (an unpacked root filesystem) with hostile
symlinks, syft's scheme names as aliases, an unknown scheme listing the known ones, `--scope all-layers`,
`--exclude`, and the stderr summary (platform, the digest scanned, packages per ecosystem)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.registry import RegistryServer
from tests.support.testdata import REMOVED_PACKAGE, debian_layered, debian_minbase_image, require_minbase
from vouch.oci.client import RegistryClient
from vouch.oci.copy import copy_image
from vouch.oci.reference import Reference
from vouch.oci.source import DirSource, LayoutSource, RegistrySource, open_source
from vouch.sbom.fsview import ViewOptions, exclude_matcher
from vouch.sbom.generate import generate_sbom

TS = "2026-04-25T10:00:00Z"
STATUS = """Package: {name}
Status: install ok installed
Architecture: amd64
Version: 1.0-1
Maintainer: Someone <someone@example.com>
Description: {name}

"""


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, env=os.environ)


def test_dir_source_reads_a_rootfs_like_its_image() -> None:
    """The debootstrap tree as dir: and as the one-layer image made from it: the same packages."""
    root = require_minbase()
    as_dir = generate_sbom(DirSource(root), timestamp=TS)
    as_image = generate_sbom(LayoutSource(debian_minbase_image(), None), timestamp=TS)
    assert {p.purl for p in as_dir.packages} == {p.purl for p in as_image.packages}
    assert len(as_dir.packages) > 80 and as_dir.distro is not None and as_dir.distro.id == "debian"
    assert as_dir.subject.kind == "directory" and as_dir.subject.digest.startswith("sha256:")
    doc = json.loads(as_dir.to_json())
    assert doc["metadata"]["component"]["type"] == "file" and "purl" not in doc["metadata"]["component"]
    spdx = json.loads(as_dir.to_json(format="spdx-json"))
    assert spdx["packages"][0]["SPDXID"].startswith("SPDXRef-DocumentRoot-Directory-")
    # the listing digest identifies the tree: the same tree, the same digest
    assert generate_sbom(DirSource(root), timestamp=TS).subject.digest == as_dir.subject.digest


def test_dir_source_never_leaves_the_root(tmp_path: Path) -> None:
    """Symlinks in the tree are read as the image would read them, inside the root: an absolute
    `etc/os-release -> /etc/passwd`, a `../../..` escape, a symlinked directory pointing outside; a fifo at
    a claimed path is never opened; a claimed file over its cataloger's limit is listed, not read."""
    outside = tmp_path / "outside"
    (outside / "dpkg").mkdir(parents=True)
    (outside / "dpkg" / "status").write_text(STATUS.format(name="outside-pkg"))
    (outside / "os-release").write_text('ID=outside\nVERSION_ID="1"\n')
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "var" / "lib").mkdir(parents=True)
    (root / "etc" / "os-release").symlink_to(outside / "os-release")  # absolute, to the host's file
    (root / "etc" / "lsb-release").symlink_to("../../../outside/os-release")
    (root / "var" / "lib" / "dpkg").symlink_to(outside / "dpkg", target_is_directory=True)
    (root / "usr" / "lib").mkdir(parents=True)
    os.mkfifo(root / "usr" / "lib" / "os-release")  # a claimed path: opening it would block
    (root / "opt" / "big" / "var" / "lib" / "dpkg").mkdir(parents=True)
    result = generate_sbom(DirSource(root), timestamp=TS)
    assert result.packages == [] and result.distro is None  # nothing outside the root was read
    assert result.view.nodes["var/lib/dpkg"].kind == "l"  # the symlink is recorded, never followed
    assert result.view.nodes["usr/lib/os-release"].kind == "o"

    # a status file inside the root, and one over the dpkg cataloger's limit (sparse: no disk used)
    (root / "var" / "lib" / "dpkg").unlink()
    (root / "var" / "lib" / "dpkg").mkdir()
    (root / "var" / "lib" / "dpkg" / "status").write_text(STATUS.format(name="inside-pkg"))
    with open(root / "var" / "lib" / "dpkg" / "status.d", "wb") as f:  # a file, not the distroless dir
        f.truncate(1)
    huge = root / "opt" / "big" / "var" / "lib" / "dpkg" / "status"
    with open(huge, "wb") as f:
        f.truncate(300 * 1024 * 1024)
    result = generate_sbom(DirSource(root), timestamp=TS)
    assert [p.name for p in result.packages] == ["inside-pkg"]


def test_source_aliases_and_unknown_schemes(registry: RegistryServer, client: RegistryClient,
                                            repo_name: str, tmp_path: Path) -> None:
    layout = debian_layered().layout
    ref = Reference(registry.host, repo_name, "v1")
    copy_image(LayoutSource(layout, None), client, ref)
    digest = client.resolve(ref).digest
    a = open_source(f"registry:{registry.host}/{repo_name}:v1", client)
    assert isinstance(a, RegistrySource) and a.resolve().digest == digest
    b = open_source(f"oci-dir:{layout}", client)
    assert isinstance(b, LayoutSource) and b.resolve().digest == digest
    assert isinstance(open_source(f"dir:{tmp_path}", client), DirSource)
    # `alpine:3.20` and `localhost:5000/app` stay references; `dir2:/x` is an unknown scheme
    for spec in ("dir2:/rootfs", "file:./image.tar", "podman:/x", "s3://bucket/image"):
        r = vouch("sbom", spec)
        assert r.returncode == 2, (spec, r.stderr)
        line = r.stderr.strip()
        assert "\n" not in line and "unknown source scheme" in line and "dir:" in line and "oci-archive:" in line
    r = vouch("digest", f"dir:{tmp_path}")
    assert r.returncode == 2 and "is a directory, not an image" in r.stderr
    r = vouch("sbom", "dir:/nonexistent/rootfs")
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr


def test_scope_all_layers_marks_what_later_layers_deleted() -> None:
    """debian-layered purges tzdata in layer 2 (dpkg rewrote its status, the files are whited out)."""
    layout = debian_layered().layout
    squashed = generate_sbom(LayoutSource(layout, None), timestamp=TS)
    every = generate_sbom(LayoutSource(layout, None), timestamp=TS, options=ViewOptions(scope="all-layers"))
    assert REMOVED_PACKAGE not in {p.name for p in squashed.packages}
    gone = [p for p in every.packages if "vouch:package:deleted-by-layerID" in p.properties]
    assert [p.name for p in gone] == [REMOVED_PACKAGE]
    assert gone[0].properties["vouch:package:deleted-by-layerIndex"] == "1"
    assert gone[0].properties["vouch:package:deleted-by-layerID"] == every.subject.layer_diff_ids[1]  # type: ignore[index]
    assert {p.purl for p in every.packages} - {p.purl for p in squashed.packages} == {gone[0].purl}
    # a package still there is listed once, unmarked, where it was first found (the status file of layer 1)
    bash = [p for p in every.packages if p.name == "bash"]
    assert len(bash) == 1 and not any(k.startswith("vouch:package:deleted") for k in bash[0].properties)
    assert {loc.layer_index for loc in bash[0].locations} == {0}
    cdx = json.loads(every.to_json())
    props = {x["name"]: x["value"] for c in cdx["components"] if c["name"] == REMOVED_PACKAGE
             for x in c["properties"]}
    assert props["vouch:package:deleted-by-layerIndex"] == "1"


def test_exclude_globs() -> None:
    m = exclude_matcher(("./var/lib/dpkg/**", "/usr/share/doc", "**/*.pyc", "*/tmp/*"))
    assert m is not None
    assert m("var/lib/dpkg/status") and m("usr/share/doc/bash/copyright") and m("usr/share/doc")
    assert m("usr/lib/python3/x.pyc") and m("x.pyc") and m("var/tmp/a") and not m("tmp/a/b/c")
    assert not m("var/lib/dpkgx") and not m("usr/share/docs")
    layout = debian_layered().layout
    result = generate_sbom(LayoutSource(layout, None), timestamp=TS,
                           options=ViewOptions(exclude=("./var/lib/dpkg/**",)))
    assert [p for p in result.packages if p.type == "deb"] == [] and result.view.excluded > 100
    r = vouch("sbom", f"oci:{layout}", "--exclude", "**")
    assert r.returncode == 2 and "would exclude everything" in r.stderr


def test_summary_names_platform_digest_and_ecosystems(tmp_path: Path) -> None:
    layout = debian_layered().layout
    r = vouch("sbom", f"oci:{layout}", "--timestamp", TS, "-o", f"spdx-json={tmp_path / 'x.spdx.json'}")
    assert r.returncode == 0, r.stderr
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    lines = r.stderr.strip().splitlines()
    assert lines[-2].startswith(f"scanned oci:{layout}@{digest} [linux/amd64]: 87 packages")
    assert "(spdx-json)" in lines[-2]
    assert lines[-1] == "packages per ecosystem: deb 87"
    assert json.loads((tmp_path / "x.spdx.json").read_text())["spdxVersion"] == "SPDX-2.3"
    # layer numbering in messages says what it counts: "layer 1 of 3"
    r = vouch("-v", "sbom", f"oci:{layout}", "--format", "cyclonedx-json")
    assert r.returncode == 0 and "layer 1 of 3 (sha256:" in r.stderr
    assert json.loads(r.stdout)["bomFormat"] == "CycloneDX"
    bad = vouch("sbom", f"oci:{layout}", "--format", "syft-table")
    assert bad.returncode == 2 and "unknown SBOM format" in bad.stderr and "spdx-json" in bad.stderr
    bad = vouch("sbom", f"oci:{layout}", "--scope", "everything")
    assert bad.returncode == 2 and "unknown --scope" in bad.stderr
