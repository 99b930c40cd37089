"""The rpm header blob, as stored in every rpmdb format: a parser of our own, bounds-checked.

Layout (big-endian): il (entry count), dl (data length), il × {tag, type, offset, count}, data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

NAME, VERSION, RELEASE, EPOCH, SUMMARY = 1000, 1001, 1002, 1003, 1004
SIZE, VENDOR, LICENSE, ARCH, SOURCERPM = 1009, 1011, 1014, 1022, 1044
PROVIDENAME, REQUIRENAME = 1047, 1049
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
MODULARITYLABEL = 5096

T_CHAR, T_INT8, T_INT16, T_INT32, T_INT64, T_STRING, T_BIN, T_STRING_ARRAY, T_I18N = 1, 2, 3, 4, 5, 6, 7, 8, 9
MAX_ENTRIES = 65536
MAX_DATA = 256 * 1024 * 1024


class HeaderError(ValueError):
    pass


@dataclass
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    license: str | None
    sourcerpm: str | None
    vendor: str | None
    summary: str | None
    size: int | None
    provides: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    modularity_label: str | None = None


def parse_header(blob: bytes) -> RpmHeader:
    if len(blob) < 8:
        raise HeaderError("header blob shorter than 8 bytes")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > MAX_ENTRIES or dl > MAX_DATA:
        raise HeaderError(f"implausible header sizes il={il} dl={dl}")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise HeaderError("header blob is truncated")
    data = blob[data_start : data_start + dl]
    entries: dict[int, tuple[int, int, int]] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if off < 0 or off > dl:
            raise HeaderError(f"tag {tag}: offset {off} outside the data")
        entries.setdefault(tag, (typ, off, count))

    def strings(tag: int) -> list[str]:
        e = entries.get(tag)
        if e is None:
            return []
        typ, off, count = e
        if typ == T_STRING:
            count = 1
        elif typ not in (T_STRING_ARRAY, T_I18N):
            return []
        out = []
        pos = off
        for _ in range(min(count, MAX_ENTRIES * 16)):
            end = data.find(b"\x00", pos)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out.append(data[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        return out

    def string(tag: int) -> str | None:
        v = strings(tag)
        return v[0] if v else None

    def ints(tag: int) -> list[int]:
        e = entries.get(tag)
        if e is None:
            return []
        typ, off, count = e
        size = {T_INT8: 1, T_CHAR: 1, T_INT16: 2, T_INT32: 4, T_INT64: 8}.get(typ)
        if size is None:
            return []
        if off + size * count > dl:
            raise HeaderError(f"tag {tag}: integer array outside the data")
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        return list(struct.unpack_from(f">{count}{fmt}", data, off))

    name = string(NAME)
    if not name:
        raise HeaderError("header has no NAME")
    epochs = ints(EPOCH)
    basenames, dirnames, dirindexes = strings(BASENAMES), strings(DIRNAMES), ints(DIRINDEXES)
    files = []
    if basenames and len(dirindexes) == len(basenames):
        for b, di in zip(basenames, dirindexes, strict=True):
            if 0 <= di < len(dirnames):
                files.append(dirnames[di] + b)
    sizes = ints(SIZE)
    return RpmHeader(
        name=name, version=string(VERSION) or "", release=string(RELEASE) or "",
        epoch=epochs[0] if epochs else None, arch=string(ARCH), license=string(LICENSE),
        sourcerpm=string(SOURCERPM), vendor=string(VENDOR), summary=string(SUMMARY),
        size=sizes[0] if sizes else None, provides=strings(PROVIDENAME), requires=strings(REQUIRENAME),
        files=files, modularity_label=string(MODULARITYLABEL),
    )
