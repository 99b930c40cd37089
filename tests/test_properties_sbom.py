"""Property tests (Hypothesis, fixed seed, bounded count) for every parser of outside data on the SBOM
path: layer streams (gzip, zstd), tar headers, the filesystem view's layering, package databases (dpkg,
apk, rpm header blobs and the three rpmdb formats, Python METADATA, npm package.json, gemspecs,
Composer, .NET deps.json, JVM release files, os-release), Java archives, ELF and PE binaries, licence
expressions, and the whole scan of a small image.

The contract, per boundary: a layer read through the view gives a value or an InputError (BombError is
one); a cataloger's `reduce` gives a value or a ValueError (the scan turns it into a "could not parse"
warning); a binary reader gives a value or its own ValueError (HeaderError, ElfError, ArchiveLimit);
a cataloger's `catalog`, whatever its files held, gives a list of packages; a whole scan gives a BOM
or an InputError. Never another exception. Inputs are structured (headers with valid checksums, real
documents with bytes replaced, token soups of the format's own keywords), so that the checks past the
first parse are reached too.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import sqlite3
import struct
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vouch.errors import InputError
from vouch.oci import mediatypes as mt
from vouch.oci.build import Image, Layer, write_layout
from vouch.oci.source import LayoutSource
from vouch.sbom import fsview
from vouch.sbom.catalogers.apk import ApkCataloger
from vouch.sbom.catalogers.binary import BinaryCataloger
from vouch.sbom.catalogers.dotnet import DotnetCataloger
from vouch.sbom.catalogers.dpkg import DpkgCataloger
from vouch.sbom.catalogers.golang import BuildInfo, main_version, parse_modinfo
from vouch.sbom.catalogers.java import (
    ArchiveLimit,
    JavaCataloger,
    manifest_licenses,
    parse_manifest,
    parse_properties,
    pom_xml_licenses,
)
from vouch.sbom.catalogers.jvm import JvmCataloger
from vouch.sbom.catalogers.npm import NpmCataloger
from vouch.sbom.catalogers.php import ComposerCataloger
from vouch.sbom.catalogers.python import PythonCataloger
from vouch.sbom.catalogers.rpmdb import RpmCataloger, read_headers
from vouch.sbom.catalogers.rpmheader import HeaderError, RpmHeader, parse_header
from vouch.sbom.catalogers.ruby import RubyCataloger
from vouch.sbom.distro import DistroFiles, detect_distro, parse_os_release
from vouch.sbom.elf import ElfError
from vouch.sbom.fsview import ImageView, LayerInfo, Parsed, add_layer, clean_path
from vouch.sbom.generate import dedupe, drop_os_owned, generate_sbom
from vouch.sbom.licenses import normalize, normalize_name_or_url, split_expression
from vouch.sbom.model import Distro, Package
from vouch.sbom.streams import open_layer_stream
from vouch.sbom.tarstream import TarFormatError, TarReader

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DISTRO = Distro("debian", "12", "Debian GNU/Linux")


def _tar(entries: list[tuple[str, bytes, bytes, str]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """(name, type, data, linkname) entries as a tar archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, typ, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type = typ
            info.linkname = link
            info.size = len(data) if typ == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
    return buf.getvalue()


def _scan(view: ImageView, blob: bytes, claimers: list[Any] | None = None) -> None:
    """One layer, as streamed bytes, into the view: a value or an InputError."""
    info = LayerInfo(len(view.layers), "sha256:" + "0" * 64, "sha256:" + "1" * 64, mt.OCI_LAYER, len(blob))
    view.layers.append(info)
    chunks = iter([blob[i:i + 7000] for i in range(0, len(blob), 7000)])
    try:
        add_layer(view, info, chunks, claimers or [], fsview.ViewOptions(max_layer_bytes=64 * 1024 * 1024))
    except InputError as exc:
        assert "layer" in str(exc) and "\n" not in str(exc)


# ---- tar headers -----------------------------------------------------------------------------------

def _checksummed(block: bytes) -> bytes:
    b = bytearray(block.ljust(512, b"\0")[:512])
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % (sum(b) & 0o777777)
    return bytes(b)


_octal_field = st.one_of(
    st.integers(0, 4096).map(lambda n: b"%011o\0" % n),
    st.integers(0, 2**64).map(lambda n: b"\x80" + n.to_bytes(11, "big")),  # GNU base-256
    st.binary(min_size=12, max_size=12),
)
tar_header = st.builds(
    lambda name, mode, size, typeflag, link, magic, prefix, fix: (
        (_checksummed if fix else bytes)((name + mode + b"\0" * 16 + size + b"\0" * 12 + b"        " + typeflag
                                          + link + magic + b"\0" * 80 + prefix).ljust(512, b"\0"))),
    st.binary(min_size=100, max_size=100), st.binary(min_size=8, max_size=8), _octal_field,
    st.sampled_from([b"0", b"\0", b"1", b"2", b"3", b"5", b"6", b"7", b"x", b"g", b"L", b"K", b"S", b"V", b"Z"]),
    st.binary(min_size=100, max_size=100), st.sampled_from([b"ustar\x0000", b"ustar  \x00", b"\0" * 8]),
    st.binary(min_size=155, max_size=155), st.booleans(),
)
tar_blocks = st.lists(tar_header | st.binary(min_size=512, max_size=512) | st.just(b"\0" * 512),
                      min_size=1, max_size=6)


@SETTINGS
@given(tar_blocks, st.binary(max_size=600))
def test_tar_headers_from_arbitrary_blocks(blocks: list[bytes], tail: bytes) -> None:
    data = b"".join(blocks) + tail
    try:
        for entry in TarReader(io.BufferedReader(io.BytesIO(data))):
            assert isinstance(entry.name, str) and entry.size >= 0
    except TarFormatError:
        pass
    _scan(ImageView(), data)


BASE_TAR = _tar([
    ("etc/os-release", tarfile.REGTYPE, b'ID=debian\nVERSION_ID="12"\n', ""),
    ("usr/lib/" + "long-directory-name/" * 8 + "file.txt", tarfile.REGTYPE, b"x" * 700, ""),
    ("usr/bin", tarfile.DIRTYPE, b"", ""), ("bin", tarfile.SYMTYPE, b"", "usr/bin"),
    ("usr/bin/hard", tarfile.LNKTYPE, b"", "etc/os-release"),
    ("opt/.wh..wh..opq", tarfile.REGTYPE, b"", ""), ("var/.wh.cache", tarfile.REGTYPE, b"", ""),
    ("var/lib/dpkg/status", tarfile.REGTYPE, b"Package: a\nVersion: 1\nStatus: install ok installed\n", ""),
]) + _tar([("gnu/" + "n" * 150, tarfile.REGTYPE, b"data", ""),
           ("gnu/link", tarfile.SYMTYPE, b"", "t" * 150)], tarfile.GNU_FORMAT)


mutations = st.lists(st.tuples(st.integers(0, len(BASE_TAR) - 1), st.integers(0, 255)), min_size=1, max_size=8)


@SETTINGS
@given(mutations, st.integers(0, len(BASE_TAR)), st.booleans())
def test_mutated_tars(changes: list[tuple[int, int]], cut: int, fix_checksums: bool) -> None:
    data = bytearray(BASE_TAR)
    for pos, value in changes:
        data[pos] = value
        if fix_checksums:  # reach the fields past the checksum test
            start = pos - pos % 512
            data[start:start + 512] = _checksummed(bytes(data[start:start + 512]))
    view = ImageView()
    _scan(view, bytes(data[:cut]) if cut % 3 == 0 else bytes(data), [DpkgCataloger(), DistroFiles()])
    for path in list(view.nodes)[:20]:
        assert view.resolve(path) == clean_path(view.resolve(path))
        view.is_dir(path)


# ---- layer streams ---------------------------------------------------------------------------------

SMALL_TAR = _tar([("a", tarfile.REGTYPE, b"hello " * 200, ""), ("b", tarfile.REGTYPE, b"\0" * 4000, "")])
GZ = gzip.compress(SMALL_TAR, mtime=0) + gzip.compress(SMALL_TAR, mtime=0)  # two members
ZST = zstandard.ZstdCompressor().compress(SMALL_TAR) + zstandard.ZstdCompressor(write_checksum=True).compress(
    SMALL_TAR)


@SETTINGS
@given(st.sampled_from([GZ, ZST, b"\x1f\x8b", b"\x28\xb5\x2f\xfd"]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6), st.binary(max_size=300),
       st.integers(1, 20_000))
def test_layer_streams(base: bytes, changes: list[tuple[int, int]], tail: bytes, max_bytes: int) -> None:
    data = bytearray(base + tail)
    for pos, value in changes if len(data) > 4 else ():
        data[4 + pos % (len(data) - 4)] = value  # keep the magic: reach the decompressor
    producer, stream = open_layer_stream(iter([bytes(data[:100]), bytes(data[100:])]), "layer 1", max_bytes,
                                         10.0, ratio_floor=1000)
    try:
        while chunk := stream.read(4096):
            assert len(chunk) <= 4096
        producer.finish()
    except InputError as exc:
        assert str(exc).startswith("layer 1: ")
    finally:
        producer.close()


# ---- the filesystem view's layering, against a naive model ------------------------------------------

_names = st.sampled_from(["a", "b", "c", ".wh.a", ".wh.b", ".wh..wh..opq", "..", "."])
_paths = st.lists(_names, min_size=1, max_size=4).map("/".join)
_entry = st.tuples(_paths, st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]),
                   st.sampled_from(["", "/", "../"]), _paths)


def _model(layers: list[list[tuple[str, bytes, str]]]) -> dict[str, tuple[str, int, int, str | None]]:
    """The layering rules, written the slow obvious way: path -> (kind, first layer, last layer, link)."""
    nodes: dict[str, list[Any]] = {}
    for i, entries in enumerate(layers):
        markers: list[tuple[str, bool]] = []
        for name, typ, link in entries:
            path = clean_path(name)
            if not path:
                continue
            base = posixpath.basename(path)
            if base.startswith(".wh."):
                parent = posixpath.dirname(path)
                markers.append((parent, False) if base == ".wh..wh..opq" else
                               (posixpath.join(parent, base[4:]), True))
                continue
            if typ == tarfile.LNKTYPE:
                target = nodes.get(clean_path(link))
                kind, target_link = (target[0], target[3]) if target else ("f", None)
            else:
                kind = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l"}.get(typ, "f")
                target_link = link if typ == tarfile.SYMTYPE else None
            old = nodes.get(path)
            if old is not None and old[0] == "d" and kind != "d":
                for k in [k for k in nodes if k.startswith(path + "/")]:
                    del nodes[k]
            nodes[path] = [kind, old[1] if old else i, i, target_link]
        for top, self_too in markers:
            for k in [k for k in nodes if (k == top and self_too) or k.startswith(top + "/") or top == ""]:
                if nodes[k][2] >= i:
                    nodes[k][1] = max(nodes[k][1], i)
                else:
                    del nodes[k]
    return {k: (v[0], v[1], v[2], v[3]) for k, v in nodes.items()}


def _model_resolve(nodes: dict[str, tuple[str, int, int, str | None]], path: str) -> str:
    path = clean_path(path)
    for _ in range(40):
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            node = nodes.get("/".join(parts[:i]))
            if node is not None and node[0] == "l" and node[3] is not None:
                prefix = "/".join(parts[:i])
                base = node[3] if node[3].startswith("/") else posixpath.join(posixpath.dirname(prefix), node[3])
                path = clean_path("/".join([base, *parts[i:]]))
                break
        else:
            return path
    return path


@SETTINGS
@given(st.lists(st.lists(_entry, max_size=10), min_size=1, max_size=4), st.lists(_paths, min_size=1, max_size=10))
def test_layering_matches_a_naive_model(layers: list[list[Any]], queries: list[str]) -> None:
    """Whiteouts, opaque markers, a directory replaced by a file, links: the tree-indexed view (with its
    marker skipping and pruning) agrees with the rules applied one path at a time."""
    plain = [[(name, typ, (prefix + link) if typ in (tarfile.SYMTYPE, tarfile.LNKTYPE) else "")
              for name, typ, prefix, link in entries] for entries in layers]
    view = ImageView()
    for entries in plain:
        _scan(view, _tar([(n, t, b"", link) for n, t, link in entries], tarfile.GNU_FORMAT))
    expected = _model(plain)
    assert {k: (n.kind, n.first_layer, n.last_layer, n.link) for k, n in view.nodes.items()} == expected
    for q in queries:
        assert view.resolve(q) == _model_resolve(expected, q)
        p = _model_resolve(expected, q)
        below = any(k.startswith(p + "/") for k in expected) if p else bool(expected)
        assert view.is_dir(q) == (expected[p][0] == "d" if p in expected else below)


# ---- package databases -----------------------------------------------------------------------------

def _soup(*tokens: str) -> st.SearchStrategy[bytes]:
    """Text made of the format's own keywords, separators and some noise, as UTF-8 (or not)."""
    parts = st.sampled_from([*tokens, "\n", "\n\n", " ", "\t", ":", "=", ",", "|", "(", ")", '"', "'", "[", "]",
                             "{", "}", "/", ".", "-", "1.2.3", "é", "\udcff"]) | st.text(max_size=8)
    return st.lists(parts, max_size=60).map(lambda xs: "".join(xs).encode("utf-8", "surrogateescape")) \
        | st.binary(max_size=200)


def _json_soup(keys: list[str]) -> st.SearchStrategy[bytes]:
    leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
    values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=5),
                          max_leaves=25)
    return values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=100) | st.just(b"[" * 5000)


CATALOGERS: list[tuple[Any, str, st.SearchStrategy[bytes]]] = [
    (DpkgCataloger(), "var/lib/dpkg/status", _soup("Package", "Version", "Status", "install ok installed",
                                                   "deinstall", "Architecture", "Source", "Depends", "Provides",
                                                   "Installed-Size", "Description", "Maintainer")),
    (DpkgCataloger(), "var/lib/dpkg/status.d/a", _soup("Package", "Version", "Status", "Source", "a (1)")),
    (DpkgCataloger(), "var/lib/dpkg/info/a.md5sums", _soup("d41d8cd98f00b204e9800998ecf8427e", "usr/bin/a")),
    (DpkgCataloger(), "var/lib/dpkg/info/a.conffiles", _soup("/etc/a.conf")),
    (DpkgCataloger(), "usr/share/doc/a/copyright", _soup("License", "Files", "GPL-2+", "or", "and", "with",
                                                         "exception", "/usr/share/common-licenses/GPL-2")),
    (ApkCataloger(), "lib/apk/db/installed", _soup("P:", "V:", "A:", "L:", "o:", "F:", "R:", "D:", "p:", "U:", "c:",
                                                  "m:", "T:", "so:libc.so=1", "!conflict", ">=1")),
    (PythonCataloger(), "usr/lib/python3/site-packages/a-1.dist-info/METADATA",
     _soup("Name", "Version", "License-Expression", "License", "Classifier", "License :: OSI Approved :: MIT License",
           "Requires-Dist", "extra", ";", "Summary", "Author", "Metadata-Version")),
    (PythonCataloger(), "usr/lib/python3/site-packages/a-1.dist-info/RECORD", _soup("a/__init__.py", "sha256=")),
    (NpmCataloger(), "app/node_modules/@s/a/package.json",
     _json_soup(["name", "version", "license", "licenses", "type", "dependencies", "description", "private"])),
    (NpmCataloger(), "app/package.json", _json_soup(["name", "version", "dependencies"])),
    (RubyCataloger(), "usr/lib/ruby/gems/3.1.0/specifications/a-1.gemspec",
     _soup("s.name", "s.version", "s.licenses", "s.license", "s.summary", "Gem::Version.new(", "# stub: a 1")),
    (ComposerCataloger(), "app/vendor/composer/installed.json",
     _json_soup(["packages", "dev-package-names", "name", "version", "license", "description", "require"])),
    (DotnetCataloger(), "app/a.deps.json", _json_soup(["libraries", "a/1.0", "type", "package", "project", "sha512"])),
    (JvmCataloger(), "usr/lib/jvm/jdk/release", _soup("JAVA_VERSION", "JAVA_RUNTIME_VERSION", "IMPLEMENTOR",
                                                      "IMAGE_TYPE", "JDK", "SOURCE_REPO", "azul", "oracle")),
    (DistroFiles(), "etc/os-release", _soup("ID", "VERSION_ID", "NAME", "PRETTY_NAME", "ID_LIKE", "alpine")),
    (DistroFiles(), "etc/redhat-release", _soup("Red Hat", "CentOS", "release", "8.4")),
]


@SETTINGS
@given(st.sampled_from(range(len(CATALOGERS))), st.data())
def test_package_databases_are_values_and_catalog_to_packages(index: int, data: st.DataObject) -> None:
    cataloger, path, content = CATALOGERS[index]
    raw = data.draw(content)
    assert cataloger.claims(path)
    try:
        value = cataloger.reduce(path, raw)
    except ValueError:  # the scan's "could not parse" warning; only the JSON formats raise it
        assert isinstance(cataloger, ComposerCataloger | DotnetCataloger)
        return
    view = ImageView(layers=[LayerInfo(0, "sha256:" + "0" * 64, "sha256:" + "1" * 64, mt.OCI_LAYER, 1)])
    view._add(path, fsview.Node("f", 0, 0, len(raw)))
    view._add("app/node_modules/x", fsview.Node("d", 0, 0))
    if value is not None:
        view.parsed[path] = Parsed(cataloger.name, value, 0)
    if isinstance(cataloger, DistroFiles):
        distro = detect_distro(view)
        assert distro is None or isinstance(distro.id, str)
        return
    packages = cataloger.catalog(view, DISTRO)
    assert all(isinstance(p, Package) and p.purl.startswith("pkg:") for p in packages)
    dedupe(drop_os_owned(packages, view))


def _rpm_header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """An rpm header blob: (tag, type, data, count) entries."""
    index, store = b"", b""
    for tag, typ, payload, count in entries:
        if typ == 4:
            store += b"\0" * (-len(store) % 4)
        index += struct.pack(">iIiI", tag, typ, len(store), count)
        store += payload
    return struct.pack(">II", len(entries), len(store)) + index + store


RPM_HEADER = _rpm_header([
    (1000, 6, b"bash\0", 1), (1001, 6, b"5.1\0", 1), (1002, 6, b"4.el9\0", 1), (1003, 4, b"\0\0\0\1", 1),
    (1022, 6, b"x86_64\0", 1), (1014, 6, b"GPLv3+\0", 1), (1044, 6, b"bash-5.1-4.el9.src.rpm\0", 1),
    (1047, 8, b"bash\0sh\0", 2), (1049, 8, b"rpmlib(x)\0libc.so.6\0", 2), (1118, 8, b"/usr/bin/\0", 1),
    (1117, 8, b"bash\0sh\0", 2), (1116, 4, b"\0\0\0\0\0\0\0\0", 2), (1009, 4, b"\0\0\1\0", 1),
])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(RPM_HEADER) - 1), st.integers(0, 255)), max_size=6)
       | st.binary(max_size=300).map(lambda b: [(-1, x) for x in b]))
def test_rpm_header_blobs(changes: list[tuple[int, int]]) -> None:
    if changes and changes[0][0] == -1:
        blob = bytes(x for _, x in changes)
    else:
        mutable = bytearray(RPM_HEADER)
        for pos, value in changes:
            mutable[pos] = value
        blob = bytes(mutable)
    try:
        header = parse_header(blob)
    except HeaderError:
        return
    assert isinstance(header, RpmHeader) and header.name
    assert all(isinstance(f, str) for f in header.files)


def _sqlite_rpmdb(blobs: list[bytes]) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.commit()
    return conn.serialize()


SQLITE_DB = _sqlite_rpmdb([RPM_HEADER, RPM_HEADER[:40], b"junk"])


def _ndb(blobs: list[bytes]) -> bytes:
    """An rpm ndb Packages.db: one slot page (every slot marked, the first ones used), then the blobs."""
    head = struct.pack("<IIII", int.from_bytes(b"RpmP", "little"), 0, 1, 1) + b"\0" * 16
    area, slots = b"", []
    for i, blob in enumerate(blobs, 1):
        slots.append((i, (4096 + len(area)) // 16))
        area += (struct.pack("<IIII", int.from_bytes(b"BlbS", "little"), i, 0, len(blob)) + blob).ljust(
            -(-(16 + len(blob)) // 16) * 16, b"\0")
    slots += [(0, 0)] * (254 - len(slots))
    table = b"".join(struct.pack("<IIII", int.from_bytes(b"Slot", "little"), i, off, 1) for i, off in slots)
    return head + table + area


def _bdb(blob: bytes, page_size: int = 1024) -> bytes:
    """A Berkeley DB hash Packages file: a meta page, a hash page holding one value inline and one
    off-page, and the two overflow pages of that one."""
    meta = bytearray(page_size)
    struct.pack_into("<I", meta, 12, 0x061561)
    struct.pack_into("<I", meta, 20, page_size)
    struct.pack_into("<I", meta, 32, 3)
    page = bytearray(page_size)
    page[25] = 13
    key0, value0 = page_size - 24, page_size - 24 - 1 - len(blob)
    key1, value1 = value0 - 4, value0 - 16
    struct.pack_into("<H", page, 20, 4)
    struct.pack_into("<4H", page, 26, key0, value0, key1, value1)
    page[value0] = 1
    page[value0 + 1:key0] = blob
    page[value1] = 3
    struct.pack_into("<II", page, value1 + 4, 2, len(blob))
    overflow = []
    for n, part in ((2, blob[:100]), (3, blob[100:])):
        pg = bytearray(page_size)
        pg[25] = 7
        struct.pack_into("<I", pg, 16, n + 1 if n == 2 else 0)
        struct.pack_into("<H", pg, 22, len(part))
        pg[26:26 + len(part)] = part
        overflow.append(bytes(pg))
    return bytes(meta) + bytes(page) + b"".join(overflow)


NDB_DB = _ndb([RPM_HEADER, RPM_HEADER])
BDB_DB = _bdb(RPM_HEADER)


def _mutated(path: str, base: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    changes = st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), max_size=5)
    return st.tuples(st.just(path), st.tuples(changes, st.integers(0, len(base))).map(
        lambda c: bytes(_mutate(base, c[0]))[: c[1] if c[1] % 3 == 0 else len(base)]))


rpmdb_files = st.one_of(
    _mutated("var/lib/rpm/rpmdb.sqlite", SQLITE_DB), _mutated("var/lib/rpm/Packages.db", NDB_DB),
    _mutated("usr/lib/sysimage/rpm/Packages", BDB_DB),
    st.tuples(st.sampled_from(["var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "var/lib/rpm/rpmdb.sqlite"]),
              st.binary(max_size=700)),
)


def _mutate(data: bytes, changes: list[tuple[int, int]]) -> bytearray:
    out = bytearray(data)
    for pos, value in changes:
        out[pos] = value
    return out


@SETTINGS
@given(rpmdb_files)
def test_rpm_databases(case: tuple[str, bytes]) -> None:
    for db in (SQLITE_DB, NDB_DB, BDB_DB):  # the unmutated databases read as the package they hold
        assert [h.name for h in read_headers({SQLITE_DB: "rpmdb.sqlite", NDB_DB: "Packages.db"}.get(db, "Packages"),
                                             db)][:1] == ["bash"]
    path, data = case
    try:
        headers = read_headers(path, data)
    except InputError:
        return
    assert all(isinstance(h, RpmHeader) for h in headers)
    view = ImageView(layers=[LayerInfo(0, "sha256:" + "0" * 64, "sha256:" + "1" * 64, mt.OCI_LAYER, 1)])
    view.parsed[path] = Parsed("rpm", headers, 0)
    assert all(p.purl.startswith("pkg:rpm/") for p in RpmCataloger().catalog(view, DISTRO))


def test_rpmdb_sqlite_schema_cannot_loop_or_conjure_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database's schema is the image's: a recursive view named Packages, a generated blob column
    of zeroblob()s, or a query that runs past its budget are each one InputError."""
    from vouch import limits

    def db(*sql: str) -> bytes:
        conn = sqlite3.connect(":memory:")
        for q in sql:
            conn.execute(q)
        conn.commit()
        return conn.serialize()

    loop = db("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT zeroblob(1000) AS blob FROM c")
    conjured = db("CREATE TABLE Packages (hnum INTEGER, blob AS (zeroblob(100000000)))",
                  "INSERT INTO Packages (hnum) VALUES (1)")
    for data in (loop, conjured):
        with pytest.raises(InputError, match="no plain Packages table"):
            read_headers("var/lib/rpm/rpmdb.sqlite", data)
    assert [h.name for h in read_headers("var/lib/rpm/rpmdb.sqlite", SQLITE_DB)] == ["bash"]
    monkeypatch.setattr(limits, "SBOM_MAX_SQLITE_STEPS", 2000)
    many = _sqlite_rpmdb([b"x"] * 5000)
    with pytest.raises(InputError, match="took more than 2000 steps"):
        read_headers("var/lib/rpm/rpmdb.sqlite", many)


# ---- Java archives, binaries, build info, licences --------------------------------------------------

def _jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    return buf.getvalue()


JAR = _jar({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nImplementation-Title: a\r\nImplementation-Version: 1"
            b"\r\nBundle-License: MIT, \"https://www.apache.org/licenses/LICENSE-2.0\";a=b\r\n line\r\n",
            "META-INF/maven/g/a/pom.properties": b"groupId=g\nartifactId=a\nversion=1.0\n",
            "META-INF/maven/g/a/pom.xml": b"<licenses><license><name>MIT</name></license></licenses>",
            "lib/inner-2.0.jar": _jar({"META-INF/maven/h/inner/pom.properties": b"artifactId=inner\nversion=2.0\n"})})
ZIP_ERRORS = (ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError,
              RuntimeError, KeyError, zlib.error)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(JAR) - 1), st.integers(0, 255)), max_size=6), st.integers(0, len(JAR)))
def test_java_archives(changes: list[tuple[int, int]], cut: int) -> None:
    data = bytes(_mutate(JAR, changes))[: cut if cut % 4 == 0 else len(JAR)]
    try:
        scan = JavaCataloger().reduce_file("app/a-1.0.jar", io.BytesIO(data), len(data))
    except ArchiveLimit:
        return
    except ZIP_ERRORS:  # the scan's "could not parse" warning
        return
    view = ImageView(layers=[LayerInfo(0, "sha256:" + "0" * 64, "sha256:" + "1" * 64, mt.OCI_LAYER, 1)])
    if scan is not None:
        view.parsed["app/a-1.0.jar"] = Parsed("java", scan, 0)
    assert all(p.purl.startswith("pkg:maven/") for p in JavaCataloger().catalog(view, DISTRO))


@SETTINGS
@given(_soup("Manifest-Version", "Bundle-License", "Implementation-Version", "\r\n", " ", "groupId", "artifactId",
             "<licenses>", "<license>", "<name>", "</name>", "<url>", "</url>", "</license>", "</licenses>", "#"))
def test_java_metadata_text(raw: bytes) -> None:
    text = raw.decode("utf-8", "replace")
    assert isinstance(manifest_licenses(parse_manifest(text)), list)
    assert isinstance(parse_properties(text), dict)
    assert all(isinstance(x, str) for x in pom_xml_licenses(text))


def _elf(sections: dict[str, bytes]) -> bytes:
    """A minimal ELF64 little-endian file with the given sections."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    body, offsets = b"", []
    for payload in [*sections.values(), names]:
        offsets.append(64 + len(body))
        body += payload
    headers, name_pos = b"\0" * 64, 1
    for (name, payload), off in zip([*sections.items(), (".shstrtab", names)], offsets, strict=True):
        headers += struct.pack("<IIQQQQIIQQ", name_pos, 1, 0, 0, off, len(payload), 0, 0, 1, 0)
        name_pos += len(name) + 1
    count = len(sections) + 2
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, 64 + len(body), 0, 64, 56, 0, 64, count,
                               count - 1) + body + headers


def _varstr(b: bytes) -> bytes:
    n, out = len(b), b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out + b


_SENTINEL = b"0123456789abcdef"
ELF = _elf({
    ".go.buildinfo": b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16 + _varstr(b"go1.22.5") + _varstr(
        _SENTINEL + b"path\tx.io/a\nmod\tx.io/a\t(devel)\t\ndep\tx.io/b\tv0.2.0\th1:x=\n=>\tx.io/c\tv1\t\n"
        b"build\tvcs.revision=abc\nbuild\tvcs.time=2024-01-01T00:00:00Z\n" + _SENTINEL),
    ".dep-v0": zlib.compress(b'{"packages":[{"name":"a","version":"1","kind":"runtime","root":true}]}'),
    ".note.package": struct.pack("<III", 4, 40, 0xCAFE1A7E) + b"FDO\0" + b'{"name":"a","version":"1","type":"deb"}\0',
    ".rodata": b"\0OpenSSL 3.0.2 \0",
})


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(ELF) - 1), st.integers(0, 255)), max_size=8),
       st.sampled_from(["usr/bin/a", "usr/lib/libssl.so.3", "app/a.exe"]))
def test_binaries(changes: list[tuple[int, int]], path: str) -> None:
    data = bytes(_mutate(ELF, changes))
    if path.endswith(".exe"):
        data = b"MZ" + data[2:]
    try:
        facts = BinaryCataloger().reduce_file(path, io.BytesIO(data), len(data))
    except ElfError:
        return
    except ValueError:  # UnicodeDecodeError of a note's text, say: still the "could not parse" warning
        return
    view = ImageView(layers=[LayerInfo(0, "sha256:" + "0" * 64, "sha256:" + "1" * 64, mt.OCI_LAYER, 1)])
    if facts is not None:
        view.parsed[path] = Parsed("binary", facts, 0)
    assert all(p.purl.startswith("pkg:") for p in BinaryCataloger().catalog(view, DISTRO))


@SETTINGS
@given(_soup("path", "mod", "dep", "=>", "build", "\t", "-ldflags", "-X main.version=", "vcs.revision",
             "vcs.time", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "(devel)", "v1.2.3"))
def test_go_build_info_text(raw: bytes) -> None:
    from vouch.sbom.catalogers.binary import _go_packages

    info = BuildInfo("go1.22.5")
    parse_modinfo(info, raw.decode("utf-8", "replace"))
    assert isinstance(main_version(info), str)
    assert all(p.purl.startswith("pkg:golang/") for p in _go_packages(info))


@SETTINGS
@given(_soup("MIT", "Apache-2.0", "GPL-2+", "or", "and", "OR", " with ", "exception", "https://", "http://",
             "opensource.org/licenses/MIT", "&", "(", ")", ";"))
def test_licence_expressions(raw: bytes) -> None:
    text = raw.decode("utf-8", "replace")
    assert all(isinstance(t, str) and t for t in split_expression(text))
    spdx, name = normalize(text)
    assert spdx is None or isinstance(spdx, str)
    assert isinstance(name, str)
    assert normalize_name_or_url(text) is None or isinstance(normalize_name_or_url(text), str)
    assert isinstance(parse_os_release(text), dict)


# ---- a whole scan ----------------------------------------------------------------------------------

_claimed = [path for _, path, _ in CATALOGERS]
_image_entry = st.tuples(
    st.sampled_from(_claimed) | st.lists(st.sampled_from(["a", "b", "/", ".", "\udcff", "\u00e9"]), min_size=1,
                                         max_size=12).map("".join),
    st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE]),
    st.integers(0, len(CATALOGERS) - 1))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(_image_entry, max_size=6), st.sampled_from(["gzip", "zstd", "plain"]), st.data())
def test_whole_scan_of_a_small_image(entries: list[Any], compression: str, data: st.DataObject) -> None:
    """A one-layer image of claimed files holding format soups, odd names (not UTF-8 too) and links: a
    BOM whose JSON parses, or an InputError."""
    files = []
    for name, typ, index in entries:
        body = data.draw(CATALOGERS[index][2]) if typ == tarfile.REGTYPE else b""
        files.append((name, typ, body, "usr/lib" if typ == tarfile.SYMTYPE else ""))
    tar = _tar(files, tarfile.GNU_FORMAT)
    if compression == "gzip":
        blob, media = gzip.compress(tar, mtime=0), mt.OCI_LAYER_GZIP
    elif compression == "zstd":
        blob, media = zstandard.ZstdCompressor().compress(tar), mt.OCI_LAYER_ZSTD
    else:
        blob, media = tar, mt.OCI_LAYER
    with tempfile.TemporaryDirectory() as tmp:
        write_layout(Path(tmp) / "img", Image([Layer(tar, blob, media)]))
        try:
            result = generate_sbom(LayoutSource(Path(tmp) / "img", None), timestamp="2026-04-25T10:00:00Z")
        except InputError:
            return
    doc = json.loads(result.to_json())
    assert doc["bomFormat"] == "CycloneDX"
    result.to_json().encode("utf-8")


@SETTINGS
@given(st.sampled_from(["deb", "rpm", "apk", "npm", "pypi", "golang", "maven", "cargo", "gem", "composer", "nuget",
                        "generic"]),
       st.none() | st.text(max_size=8), st.text(min_size=1, max_size=8), st.none() | st.text(max_size=8),
       st.dictionaries(st.sampled_from(["arch", "distro", "upstream", "epoch"]), st.none() | st.text(max_size=6)))
def test_purls_from_any_names(ptype: str, namespace: str | None, name: str, version: str | None,
                              qualifiers: dict[str, str | None]) -> None:
    """Names, versions and qualifiers come from the image ("/", " ", lone surrogates): every one gives a
    purl that packageurl parses back, UTF-8 clean."""
    from packageurl import PackageURL

    from vouch.sbom.catalogers.base import purl

    out = purl(ptype, namespace, name, version, qualifiers)
    out.encode("utf-8")
    assert PackageURL.from_string(out).type == ptype
