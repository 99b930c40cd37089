"""rpm databases: sqlite `rpmdb.sqlite`, Berkeley DB hash `Packages`, SUSE ndb `Packages.db`, under
var/lib/rpm and usr/lib/sysimage/rpm. Readers of our own, every offset bounds-checked."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from typing import Any

from vouch import limits
from vouch.errors import InputError
from vouch.sbom.catalogers.base import compile_globs, location, owned_layer, purl
from vouch.sbom.catalogers.rpmheader import HeaderError, RpmHeader, parse_header
from vouch.sbom.fsview import ImageView
from vouch.sbom.licenses import normalize, split_expression
from vouch.sbom.model import Distro, Package

_CLAIM = compile_globs("var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages", "var/lib/rpm/Packages.db",
                       "usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages",
                       "usr/lib/sysimage/rpm/Packages.db")

# ---- sqlite ------------------------------------------------------------------------------------


def sqlite_blobs(data: bytes) -> Iterator[bytes]:
    """The header blobs of an rpmdb.sqlite. The database comes from the image, so its schema is
    hostile too: Packages must be a plain table, a blob can be no larger than the file, all blobs
    together no more than the file holds (a generated column or a view of `zeroblob()`s cannot
    conjure more), and the query's work is bounded (a recursive view is stopped)."""
    if len(data) >= 100 and data[:16] == b"SQLite format 3\x00" and data[18:20] == b"\x02\x02":
        # rpm keeps its sqlite db in WAL mode, which an in-memory copy cannot open: read it as a
        # rollback-journal database (bytes 18-19 of the header; the pages themselves are the same).
        data = data[:18] + b"\x01\x01" + data[20:]
    if len(data) < 100 or not data.startswith(b"SQLite format 3\x00"):  # deserialize(b"") is a MemoryError
        raise InputError("rpmdb.sqlite is not a readable rpm sqlite database (no SQLite header)")
    conn = sqlite3.connect(":memory:")
    steps = 0

    def progress() -> int:  # called every 1000 VM instructions: nonzero stops the query
        nonlocal steps
        steps += 1000
        return 1 if steps > limits.SBOM_MAX_SQLITE_STEPS else 0

    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(1024, len(data)))
        conn.set_progress_handler(progress, 1000)
        conn.deserialize(data)
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        columns = {row[1]: row[6] for row in conn.execute("PRAGMA table_xinfo(Packages)")}
        if kind != ("table",) or columns.get("blob") != 0:  # hidden != 0: a generated column
            raise InputError("rpmdb.sqlite has no plain Packages table with a blob column")
        total = 0
        for (blob,) in conn.execute("SELECT blob FROM Packages"):
            if isinstance(blob, bytes):
                total += len(blob)
                if total > len(data):
                    raise InputError("rpmdb.sqlite: its blobs add up to more than the file holds")
                yield blob
    except sqlite3.DatabaseError as exc:
        if steps > limits.SBOM_MAX_SQLITE_STEPS:
            raise InputError(f"rpmdb.sqlite: reading it took more than {limits.SBOM_MAX_SQLITE_STEPS} steps; "
                             "refusing it") from exc
        raise InputError(f"rpmdb.sqlite is not a readable rpm sqlite database ({exc})") from exc
    finally:
        conn.close()


# ---- Berkeley DB hash --------------------------------------------------------------------------

BDB_HASH_MAGIC = 0x061561
P_OVERFLOW, P_HASH_UNSORTED, P_HASH = 7, 2, 13
H_KEYDATA, H_OFFPAGE = 1, 3
PAGE_HEADER = 26


def bdb_blobs(data: bytes) -> Iterator[bytes]:
    if len(data) < 512:
        raise InputError("Berkeley DB Packages file is too short")
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, 12)[0] == BDB_HASH_MAGIC:
            break
    else:
        raise InputError("Packages is not a Berkeley DB hash database (bad magic)")
    page_size = struct.unpack_from(order + "I", data, 20)[0]
    if page_size not in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
        raise InputError(f"Berkeley DB Packages: unexpected page size {page_size}")
    if data[24] != 0:
        raise InputError("Berkeley DB Packages is encrypted; cannot read it")
    last_page = struct.unpack_from(order + "I", data, 32)[0]
    npages = min(last_page + 1, len(data) // page_size)

    def page(n: int) -> bytes:
        return data[n * page_size : (n + 1) * page_size]

    for n in range(1, npages):
        pg = page(n)
        ptype = pg[25]
        if ptype not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(order + "H", pg, 20)[0]
        if PAGE_HEADER + 2 * entries > page_size:
            continue
        offsets = struct.unpack_from(f"{order}{entries}H", pg, PAGE_HEADER)
        for i in range(1, entries, 2):  # key, value pairs: the values
            off = offsets[i]
            if off >= page_size:
                continue
            kind = pg[off]
            if kind == H_OFFPAGE and off + 12 <= page_size:
                pgno, tlen = struct.unpack_from(order + "II", pg, off + 4)
                yield _bdb_overflow(data, page_size, npages, pgno, tlen, order)
            elif kind == H_KEYDATA:
                end = offsets[i - 1] if i > 0 else page_size
                if off < end <= page_size:
                    yield pg[off + 1 : end]


def _bdb_overflow(data: bytes, page_size: int, npages: int, pgno: int, tlen: int, order: str) -> bytes:
    out = bytearray()
    visited = 0
    while pgno != 0 and len(out) < tlen:
        visited += 1
        if pgno >= npages or visited > npages:
            raise InputError("Berkeley DB Packages: broken overflow chain")
        pg = data[pgno * page_size : (pgno + 1) * page_size]
        if pg[25] != P_OVERFLOW:
            raise InputError(f"Berkeley DB Packages: page {pgno} is not an overflow page")
        used = struct.unpack_from(order + "H", pg, 22)[0]  # bytes of data on an overflow page
        out += pg[PAGE_HEADER : PAGE_HEADER + min(used, page_size - PAGE_HEADER)]
        pgno = struct.unpack_from(order + "I", pg, 16)[0]
    return bytes(out[:tlen])


# ---- ndb ---------------------------------------------------------------------------------------

NDB_HEADER_MAGIC = int.from_bytes(b"RpmP", "little")
NDB_SLOT_MAGIC = int.from_bytes(b"Slot", "little")
NDB_BLOB_MAGIC = int.from_bytes(b"BlbS", "little")
NDB_SLOTS_PER_PAGE = 4096 // 16


def ndb_blobs(data: bytes) -> Iterator[bytes]:
    if len(data) < 32:
        raise InputError("Packages.db is too short for an ndb database")
    magic, version, _gen, npages = struct.unpack_from("<IIII", data, 0)
    if magic != NDB_HEADER_MAGIC or version != 0 or npages == 0:
        raise InputError("Packages.db is not an rpm ndb database (bad header)")
    if npages > 2048:
        raise InputError(f"Packages.db: implausible slot page count {npages}")
    nslots = npages * NDB_SLOTS_PER_PAGE - 2  # the header takes the first two slots
    for s in range(nslots):
        off = 32 + 16 * s
        if off + 16 > len(data):
            break
        smagic, pkg_index, blk_offset, _blk_count = struct.unpack_from("<IIII", data, off)
        if smagic != NDB_SLOT_MAGIC:
            raise InputError(f"Packages.db: bad slot magic at slot {s}")
        if pkg_index == 0:
            continue
        boff = blk_offset * 16
        if boff + 16 > len(data):
            raise InputError(f"Packages.db: package {pkg_index} points outside the file")
        bmagic, bindex, _cksum, blen = struct.unpack_from("<IIII", data, boff)
        if bmagic != NDB_BLOB_MAGIC or bindex != pkg_index or boff + 16 + blen > len(data):
            raise InputError(f"Packages.db: corrupt blob for package {pkg_index}")
        yield data[boff + 16 : boff + 16 + blen]


# ---- cataloger ---------------------------------------------------------------------------------


def read_headers(path: str, data: bytes) -> list[RpmHeader]:
    if path.endswith("rpmdb.sqlite"):
        blobs = sqlite_blobs(data)
    elif path.endswith("Packages.db"):
        blobs = ndb_blobs(data)
    else:
        blobs = bdb_blobs(data)
    out = []
    for blob in blobs:
        try:
            out.append(parse_header(blob))
        except HeaderError:
            continue  # not a package header (e.g. a stray record); never fatal
    return out


def _source_name(sourcerpm: str | None) -> str | None:
    if not sourcerpm:
        return None
    base = sourcerpm.removesuffix(".src.rpm").removesuffix(".nosrc.rpm")
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


class RpmCataloger:
    # (prefixes, suffixes): a path it claims starts with one of the first or ends with one of the second
    claim_hint: tuple[tuple[str, ...], tuple[str, ...]] = (("var/lib/rpm/", "usr/lib/sysimage/rpm/"), ())
    name = "rpm"
    max_file_bytes = 1024 * 1024 * 1024

    def claims(self, path: str) -> bool:
        return _CLAIM.match(path) is not None

    def reduce(self, path: str, data: bytes) -> Any:
        return read_headers(path, data)

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        namespace = distro.id if distro else None
        packages: list[Package] = []
        seen: set[tuple[str, str, str, str]] = set()
        for db_path, parsed in sorted(view.parsed_by(self.name)):
            for h in parsed.value:
                if h.name == "gpg-pubkey":
                    continue
                version = f"{h.version}-{h.release}" if h.release else h.version
                ident = (h.name, version, h.arch or "", str(h.epoch))
                if ident in seen:
                    continue
                seen.add(ident)
                licenses = []
                for token in split_expression(h.license or ""):
                    spdx, raw = normalize(token)
                    if spdx or raw:
                        licenses.append(spdx or raw)
                pkg = Package(
                    name=h.name, version=(f"{h.epoch}:{version}" if h.epoch else version), type="rpm",
                    cataloger=self.name, arch=h.arch,
                    purl=purl("rpm", namespace, h.name, version,
                              {"arch": h.arch, "epoch": str(h.epoch) if h.epoch is not None else None,
                               "distro": distro.qualifier if distro else None,
                               "upstream": h.sourcerpm}),
                    licenses=licenses, source=_source_name(h.sourcerpm), supplier=h.vendor,
                    description=h.summary, files=h.files,
                    depends=[r for r in h.requires if not r.startswith("rpmlib(")], provides=h.provides,
                )
                if h.modularity_label:
                    pkg.properties["vouch:rpm:modularity-label"] = h.modularity_label
                layer = owned_layer(view, h.files)
                pkg.locations.append(location(view, db_path, layer))
                packages.append(pkg)
        return packages
