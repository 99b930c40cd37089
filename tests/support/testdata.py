"""Real test images built from real package databases, cached under ~/.cache/vouch-testdata.

`scripts/make-testdata.sh` makes the debootstrap tree; the images here are derived from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from vouch.testbed.rootfs import LayoutWriter, copy_tree, diff_tree, tar_tree

DATA = Path(os.environ.get("VOUCH_TESTDATA_DIR", Path.home() / ".cache" / "vouch-testdata"))
MINBASE = DATA / "bookworm-minbase"
IMAGES = DATA / "images-v1"
REMOVED_PACKAGE = "tzdata"


def require_minbase() -> Path:
    if not (MINBASE / ".complete").exists():
        msg = f"{MINBASE} is missing: run scripts/make-testdata.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return MINBASE


@dataclass
class DebianImage:
    layout: Path
    expected: dict[str, tuple[str, str, str]]  # package -> (version, arch, source)
    upper: Path


def dpkg_query(root: Path) -> dict[str, tuple[str, str, str]]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f",
                          "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\n"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        status, name, version, arch, source = line.split("\t")
        if status.startswith("ii"):
            result[name] = (version, arch, source)
    return result


def debian_minbase_image() -> Path:
    """The debootstrap tree as one layer (what trivy scans as a rootfs, as an image)."""
    base = require_minbase()
    out = IMAGES / "debian-minbase"
    if not (out / "index.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        work = IMAGES / "work-minbase"
        work.mkdir(parents=True, exist_ok=True)
        writer = LayoutWriter(out)
        tar_tree(base, work / "l1.tar", exclude=[".complete", "dev", "proc", "sys"])
        writer.add_layer_tar(work / "l1.tar")
        writer.finish("bookworm")
        shutil.rmtree(work)
    return out


def debian_layered() -> DebianImage:
    """3 layers: debootstrap minbase; `dpkg --purge tzdata` (whiteouts); an opaque dir and an app."""
    base = require_minbase()
    out = IMAGES / "debian-layered"
    upper = IMAGES / "debian-layered-upper"
    if not (out / "index.json").exists() or not upper.exists():
        shutil.rmtree(out, ignore_errors=True)
        work = IMAGES / "work"
        work.mkdir(parents=True, exist_ok=True)
        copy_tree(base, upper)
        subprocess.run(["chroot", str(upper), "dpkg", "--purge", REMOVED_PACKAGE], check=True, capture_output=True)
        writer = LayoutWriter(out)
        tar_tree(base, work / "l1.tar", exclude=[".complete", "dev", "proc", "sys"])
        writer.add_layer_tar(work / "l1.tar")
        diff_tree(base, upper, work / "l2.tar")
        writer.add_layer_tar(work / "l2.tar")
        with tarfile.open(work / "l3.tar", "w") as tf:
            for name, data in [("etc/apt/apt.conf.d/.wh..wh..opq", b""),
                               ("etc/apt/apt.conf.d/99vouch", b'APT::Install-Recommends "false";\n'),
                               ("opt/app/bin/app", b"#!/bin/sh\necho app\n")]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                import io

                tf.addfile(info, io.BytesIO(data))
        writer.add_layer_tar(work / "l3.tar")
        writer.finish("bookworm")
        shutil.rmtree(work)
    return DebianImage(out, dpkg_query(upper), upper)


RPM_SPECS = {
    "vouch-demo-lib": ("1.2.3", "4", None, "MIT", "x86_64", [], "/usr/lib64/libvouchdemo.so.1"),
    "vouch-demo-app": ("2.0", "1", 2, "GPL-2.0-or-later AND BSD-3-Clause", "x86_64", ["vouch-demo-lib"],
                       "/usr/bin/vouch-demo"),
    "vouch-demo-data": ("2026.04", "7", None, "CC0-1.0", "noarch", [], "/usr/share/vouch-demo/data.txt"),
    # 400 files: its header is larger than a 4 KiB page, so Berkeley DB stores it on overflow pages
    "vouch-demo-many": ("1.0", "1", None, "Apache-2.0", "noarch", [], "/usr/share/vouch-many/file-{i}.txt"),
}


@dataclass
class RpmRoot:
    root: Path  # a root with var/lib/rpm/rpmdb.sqlite made by real rpm
    bdb: Path  # a Berkeley DB hash Packages made by db5.3_load from the same headers
    expected: dict[str, tuple[str, str, str | None, str]]  # name -> (version-release, arch, epoch, sourcerpm)


def _spec(name: str, version: str, release: str, epoch: int | None, lic: str, arch: str, requires: list[str],
          path: str) -> str:
    lines = [f"Name: {name}", f"Version: {version}", f"Release: {release}", f"License: {lic}",
             f"Summary: vouch test package {name}", f"BuildArch: {arch}", "AutoReqProv: no"]
    if epoch is not None:
        lines.append(f"Epoch: {epoch}")
    lines += [f"Requires: {r}" for r in requires]
    paths = [path.format(i=i) for i in range(400)] if "{i}" in path else [path]
    lines += ["", "%description", f"{name} for vouch tests", "", "%install",
              f"mkdir -p %{{buildroot}}{Path(paths[0]).parent}"]
    lines += [f"echo {name} > %{{buildroot}}{p}" for p in paths]
    lines += ["", "%files", *paths, ""]
    return "\n".join(lines)


def rpm_root() -> RpmRoot:
    """Real rpms (rpmbuild) installed by real rpm into a root; plus a Berkeley DB copy of its headers."""
    for tool in ("rpmbuild", "rpm", "db5.3_load"):
        if shutil.which(tool) is None:
            msg = f"{tool} is missing: run scripts/make-testdata.sh"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
    out = IMAGES / "rpm-v2"
    root, bdb = out / "root", out / "bdb" / "Packages"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        top = out / "build"
        (top / "SPECS").mkdir(parents=True)
        for name, (v, r, e, lic, arch, req, path) in RPM_SPECS.items():
            spec = top / "SPECS" / f"{name}.spec"
            spec.write_text(_spec(name, v, r, e, lic, arch, req, path))
            subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_build_id_links none",
                            str(spec)], check=True, capture_output=True)
        rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "os-release").write_text('NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\n'
                                                 'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n')
        subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"], check=True,
                       capture_output=True)
        subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts",
                        "--ignorearch", "--ignoreos", *rpms], check=True, capture_output=True)
        # Berkeley DB: the same header blobs, loaded into a real hash database by libdb's own tool
        import sqlite3

        conn = sqlite3.connect(root / "var" / "lib" / "rpm" / "rpmdb.sqlite")
        rows = conn.execute("SELECT hnum, blob FROM Packages").fetchall()
        conn.close()
        dump = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END"]
        for hnum, blob in rows:
            dump.append(" " + int(hnum).to_bytes(4, "little").hex())
            dump.append(" " + bytes(blob).hex())
        dump.append("DATA=END")
        bdb.parent.mkdir(parents=True)
        subprocess.run(["db5.3_load", "-f", "/dev/stdin", str(bdb)], input="\n".join(dump) + "\n", text=True,
                       check=True, capture_output=True)
        shutil.rmtree(top)
        (out / ".complete").touch()
    q = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-qa", "--qf",
                        "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{EPOCH}\\t%{SOURCERPM}\\n"],
                       check=True, capture_output=True, text=True).stdout
    expected = {}
    for line in q.splitlines():
        n, vr, a, e, src = line.split("\t")
        expected[n] = (vr, a, None if e == "(none)" else e, src)
    return RpmRoot(root, bdb, expected)


def pip_tree() -> Path:
    """Real wheels from PyPI installed by pip into a site-packages tree (cached)."""
    out = IMAGES / "pip-site-packages"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(out),
                            "requests==2.32.3", "PyYAML==6.0.2", "attrs==24.2.0"], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"pip install for the test tree failed: {r.stderr[-1000:]}")
        (out / ".complete").touch()
    return out


def npm_tree() -> Path:
    """A real `npm install` of an application (cached): node_modules with nested and scoped packages."""
    out = IMAGES / "npm-app"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        deps = {"express": "4.19.2", "@types/node": "20.14.9"}
        (out / "package.json").write_text(json.dumps({"name": "akko-ui", "version": "2026.4.0", "private": True,
                                                       "dependencies": deps}))
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"npm install for the test tree failed: {r.stderr[-1000:]}")
        (out / ".complete").touch()
    return out
