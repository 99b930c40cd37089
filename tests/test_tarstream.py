"""Our streaming tar reader against archives written by real GNU tar, with tarfile as the reference."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vouch.errors import InputError
from vouch.sbom.streams import open_layer_stream
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
        reader = TarReader(io.BufferedReader(f))
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
        list(TarReader(io.BufferedReader(io.BytesIO(bytes(bad)))))
    with pytest.raises(TarFormatError, match="truncated"):
        list(TarReader(io.BufferedReader(io.BytesIO(bytes(data[:2000])))))


def _read(data: bytes) -> list[tuple[str, str, int, str]]:
    return [(e.name, e.type, e.size, e.linkname) for e in TarReader(io.BufferedReader(io.BytesIO(data)))]


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


class _Chunks:
    """A ChunkSource handing the archive on in pieces of the given sizes (the decompressed chunks of a layer)."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes, self.pos, self.pulls = data, sizes, 0, 0

    def next_chunk(self) -> bytes:
        if self.pos >= len(self.data):
            return b""
        n = self.sizes[self.pulls % len(self.sizes)]
        self.pulls += 1
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def _archive() -> tuple[bytes, dict[str, bytes]]:
    contents = {"a.txt": b"hello\n" * 300, "dir/" + "long-" * 40 + "name": b"x" * 513, "empty": b"",
                "über/unicode": os.urandom(5000)}
    parts = []
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for name, data in contents.items():
                if fmt == tarfile.USTAR_FORMAT and len(name) > 100:
                    continue
                info = tarfile.TarInfo(f"{fmt}/{name}")
                info.size, info.mode, info.mtime = len(data), 0o755, 1.5  # a fractional mtime: a PAX record
                tf.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo(f"{fmt}/link")
            link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
            tf.addfile(link)
            end = tf.offset  # the last member's end: the archives follow each other without end blocks
        parts.append(buf.getvalue()[:end])
    return b"".join(parts) + bytes(1024), contents


@pytest.mark.parametrize("sizes", [[1], [511, 513], [7, 1 << 20], [512], [100_000], [3, 1, 4, 1, 5, 9, 2, 6]])
def test_chunk_boundaries_anywhere(sizes: list[int]) -> None:
    """Headers, PAX records and data split across chunks at every kind of place read as from one piece, and
    what is skipped or read comes out the same (TarReader walks the chunks by offset, without copies)."""
    data, contents = _archive()
    whole = [(e.name, e.type, e.size, e.linkname, e.mode) for e in TarReader(io.BufferedReader(io.BytesIO(data)))]
    assert len(whole) == 3 * 5 - 1 and {m for *_, m in whole} == {0o755, 0o644}
    src = _Chunks(data, sizes)
    reader = TarReader(src)
    seen, read = [], {}
    for i, e in enumerate(reader):
        seen.append((e.name, e.type, e.size, e.linkname, e.mode))
        if e.type == REG and i % 2 == 0:  # read every other file, in pieces; skip the rest
            got = reader.read_chunk(10) + reader.read_chunk(1 << 20)
            assert reader.read_chunk(10) == b""
            read[e.name.split("/", 1)[1]] = got
    assert seen == whole and src.pos >= len(data) - 512  # up to the first end-of-archive block
    assert read and all(contents[name] == got for name, got in read.items())


def test_checksums_as_other_tars_write_them() -> None:
    """The checksum field in other spellings than GNU tar's `%06o NUL SPACE` (7 digits and a NUL, space
    padded, summed as signed chars by old tars) is parsed and accepted; a wrong one is refused."""
    base = bytearray(_file("a", b"data"))

    def with_checksum(field: bytes, signed: bool = False) -> bytes:
        h = bytearray(base[:512])
        if signed:
            h[0:1] = b"\xe9"  # a byte above 127: signed and unsigned sums differ
        h[148:156] = b" " * 8
        total = sum(h) if not signed else sum(b - 256 if b > 127 else b for b in h)
        h[148:156] = field % total
        return bytes(h) + bytes(base[512:])

    assert _read(with_checksum(b"%07o\0"))[0][0] == "a"
    assert _read(with_checksum(b"  %05o "))[0][0] == "a"
    assert _read(with_checksum(b"%06o\0 ", signed=True))[0][0] == "\udce9"
    with pytest.raises(TarFormatError, match="checksum mismatch"):
        _read(with_checksum(b"%06o\0 ")[:148] + b"0000001\0" + base[156:])


def _layer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vouch-layer") and t.is_alive()]


def test_layer_stream_stages_hand_on_errors_and_stop() -> None:
    """The two stages of a layer stream (read + digest, inflate): an error of the source at the blob's end (a
    digest mismatch) reaches the consumer through both; closing early, with both stages busy or waiting,
    stops both threads."""
    data, _ = _archive()
    blob = gzip.compress(data * 40, mtime=0)

    def source(fail: bool) -> Iterator[bytes]:
        for i in range(0, len(blob), 4096):
            yield blob[i:i + 4096]
        if fail:
            raise InputError("blob sha256:x has content digest sha256:y")

    producer, stream = open_layer_stream(source(fail=True), "layer 1", 1 << 30, 1000.0)
    try:
        assert sum(1 for _ in TarReader(stream)) == 14
        with pytest.raises(InputError, match="content digest"):
            producer.finish()
    finally:
        producer.close()
    producer, stream = open_layer_stream(source(fail=False), "layer 1", 1 << 30, 1000.0)
    assert stream.next_chunk()  # the stages run ahead and wait on their full queues
    producer.close()
    assert _layer_threads() == []
