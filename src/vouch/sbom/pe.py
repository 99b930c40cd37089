"""Just enough PE (Windows executables) to find data in a binary without running it: the section
table, named sections, reads at virtual addresses — what Go's debug/pe gives debug/buildinfo and
go-rustaudit. Every table size and offset is checked against the file, so a hostile header raises
ExeError instead of reading far or allocating much.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from vouch.sbom.elf import ElfError

MAX_SECTIONS = 96  # the PE loader's own limit
_SCN_INITIALIZED_DATA = 0x40
_SCN_MEM_READ = 0x40000000
_SCN_MEM_WRITE = 0x80000000
_SCN_ALIGN_32BYTES = 0x600000


class ExeError(ElfError):
    """A PE or Mach-O file whose headers point outside it (an ElfError, so callers treat all alike)."""


@dataclass(frozen=True)
class PeSection:
    name: str
    vaddr: int
    vsize: int
    rawsize: int
    rawptr: int
    characteristics: int


class PeFile:
    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size
        head = self.read_at(0, 64)
        if len(head) < 64 or not head.startswith(b"MZ"):
            raise ExeError("not a PE file")
        pe = int.from_bytes(head[0x3C:0x40], "little")
        coff = self.read_at(pe, 24)
        if len(coff) < 24 or coff[:4] != b"PE\0\0":
            raise ExeError("an MZ file without a PE header")
        nsections, = struct.unpack_from("<H", coff, 6)
        symtab, nsymbols = struct.unpack_from("<II", coff, 12)
        optional_size, = struct.unpack_from("<H", coff, 20)
        if nsections > MAX_SECTIONS:
            raise ExeError(f"bad PE section count {nsections}")
        optional = self.read_at(pe + 24, optional_size)
        magic = int.from_bytes(optional[:2], "little") if len(optional) >= 2 else 0
        if magic == 0x20B and len(optional) >= 32:  # PE32+
            self.image_base = int.from_bytes(optional[24:32], "little")
        elif magic == 0x10B and len(optional) >= 32:  # PE32
            self.image_base = int.from_bytes(optional[28:32], "little")
        else:
            self.image_base = 0
        table = self.read_at(pe + 24 + optional_size, 40 * nsections)
        if len(table) < 40 * nsections:
            raise ExeError("PE section table outside the file")
        strings_at = symtab + 18 * nsymbols if symtab else 0
        self.sections: list[PeSection] = []
        for i in range(nsections):
            raw_name, vsize, vaddr, rawsize, rawptr = struct.unpack_from("<8sIIII", table, 40 * i)
            characteristics, = struct.unpack_from("<I", table, 40 * i + 36)
            name = raw_name.rstrip(b"\0").decode("ascii", "replace")
            if name.startswith("/") and name[1:].isdigit() and strings_at:  # a long name, in the string table
                tail = self.read_at(strings_at + int(name[1:]), 256) if strings_at + int(name[1:]) <= size else b""
                name = tail.split(b"\0", 1)[0].decode("ascii", "replace") or name
            self.sections.append(PeSection(name, vaddr, vsize, rawsize, rawptr, characteristics))

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset > self.size:
            raise ExeError(f"read outside the file at {offset}")
        self.f.seek(offset)
        return self.f.read(min(n, self.size - offset))

    def section(self, name: str) -> PeSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, section: PeSection, limit: int) -> bytes:
        n = min(section.vsize, section.rawsize) if section.vsize else section.rawsize
        if n > limit or section.rawptr + n > self.size:
            raise ExeError(f"section {section.name} is larger than {limit} bytes or outside the file")
        return self.read_at(section.rawptr, n)

    def first_data_section(self) -> PeSection | None:
        """Where the Go linker puts the build info: the first section that is initialised, readable,
        writable data and nothing else (debug/buildinfo's rule)."""
        want = _SCN_INITIALIZED_DATA | _SCN_MEM_READ | _SCN_MEM_WRITE
        for s in self.sections:
            if s.vaddr and s.rawsize and s.characteristics & ~_SCN_ALIGN_32BYTES == want:
                return s
        return None

    def read_vaddr(self, addr: int, n: int) -> bytes:
        """Bytes at a virtual address (image base included), through the section that holds them."""
        rva = addr - self.image_base
        for s in self.sections:
            if s.vaddr <= rva and rva + n <= s.vaddr + s.rawsize:
                return self.read_at(s.rawptr + rva - s.vaddr, n)
        raise ExeError(f"address {addr:#x} is not in a PE section")
