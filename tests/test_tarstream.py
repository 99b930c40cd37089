"""Our streaming tar reader against archives written by real GNU tar, with tarfile as the reference."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from vouch.sbom.tarstream import REG, TarFormatError, TarReader


def _tree(root: Path, long_names: bool) -> None:
    deep = root / ("d" * 60) / ("e" * 60) / ("f" * 60) if long_names else root / "d" / "e"
    deep.mkdir(parents=True)
    (deep / (("long-file-name-" * 10 if long_names else "file") + ".txt")).write_bytes(b"x" * 1000)
    (root / "small").write_bytes(b"hello\n")
    (root / "big").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (root / "empty").write_bytes(b"")
    os.symlink("small", root / "link-to-small")
    if long_names:
        os.symlink("../" + "t" * 150, root / "long-symlink-target")
    os.link(root / "small", root / "hard-to-small")
    (root / "ünïcödé-name").write_bytes(b"u")


@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar", "v7"])
def test_matches_tarfile_on_gnu_tar_output(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _tree(src, long_names=fmt in ("gnu", "posix"))  # ustar and v7 cannot hold names over 100/255 bytes
    archive = tmp_path / "a.tar"
    r = subprocess.run(["tar", f"--format={fmt}", "-cf", str(archive), "-C", str(src), "."], capture_output=True)
    assert r.returncode == 0, r.stderr
    with tarfile.open(archive) as tf:
        ref = [(m.name, m.size if m.isreg() else 0, m.linkname) for m in tf.getmembers()]
        assert any(m.issym() for m in tf.getmembers()) and any(m.islnk() for m in tf.getmembers())
        contents = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isreg()}  # type: ignore[union-attr]
    ours = []
    got_contents = {}
    with archive.open("rb") as f:
        reader = TarReader(io.BufferedReader(f))  # type: ignore[arg-type]
        for e in reader:
            ours.append((e.name.rstrip("/") or e.name, e.size, e.linkname))
            if e.type == REG and e.name.endswith(("small", ".txt", "name")):
                got_contents[e.name] = reader.read_data(1 << 20)
    assert ours == ref
    for name, data in got_contents.items():
        assert data == contents[name]


def test_corrupt_header_and_truncation(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("a")
        info.size = 5000
        tf.addfile(info, io.BytesIO(b"a" * 5000))
    data = bytearray(buf.getvalue())
    bad = bytearray(data)
    bad[0] ^= 0x20
    with pytest.raises(TarFormatError, match="checksum"):
        list(TarReader(io.BufferedReader(io.BytesIO(bytes(bad)))))  # type: ignore[arg-type]
    with pytest.raises(TarFormatError, match="truncated"):
        list(TarReader(io.BufferedReader(io.BytesIO(bytes(data[:2000])))))  # type: ignore[arg-type]
