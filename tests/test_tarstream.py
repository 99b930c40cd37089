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


def _read(data: bytes) -> list[tuple[str, str, int, str]]:
    return [(e.name, e.type, e.size, e.linkname) for e in TarReader(io.BufferedReader(io.BytesIO(data)))]  # type: ignore[arg-type]


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _meta(typeflag: bytes, payload: bytes, size: int | None = None) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = typeflag
    info.size = len(payload) if size is None else size
    return info.tobuf(format=tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512)


def _file(name: str, data: bytes = b"") -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512)


def test_pax_records_global_and_per_entry() -> None:
    """Global records apply to every later entry, an entry's own override them, the keys the scan does
    not use are dropped, and NUL padding or junk after the last record ends them (as tarfile reads them)."""
    junk = b"".join(_pax_record(f"SCHILY.xattr.user.k{i}", "v") for i in range(1000))
    g = _meta(tarfile.XGLTYPE, junk + _pax_record("linkpath", "global-target") + b"\0\0\0")
    x = _meta(tarfile.XHDTYPE, _pax_record("path", "über/long-" + "n" * 300) + _pax_record("mtime", "1.5") + b"junk")
    data = g + x + _file("short") + _file("plain", b"abc") + b"\0" * 1024
    assert _read(data) == [("über/long-" + "n" * 300, REG, 0, "global-target"), ("plain", REG, 3, "global-target")]


def test_bad_pax_records_and_huge_sizes_are_refused() -> None:
    with pytest.raises(TarFormatError, match="bad PAX record length"):
        _read(_meta(tarfile.XHDTYPE, b"99999 path=x\n") + _file("a"))
    with pytest.raises(TarFormatError, match="bad PAX record length"):
        _read(_meta(tarfile.XHDTYPE, b"3 path=x\n") + _file("a"))
    with pytest.raises(TarFormatError, match="bad PAX size"):
        _read(_meta(tarfile.XHDTYPE, _pax_record("size", "12x")) + _file("a"))
    with pytest.raises(TarFormatError, match="'x' metadata record of 4294967296 bytes is too large"):
        _read(_meta(tarfile.XHDTYPE, b"", size=4 * 1024**3))
    # a PAX size of gigabytes for an entry: its data is skipped, and the archive ends first
    with pytest.raises(TarFormatError, match="truncated"):
        _read(_meta(tarfile.XHDTYPE, _pax_record("size", str(8 * 1024**3))) + _file("a") + b"\0" * 4096)
    with pytest.raises(TarFormatError, match="longer than the limit"):
        _read(_meta(tarfile.GNUTYPE_LONGLINK, b"t" * 20_000 + b"\0") + _file("a"))
