"""Hostile and broken layers: handled safely, each with a clear one-line error or a warning."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
import zstandard

from vouch.errors import InputError
from vouch.oci import mediatypes as mt
from vouch.oci.build import Image, Layer, TarEntry, make_tar, write_layout
from vouch.oci.source import LayoutSource
from vouch.sbom.catalogers.dpkg import DpkgCataloger
from vouch.sbom.fsview import ViewOptions
from vouch.sbom.generate import SbomResult, generate_sbom

STATUS = b"""Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""
OS = b'ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n'


def raw_tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def entry(name: str, data: bytes = b"", type: bytes = tarfile.REGTYPE,
          linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = type
    info.linkname = linkname
    return info, data


def sbom_of(tmp_path: Path, layers: list[Layer], options: ViewOptions | None = None,
            catalogers: list[DpkgCataloger] | None = None) -> SbomResult:
    write_layout(tmp_path / "img", Image(layers))
    return generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z", options=options,
                         catalogers=catalogers)  # type: ignore[arg-type]


def gz_layer(tar: bytes) -> Layer:
    return Layer(tar, gzip.compress(tar, mtime=0), mt.OCI_LAYER_GZIP)


def test_absolute_and_dotdot_paths_are_clamped(tmp_path: Path) -> None:
    tar = raw_tar([entry("/etc/os-release", OS), entry("../../var/lib/dpkg/status", STATUS)])
    r = sbom_of(tmp_path, [gz_layer(tar)])
    assert [p.name for p in r.packages] == ["zlib1g"]  # deinstalled 'oldpkg' skipped
    assert any("'..' components" in w for w in r.warnings)
    assert "var/lib/dpkg/status" in r.view.nodes and not any(k.startswith("..") for k in r.view.nodes)


def test_links_never_leave_the_root(tmp_path: Path) -> None:
    tar = raw_tar([
        entry("etc/os-release", OS),
        entry("var/lib/dpkg/status", b"", tarfile.SYMTYPE, "../../../../../../etc/shadow"),
        entry("loop/a", b"", tarfile.SYMTYPE, "b"), entry("loop/b", b"", tarfile.SYMTYPE, "a"),
        entry("usr/share/doc/zlib1g/copyright", b"", tarfile.SYMTYPE, "/../../../etc/passwd"),
    ])
    r = sbom_of(tmp_path, [gz_layer(tar)])
    assert r.view.resolve("var/lib/dpkg/status") == "etc/shadow"  # inside the image, never the host
    assert r.view.resolve("loop/a") in ("loop/a", "loop/b")  # a loop terminates
    assert r.packages == []


def test_hardlink_to_missing_target_and_device_files(tmp_path: Path) -> None:
    tar = raw_tar([
        entry("etc/os-release", OS),
        entry("var/lib/dpkg/status", b"", tarfile.LNKTYPE, "nowhere/status"),
        entry("dev/sda", b"", tarfile.BLKTYPE), entry("dev/null", b"", tarfile.CHRTYPE),
        entry("run/fifo", b"", tarfile.FIFOTYPE),
    ])
    r = sbom_of(tmp_path, [gz_layer(tar)])
    assert any("hard link" in w and "missing" in w for w in r.warnings)
    assert r.view.nodes["dev/sda"].kind == "o"


def test_hardlink_to_claimed_file_keeps_content(tmp_path: Path) -> None:
    tar = raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status.real", STATUS),
                   entry("var/lib/dpkg/status", b"", tarfile.LNKTYPE, "var/lib/dpkg/status.real")])
    # status.real is not claimed, so the hard link has no parsed content; a claimed target does:
    tar2 = raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status", STATUS),
                    entry("var/lib/dpkg/status.d/zlib1g", b"", tarfile.LNKTYPE, "var/lib/dpkg/status")])
    assert sbom_of(tmp_path / "a", [gz_layer(tar)]).packages == []
    r = sbom_of(tmp_path / "b", [gz_layer(tar2)])
    assert [p.name for p in r.packages] == ["zlib1g"]  # same package via two paths: listed once


def test_duplicate_entries_last_wins(tmp_path: Path) -> None:
    tar = raw_tar([entry("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.0\n"), entry("etc/os-release", OS),
                   entry("var/lib/dpkg/status", STATUS)])
    r = sbom_of(tmp_path, [gz_layer(tar)])
    assert r.distro is not None and r.distro.id == "debian"


def test_giant_claimed_entry_is_skipped(tmp_path: Path) -> None:
    class Small(DpkgCataloger):
        max_file_bytes = 100

    tar = raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status", STATUS)])
    r = sbom_of(tmp_path, [gz_layer(tar)], catalogers=[Small()])
    assert r.packages == []
    assert any("over the dpkg limit" in w for w in r.warnings)


def _zero_bomb(size: int) -> bytes:
    tar_head = make_tar({"bomb": b""})[:512]
    info = tarfile.TarInfo("bomb")
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = z.compress(header)
    chunk = b"\0" * (1 << 20)
    for _ in range(size // len(chunk)):
        out += z.compress(chunk)
    out += z.flush()
    assert tar_head
    return out


def test_gzip_bomb_refused(tmp_path: Path) -> None:
    blob = _zero_bomb(64 * 1024 * 1024)  # 64 MiB of zeros in ~64 KiB
    layer = Layer(b"", blob, mt.OCI_LAYER_GZIP)
    with pytest.raises(InputError) as info:
        sbom_of(tmp_path, [layer], options=ViewOptions(ratio_floor=8 * 1024 * 1024))
    assert "decompression bomb" in str(info.value) and "layer 1" in str(info.value)
    with pytest.raises(InputError, match="decompresses to more than"):
        sbom_of(tmp_path / "b", [layer], options=ViewOptions(max_layer_bytes=16 * 1024 * 1024))


def _zstd_rle_bomb(size: int, window_log: int = 23) -> bytes:
    """A zstd frame holding a tar header for a `size`-byte file of zeros, then RLE blocks: every 4
    bytes of the frame are 128 KiB of output (what `ZstdCompressor(level=19)` makes of zeros, written
    directly so that building it costs nothing)."""
    info = tarfile.TarInfo("bomb")
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    frame = bytearray(b"\x28\xb5\x2f\xfd")
    frame += bytes([0x00, (window_log - 10) << 3])  # no content size, not single-segment; the window
    frame += (len(header) << 3).to_bytes(3, "little") + header  # a raw block: the tar header
    blocks = size // (128 * 1024)
    for i in range(blocks):  # RLE blocks of 128 KiB of \0, the last one flagged
        frame += ((128 * 1024) << 3 | 1 << 1 | (i == blocks - 1)).to_bytes(3, "little") + b"\0"
    return bytes(frame)


_PEAK_RSS = r"""
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))  # a regression fails, never the host
from vouch.errors import VouchError
from vouch.oci.source import LayoutSource
from vouch.sbom.generate import generate_sbom
try:
    generate_sbom(LayoutSource(Path(sys.argv[1]), None), timestamp="2026-04-25T10:00:00Z")
    print("no error")
except VouchError as exc:
    print(exc)
except MemoryError:
    print("MemoryError")
# VmHWM, not ru_maxrss: Linux carries the forked parent's peak (the whole pytest process) across exec into
# ru_maxrss, while VmHWM belongs to this process's own memory since exec.
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024)
"""


@pytest.mark.parametrize("window_log", [23, 27])
def test_zstd_bomb_refused_with_flat_memory(tmp_path: Path, window_log: int) -> None:
    """12 KiB of zstd RLE blocks inflate to 375 MiB: refused as a bomb while the scan's peak RSS stays
    flat (the decoder used to return all of it from one call: 432 MiB). The decoder's own window,
    which the frame asks for, is the one cost that grows: at most limits.SBOM_MAX_ZSTD_WINDOW."""
    import subprocess
    import sys

    blob = _zstd_rle_bomb(375 * 1024 * 1024, window_log)
    assert len(blob) < 13_000
    write_layout(tmp_path / "img", Image([Layer(b"", blob, mt.OCI_LAYER_ZSTD)]))
    r = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(tmp_path / "img")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    message, peak_mib = r.stdout.strip().splitlines()
    assert "layer 1" in message and "decompression bomb" in message
    window_mib = (1 << window_log) // (1024 * 1024)
    assert int(peak_mib) < 100 + window_mib  # ~40 MiB of interpreter and imports, a few MiB of buffers


def test_zstd_many_frames_and_corrupt_frames(tmp_path: Path) -> None:
    """A layer of many zstd frames and skippable frames (zstd:chunked, pzstd) is read whole; a damaged
    frame is a one-line error naming the layer, not a zstandard exception."""
    tar = raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status", STATUS)])
    c = zstandard.ZstdCompressor()
    skippable = (0x184D2A50).to_bytes(4, "little") + (8).to_bytes(4, "little") + b"metadata"
    blob = b"".join(c.compress(tar[i:i + 512]) + skippable for i in range(0, len(tar), 512))
    r = sbom_of(tmp_path / "a", [Layer(tar, blob, mt.OCI_LAYER_ZSTD)])
    assert [p.name for p in r.packages] == ["zlib1g"] and r.distro is not None
    bad = Layer(b"", c.compress(tar)[:6] + b"\xff" * 64, mt.OCI_LAYER_ZSTD)
    with pytest.raises(InputError, match=r"layer 1 .*corrupt zstd data"):
        sbom_of(tmp_path / "b", [bad])


def test_truncated_stream_names_the_layer(tmp_path: Path) -> None:
    tar = raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status", STATUS * 200)])
    good = gz_layer(raw_tar([entry("etc/hostname", b"x\n")]))
    blob = gzip.compress(tar, mtime=0)
    cut = Layer(b"", blob[: len(blob) // 2], mt.OCI_LAYER_GZIP)  # the digest is of the cut blob
    with pytest.raises(InputError) as info:
        sbom_of(tmp_path, [good, cut])
    msg = str(info.value)
    assert "layer 2" in msg and ("truncated" in msg or "corrupt" in msg) and "\n" not in msg


def test_not_a_tar(tmp_path: Path) -> None:
    layer = Layer(b"", gzip.compress(b"this is not a tar archive" * 100, mtime=0), mt.OCI_LAYER_GZIP)
    with pytest.raises(InputError, match="layer 1"):
        sbom_of(tmp_path, [layer])


def test_zstd_and_plain_layers(tmp_path: Path) -> None:
    t1 = raw_tar([entry("etc/os-release", OS)])
    t2 = raw_tar([entry("var/lib/dpkg/status", STATUS)])
    layers = [Layer(t1, t1, mt.OCI_LAYER), Layer(t2, zstandard.ZstdCompressor().compress(t2), mt.OCI_LAYER_ZSTD)]
    r = sbom_of(tmp_path, layers)
    assert [p.name for p in r.packages] == ["zlib1g"] and r.distro is not None


def test_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    l1 = gz_layer(raw_tar([entry("etc/os-release", OS), entry("var/lib/dpkg/status", STATUS),
                           entry("opt/a/keep", b"1"), entry("opt/a/sub/x", b"2"), entry("opt/b/y", b"3")]))
    l2 = gz_layer(raw_tar([entry("var/lib/dpkg/.wh.status"), entry("opt/a/.wh..wh..opq"), entry("opt/a/new", b"4"),
                           entry("opt/.wh.b")]))
    l3 = gz_layer(raw_tar([entry("var/lib/dpkg/status", STATUS.replace(b"1:1.2.13", b"1:1.3.1"))]))
    r = sbom_of(tmp_path, [l1, l2, l3])
    nodes = set(r.view.nodes)
    assert "opt/a/new" in nodes and "opt/a/keep" not in nodes and "opt/a/sub/x" not in nodes
    assert not any(n.startswith("opt/b") for n in nodes)
    [pkg] = r.packages
    assert pkg.version == "1:1.3.1.dfsg-1"  # the status of layer 3, not layer 1
    node = r.view.nodes["var/lib/dpkg/status"]
    assert (node.first_layer, node.last_layer) == (2, 2)  # re-created above its whiteout
    assert r.view.nodes["opt/a/new"].first_layer == 1


def test_first_and_last_layer_recorded(tmp_path: Path) -> None:
    l1 = gz_layer(raw_tar([entry("etc/os-release", OS), entry("usr/bin/tool", b"v1")]))
    l2 = gz_layer(raw_tar([entry("usr/bin/tool", b"v2")]))
    r = sbom_of(tmp_path, [l1, l2])
    node = r.view.nodes["usr/bin/tool"]
    assert (node.first_layer, node.last_layer) == (0, 1)
    _ = TarEntry


# ---- cost per entry: constant whatever the headers, markers and paths ----------------------------


def _timed_scan(tmp_path: Path, layers: list[Layer]) -> tuple[SbomResult, float]:
    import time

    start = time.monotonic()
    r = sbom_of(tmp_path, layers)
    return r, time.monotonic() - start


def _pax_tar(global_keys: int, files: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={f"{i:x}": "" for i in range(global_keys)}) as tf:
        for i in range(files):
            tf.addfile(tarfile.TarInfo(f"srv/f{i}"), io.BytesIO(b""))
    return buf.getvalue()


@pytest.mark.timeout(120)
def test_pax_global_header_with_many_keys_costs_nothing_per_entry(tmp_path: Path) -> None:
    """A PAX global header of 78,000 keys (~800 KiB, under the record limit) before 20,000 entries:
    every entry used to copy all the keys (15 s for this layer); the keys the scan does not use are
    dropped once, so the layer reads about as fast as without the header."""
    big = _pax_tar(78_000, 20_000)
    plain = _pax_tar(0, 20_000)
    r, slow = _timed_scan(tmp_path / "a", [gz_layer(big)])
    _, fast = _timed_scan(tmp_path / "b", [gz_layer(plain)])
    assert len([n for n in r.view.nodes if n.startswith("srv/f")]) == 20_000
    assert slow < 5 * fast + 2.0, (slow, fast)  # generous: the old cost was ~60x


@pytest.mark.timeout(120)
def test_repeated_opaque_markers_cost_one_walk(tmp_path: Path) -> None:
    """20,000 copies of one opaque-directory marker over a 20,000-file directory: each copy used to
    walk the whole directory again (M x 20k); a marker met before, or one under a directory already
    hidden, now costs a dict lookup."""
    lower = gz_layer(raw_tar([entry(f"opt/a/d{i % 100}/f{i}", b"") for i in range(20_000)]))
    markers = gz_layer(raw_tar([entry("opt/a/.wh..wh..opq")] * 20_000 + [entry("opt/a/new", b"1")]))
    nested = gz_layer(raw_tar([entry("opt/a/.wh..wh..opq")] + [entry(f"opt/a/d{i}/.wh..wh..opq") for i in range(100)]
                              + [entry(f"opt/a/.wh.d{i}") for i in range(100)] + [entry("opt/a/new", b"1")]))
    plain = gz_layer(raw_tar([entry("opt/a/.wh..wh..opq")] + [entry(f"opt/b/f{i}", b"") for i in range(20_000)]
                             + [entry("opt/a/new", b"1")]))
    r, slow = _timed_scan(tmp_path / "a", [lower, markers])
    _, fast = _timed_scan(tmp_path / "b", [lower, plain])
    assert [n for n in r.view.nodes if n.startswith("opt/")] == ["opt/a/new"]
    assert r.view.is_dir("opt/a") and not r.view.is_dir("opt/a/d1")
    r2 = sbom_of(tmp_path / "c", [lower, nested])
    assert [n for n in r2.view.nodes if n.startswith("opt/")] == ["opt/a/new"]
    assert slow < 5 * fast + 2.0, (slow, fast)  # the old cost was minutes


def test_deep_implicit_directories_cost_linear_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 KiB path of 2,000 components whose parents have no entries: the index used to keep every
    ancestor's full path (~4 MiB per entry, 910 MiB RSS for 200 of them in a 100 KiB layer); it keeps
    one node per component now. Parents without entries are bounded per image."""
    import tracemalloc

    from vouch import limits

    deep = "/".join(["a"] * 2000)
    layer = gz_layer(raw_tar([entry(f"x{i}/{deep}", b"") for i in range(100)]))
    tracemalloc.start()
    try:
        r = sbom_of(tmp_path / "a", [layer])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(r.view.nodes) == 100 and r.view.is_dir("x7/" + "/".join(["a"] * 1000))
    assert r.view.resolve(f"x7/{deep}") == f"x7/{deep}"
    assert peak < 96 * 1024 * 1024, peak  # the old index: ~400 MiB of ancestor strings
    monkeypatch.setattr(limits, "SBOM_MAX_IMPLICIT_DIRS", 50_000)
    with pytest.raises(InputError, match=r"layer 1 .*path index is too large.*without an entry"):
        sbom_of(tmp_path / "b", [layer])


def test_overlong_names_are_refused(tmp_path: Path) -> None:
    """A GNU long name (or a PAX path) longer than limits.SBOM_MAX_PATH_BYTES: a clear error naming the
    layer; a long-name record of gigabytes is refused before it is read."""
    long_name = raw_tar([entry("d/" + "n" * 20_000, b"x")])
    with pytest.raises(InputError, match=r"layer 1 .*longer than the limit of 16384"):
        sbom_of(tmp_path / "a", [gz_layer(long_name)])
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = 8 * 1024**3
    huge = info.tobuf(format=tarfile.GNU_FORMAT)
    with pytest.raises(InputError, match=r"layer 1 .*'L' metadata record of 8589934592 bytes is too large"):
        sbom_of(tmp_path / "b", [gz_layer(huge + b"\0" * 1024)])


def test_symlink_mazes_and_hard_link_chains_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Symlink loops end after 40 hops; links that grow the path stop at the path limit; a maze asked
    about many times spends at most the image's resolve budget, then paths are taken as written (with
    one warning). A chain of 5,000 hard links, each to the previous one, costs one lookup per link."""
    from vouch import limits

    files = [entry("etc/os-release", OS), entry("loop/a", b"", tarfile.SYMTYPE, "b/x"),
             entry("loop/b", b"", tarfile.SYMTYPE, "a/y"), entry("grow", b"", tarfile.SYMTYPE, "grow/" + "g/" * 4000),
             entry("chain/0", b"data")]
    files += [entry(f"chain/{i}", b"", tarfile.LNKTYPE, f"chain/{i - 1}") for i in range(1, 5000)]
    r = sbom_of(tmp_path, [gz_layer(raw_tar(files))])
    view = r.view
    assert view.resolve("loop/a/z").startswith("loop/")  # ended, inside the root
    assert len(view.resolve("grow/f")) <= limits.SBOM_MAX_PATH_BYTES + 8010
    assert view.nodes["chain/4999"].kind == "f" and view.nodes["chain/4999"].size == 4
    monkeypatch.setattr(limits, "SBOM_MAX_RESOLVE_STEPS", 10_000)
    for i in range(1000):
        view.resolve(f"loop/a/{i}")
    assert view.resolve("loop/a/q") == "loop/a/q"  # the budget is spent: taken as written
    assert sum("symlink resolution stopped" in w for w in view.warnings) == 1


# ---- binaries and archives (file claimers: ELF, jar) ---------------------------------------------


def _elf(sections: dict[str, bytes], shnum: int | None = None, shoff: int | None = None) -> bytes:
    """A minimal ELF64 little-endian file with the given sections (enough for the section readers)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    body = b""
    offsets = []
    for data in [*sections.values(), names]:
        offsets.append(64 + len(body))
        body += data
    table_off = 64 + len(body)
    headers = b"\0" * 64  # the null section
    name_pos = 1
    for (name, data), off in zip([*sections.items(), (".shstrtab", names)], offsets, strict=True):
        headers += struct.pack("<IIQQQQIIQQ", name_pos, 1, 0, 0, off, len(data), 0, 0, 1, 0)
        name_pos += len(name) + 1
    count = len(sections) + 2
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, table_off if shoff is None else shoff, 0, 64,
                                 56, 0, 64, count if shnum is None else shnum, count - 1)
    return header + body + headers


def _go_buildinfo(version: bytes, modinfo: bytes) -> bytes:
    def s(b: bytes) -> bytes:
        n, out = len(b), b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out + b

    return b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16 + s(version) + s(modinfo)


SENTINEL = b"0123456789abcdef"


def _exe(data: bytes) -> TarEntry:
    return TarEntry(data=data, mode=0o755)


def test_crafted_elf_files_are_read_safely(tmp_path: Path) -> None:
    good = _go_buildinfo(b"go1.22.5", SENTINEL + b"path\tx.io/a\nmod\tx.io/a\tv1.0.0\t\ndep\tx.io/b\tv0.2.0\t\n"
                         + SENTINEL)
    bomb = zlib.compress(b"\0" * (80 * 1024 * 1024), 9)  # 80 MiB of JSON-to-be in ~80 KiB
    files: dict[str, bytes | TarEntry] = {
        "bin/ok": _exe(_elf({".go.buildinfo": good})),
        "bin/huge-string": _exe(_elf({".go.buildinfo": good[:32] + b"\xff\xff\xff\xff\x0f"})),
        "bin/bad-table": _exe(_elf({".text": b"x"}, shnum=4000, shoff=1 << 40)),
        "bin/audit-bomb": _exe(_elf({".dep-v0": bomb})),
        "bin/not-json": _exe(_elf({".dep-v0": zlib.compress(b"{nope")})),
        "bin/truncated": _exe(_elf({".go.buildinfo": good})[:70]),
    }
    r = sbom_of(tmp_path, [Layer.from_files(files)])
    assert {(p.name, p.version) for p in r.packages} == {("x.io/a", "v1.0.0"), ("x.io/b", "v0.2.0"),
                                                          ("stdlib", "go1.22.5")}
    joined = "\n".join(r.warnings)
    for name in ("huge-string", "bad-table", "audit-bomb", "not-json", "truncated"):
        assert f"binary could not parse bin/{name}" in joined, name
    assert "expands beyond" in joined


def _jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


POM = b"groupId=org.example\nartifactId=inner\nversion=1.0\n"


def test_hostile_java_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vouch.sbom.catalogers import java

    monkeypatch.setattr(java, "MAX_TOTAL_BYTES", 4 * 1024 * 1024)
    bomb = _jar({"META-INF/maven/org.example/inner/pom.properties": POM,
                 "lib/zeros-1.0.jar": b"\0" * (8 * 1024 * 1024)})  # inflates past the 4 MiB budget
    deep = _jar({"META-INF/maven/org.example/inner/pom.properties": POM})
    for level in range(6):
        deep = _jar({f"lib/level{level}-1.0.jar": deep})
    lying = bytearray(_jar({"lib/liar-1.0.jar": _jar({"a": b"\0" * 100_000})}))
    cd = lying.find(b"PK\x01\x02")  # the central directory says the member is 100 bytes long
    lying[cd + 24:cd + 28] = struct.pack("<I", 100)
    files: dict[str, bytes | TarEntry] = {
        "app/bomb.jar": bomb, "app/deep.jar": deep, "app/liar.jar": bytes(lying),
        "app/not-a-zip.jar": b"this is not a zip archive at all" * 4,
        "app/good-2.0.jar": _jar({"META-INF/maven/org.example/good/pom.properties":
                                  b"groupId=org.example\nartifactId=good\nversion=2.0\n"}),
    }
    r = sbom_of(tmp_path, [Layer.from_files(files)])
    assert "pkg:maven/org.example/good@2.0" in {p.purl for p in r.packages}
    joined = "\n".join(r.warnings)
    assert "zip bomb" in joined
    assert "nested deeper than 4 levels" in joined
    assert "app/liar.jar:lib/liar-1.0.jar: not a readable archive" in joined
    assert "java could not parse app/not-a-zip.jar" in joined


def test_java_archives_with_other_compression_methods_and_huge_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zipfile inflates a bzip2 or LZMA member in one unbounded call (380 bytes of bzip2 came back as
    300 MiB at once): jars use stored and deflate only, so other methods are not read, with a warning.
    A central directory over its bound is refused before zipfile builds an object per member."""
    import tracemalloc

    from vouch.sbom.catalogers import java

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", b"\0" * (64 * 1024 * 1024), compress_type=zipfile.ZIP_BZIP2)
        zf.writestr("lib/inner-1.0.jar", _jar({"a": b"b"}), compress_type=zipfile.ZIP_LZMA)
        zf.writestr("META-INF/maven/g/a/pom.properties", b"groupId=g\nartifactId=a\nversion=1\n")
    bomb = buf.getvalue()
    assert len(bomb) < 2000
    tracemalloc.start()
    try:
        scan = java.JavaCataloger().reduce_file("app/a-1.jar", io.BytesIO(bomb), len(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan is not None and [(p.artifact, p.version) for p in scan.packages] == [("a", "1")]
    assert peak < 16 * 1024 * 1024, peak
    assert [w.split(": ", 1)[1] for w in scan.warnings] == [
        "compressed with method 12, which jars do not use; not read",
        "compressed with method 14, which jars do not use; not read"]
    monkeypatch.setattr(java, "MAX_DIRECTORY_BYTES", 100)
    many = _jar({f"f{i}": b"" for i in range(10)})
    with pytest.raises(java.ArchiveLimit, match=r"a central directory of [0-9]+ bytes, over 100"):
        java.JavaCataloger().reduce_file("app/b.jar", io.BytesIO(many), len(many))


def test_text_parsers_stay_linear_on_crafted_metadata() -> None:
    """Inputs shaped to make a backtracking regex explode (the peers' patterns come from Go's linear
    engine). Each call returns at once with the right answer; a regression shows as a hung test."""
    from vouch.sbom.catalogers.golang import BuildInfo, main_version, parse_modinfo
    from vouch.sbom.catalogers.java import identify, manifest_licenses, pom_xml_licenses

    def version_of(ldflags: str) -> str:
        info = BuildInfo("go1.22.5")
        parse_modinfo(info, f'mod\texample.com/y\t(devel)\t\nbuild\t-ldflags="{ldflags}"\n')
        return main_version(info)

    assert version_of("-X main.version=" + "a/" * 20000 + "x" * 5000) == "(devel)"
    assert version_of(("-X example.com/y/" + "a." * 400 + " ") * 60 + "-X main.version=1.2.3") == "v1.2.3"
    assert version_of("-X main." + "1" * 50000) == "(devel)"
    assert pom_xml_licenses("<licenses>" + "<license><name>x" * 100000) == []  # never closed: no licence
    assert pom_xml_licenses("<licenses>" + "<license><name>" * 100000 + "</licenses>") == []
    assert manifest_licenses({"Bundle-License": 'a,"' * 50000}) != []
    assert identify("lib/" + "a-" + "1-" * 50000 + "x.jar", {}, []) == []



@pytest.mark.timeout(60)
def test_metadata_parsers_stay_linear_on_long_runs() -> None:
    """Whitespace runs and continuation lines, a few MiB of them: each used to cost time quadratic in
    the run (1 MiB of newlines in a gemspec: hours; a 1 MiB licence field of spaces: hours; 300,000
    continuation lines of a dpkg field or a manifest: minutes). Each is one linear pass now."""
    import time

    from vouch.sbom.catalogers.dpkg import copyright_licenses, parse_paragraphs
    from vouch.sbom.catalogers.java import parse_manifest
    from vouch.sbom.catalogers.ruby import parse_gemspec
    from vouch.sbom.licenses import split_expression

    start = time.monotonic()
    assert parse_gemspec("\n" * 1_000_000 + " \n" * 500_000 + "s.name = 'x'\n")["name"] == "x"
    assert split_expression("MIT" + " " * 1_000_000 + "or  \t GPL-2.0") == ["MIT", "GPL-2.0"]
    licences = copyright_licenses("License: MIT" + " " * 1_000_000 + "x\nLicense:\n  GPL-2+ \n")
    assert licences == ["MIT x", "GPL-2.0-or-later"]
    [para] = parse_paragraphs("Package: a\nDescription: d\n" + " x\n" * 300_000)
    assert para["Description"].count("\n") == 300_000
    assert len(parse_manifest("Name: a\r\n" + " x\r\n" * 300_000)["Name"]) == 300_001
    assert time.monotonic() - start < 30  # each took minutes to hours before


def test_odd_documents_never_stop_a_catalog(tmp_path: Path) -> None:
    """Shapes the catalogers once met with an exception that stopped the whole scan (exit 70): an empty
    redhat-release, a Go binary built at 0001-01-01T00:00+01:00, JSON lists where objects belong, names
    a purl cannot hold as written; and the same jar at 20,000 paths is merged in linear time."""
    from vouch.sbom.catalogers.binary import _go_packages
    from vouch.sbom.catalogers.dotnet import DotnetCataloger
    from vouch.sbom.catalogers.golang import BuildInfo, main_version, parse_modinfo
    from vouch.sbom.catalogers.npm import NpmCataloger
    from vouch.sbom.catalogers.php import ComposerCataloger
    from vouch.sbom.generate import dedupe
    from vouch.sbom.model import Location, Package

    r = sbom_of(tmp_path, [gz_layer(raw_tar([entry("etc/redhat-release", b"\n")]))])
    assert r.distro is None
    info = BuildInfo("go1.22.5")
    parse_modinfo(info, "mod\tx.io/a\t(devel)\t\nbuild\tvcs.revision=abc\nbuild\tvcs.time=0001-01-01T00:00:00+01:00\n"
                  "dep\t\tv1\t\ndep\t/\tv2\t\n")
    assert main_version(info).startswith("v0.0.0-00010101000000-abc")
    assert [p.purl for p in _go_packages(info)][1:] == ["pkg:golang/%252F@v2", "pkg:golang/stdlib@1.22.5"]
    assert NpmCataloger().reduce("p/package.json", b'{"name": "a", "dependencies": [1]}')["dependencies"] == []
    assert ComposerCataloger().reduce("composer/installed.json", b'{"packages": [{"name": "a/b", "version": "1", '
                                      b'"require": [1], "license": 5}], "dev-package-names": [[1]]}') == [
        {"name": "a/b", "version": "1", "licenses": [], "dev": False, "description": None, "requires": []}]
    assert DotnetCataloger().reduce("a.deps.json", b'{"libraries": [1]}') == []
    same = [Package("a", "1", "maven", "pkg:maven/g/a@1", "java", locations=[Location(f"/app/{i}.jar", "d", 0)])
            for i in range(20_000)]
    [merged] = dedupe(same + same)
    assert len(merged.locations) == 20_000


def test_mutated_binaries_and_archives_never_escape(tmp_path: Path) -> None:
    """Seeded mutations of real artefacts (a Go binary for Linux and one for Windows, a cargo-auditable
    binary, a Maven Central jar, a fat jar): every result is a parsed value or an ordinary parse error,
    which the scan turns into a warning; no other kind of exception escapes."""
    import random

    from tests.support.testdata import fat_jar, go_binaries, maven_jars, rust_binary
    from vouch.sbom.catalogers.binary import BinaryCataloger
    from vouch.sbom.catalogers.java import JavaCataloger

    rng = random.Random(20260425)
    samples = [
        (BinaryCataloger(), (go_binaries() / "probe-stripped").read_bytes()),
        (BinaryCataloger(), (go_binaries() / "probe.exe").read_bytes()),
        (BinaryCataloger(), (rust_binary() / "akko-probe").read_bytes()),
        (JavaCataloger(), (maven_jars() / "jackson-annotations-2.17.0.jar").read_bytes()),
        (JavaCataloger(), fat_jar(maven_jars())[:3_000_000]),  # also cut short
    ]
    outcomes: dict[str, int] = {}
    for claimer, original in samples:
        for _ in range(120):
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                # hit the headers and tables at either end more often than the middle
                pos = rng.choice([rng.randrange(0, 4096), rng.randrange(len(data) - 4096, len(data)),
                                  rng.randrange(0, len(data))])
                data[pos] = rng.randrange(256)
            try:
                claimer.reduce_file("usr/bin/x.jar", io.BytesIO(bytes(data)), len(data))
                outcomes["parsed"] = outcomes.get("parsed", 0) + 1
            except (ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
                    NotImplementedError, UnicodeDecodeError, zlib.error, struct.error, RuntimeError) as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert outcomes.get("parsed", 0) > 100  # most single-byte hits leave the artefact readable
