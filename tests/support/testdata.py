"""Real test images built from real package databases, cached under ~/.cache/vouch-testdata.

`scripts/make-testdata.sh` makes the debootstrap tree; the images here are derived from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
