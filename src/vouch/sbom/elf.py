"""Just enough ELF to find data in a binary without running it: sections, loadable segments, reads.

Every table size and offset is checked against the file size, so a hostile header raises
ElfError instead of reading far or allocating much.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_W = 2
MAX_SECTIONS = 4096
MAX_SEGMENTS = 512


class ElfError(ValueError):
    pass


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfFile:
    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size
        ident = self.read_at(0, 64)
        if len(ident) < 52 or not ident.startswith(ELF_MAGIC):
            raise ElfError("not an ELF file")
        cls, data = ident[4], ident[5]
        if cls not in (1, 2) or data not in (1, 2):
            raise ElfError("unknown ELF class or byte order")
        self.is64 = cls == 2
        self.order = "<" if data == 1 else ">"
        self.ptr_size = 8 if self.is64 else 4
        if self.is64:
            (phoff, shoff) = struct.unpack_from(self.order + "QQ", ident, 32)
            (phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(self.order + "HHHHH", ident, 54)
        else:
            (phoff, shoff) = struct.unpack_from(self.order + "II", ident, 28)
            (phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(self.order + "HHHHH", ident, 42)
        self._ph = (phoff, phentsize, phnum)
        self._segments_cache: list[Segment] | None = None
        self._by_name = self._sections(shoff, shentsize, shnum, shstrndx)
        self.has_sections = bool(self._by_name)

    @property
    def segments(self) -> list[Segment]:
        if self._segments_cache is None:  # parsed on demand: most binaries never need them
            self._segments_cache = self._segments(*self._ph)
        return self._segments_cache

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset > self.size:
            raise ElfError(f"read outside the file at {offset}")
        self.f.seek(offset)
        return self.f.read(min(n, self.size - offset))

    def _table(self, off: int, entsize: int, num: int, minsize: int, limit: int, what: str) -> bytes:
        if num == 0:
            return b""
        if num > limit or entsize < minsize or off + entsize * num > self.size:
            raise ElfError(f"bad {what} table")
        return self.read_at(off, entsize * num)

    def _segments(self, off: int, entsize: int, num: int) -> list[Segment]:
        raw = self._table(off, entsize, num, 56 if self.is64 else 32, MAX_SEGMENTS, "program header")
        out = []
        for i in range(num if raw else 0):
            b = i * entsize
            if self.is64:
                ptype, flags, offset, vaddr, _paddr, filesz = struct.unpack_from(self.order + "IIQQQQ", raw, b)
            else:
                ptype, offset, vaddr, _paddr, filesz, _memsz, flags = struct.unpack_from(self.order + "IIIIIII", raw, b)
            out.append(Segment(ptype, flags, offset, vaddr, filesz))
        return out

    def _sections(self, off: int, entsize: int, num: int, strndx: int) -> dict[bytes, tuple[int, ...]]:
        """Section rows by name (the first of a name wins); nothing else is decoded."""
        raw = self._table(off, entsize, num, 64 if self.is64 else 40, MAX_SECTIONS, "section header")
        if not raw:
            return {}
        full = self.order + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        if entsize == struct.calcsize(full):
            rows = list(struct.iter_unpack(full, raw))
        else:
            fmt = self.order + ("IIQQQQ" if self.is64 else "IIIIII")
            rows = [struct.unpack_from(fmt, raw, i * entsize) for i in range(num)]
        names = b""
        if 0 < strndx < num:
            soff, ssize = rows[strndx][4], rows[strndx][5]
            if soff + ssize <= self.size and ssize <= 1024 * 1024:
                names = self.read_at(soff, ssize)
        out: dict[bytes, tuple[int, ...]] = {}
        for row in rows:
            n = row[0]
            if 0 <= n < len(names):
                end = names.find(b"\0", n)
                out.setdefault(names[n:end] if end >= 0 else b"", row)
        out.setdefault(b"", rows[0])
        return out

    def section(self, name: str) -> Section | None:
        row = self._by_name.get(name.encode("ascii"))
        if row is None:
            return None
        return Section(name, row[1], row[2], row[3], row[4], row[5])

    def section_data(self, section: Section, limit: int) -> bytes:
        if section.type == 8:  # SHT_NOBITS
            return b""
        if section.size > limit or section.offset + section.size > self.size:
            raise ElfError(f"section {section.name} is larger than {limit} bytes or outside the file")
        return self.read_at(section.offset, section.size)

    def read_vaddr(self, addr: int, n: int) -> bytes:
        """Bytes at a virtual address, through the loadable segment that maps it."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= addr and addr + n <= seg.vaddr + seg.filesz:
                return self.read_at(seg.offset + addr - seg.vaddr, n)
        raise ElfError(f"address {addr:#x} is not in a loadable segment")

    def first_writable_segment(self) -> Segment | None:
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.flags & PF_W:
                return seg
        return None
