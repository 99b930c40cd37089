"""Just enough Mach-O (macOS executables, thin or universal) to find data in a binary without
running it: segments, sections, reads at virtual addresses — what Go's debug/macho gives
debug/buildinfo and go-rustaudit. A universal ("fat") file is read through its first slice, as Go's
own reader does. Every count and offset is checked against the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from vouch.sbom.pe import ExeError

THIN_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")
MAX_COMMANDS = 4096
MAX_COMMAND_BYTES = 16 * 1024 * 1024
MAX_FAT_ARCHES = 32  # a Java class file shares the magic; its version is ≥ 45 here
_LC_SEGMENT, _LC_SEGMENT_64 = 0x1, 0x19


@dataclass(frozen=True)
class Segment:
    name: str
    vaddr: int
    fileoff: int
    filesz: int


@dataclass(frozen=True)
class MachSection:
    segment: str
    name: str
    addr: int
    size: int
    offset: int


def is_macho(head: bytes) -> bool:
    if head[:4] in THIN_MAGICS:
        return True
    return head[:4] in FAT_MAGICS and len(head) >= 8 and 0 < int.from_bytes(head[4:8], "big") <= MAX_FAT_ARCHES


class MachOFile:
    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size
        self.base = 0
        head = self._read(0, 32)
        if head[:4] in FAT_MAGICS:
            narch = int.from_bytes(head[4:8], "big")
            if not 0 < narch <= MAX_FAT_ARCHES:
                raise ExeError("not a universal Mach-O file")
            entry = self._read(8, 32)
            self.base = int.from_bytes(entry[8:12], "big") if head[:4] == FAT_MAGICS[0] else \
                int.from_bytes(entry[8:16], "big")
            head = self._read(self.base, 32)
        if head[:4] not in THIN_MAGICS:
            raise ExeError("not a Mach-O file")
        self.order = ">" if head[:2] == b"\xfe\xed" else "<"
        is64 = head[3 if self.order == ">" else 0] == 0xCF
        ncmds, sizeofcmds = struct.unpack_from(self.order + "II", head, 16)
        if ncmds > MAX_COMMANDS or sizeofcmds > MAX_COMMAND_BYTES:
            raise ExeError("bad Mach-O load command table")
        cmds = self._read(self.base + (32 if is64 else 28), sizeofcmds)
        if len(cmds) < sizeofcmds:
            raise ExeError("Mach-O load commands outside the file")
        self.segments: list[Segment] = []
        self.sections: list[MachSection] = []
        pos = 0
        for _ in range(ncmds):
            if pos + 8 > len(cmds):
                raise ExeError("Mach-O load command outside its table")
            cmd, cmdsize = struct.unpack_from(self.order + "II", cmds, pos)
            if cmdsize < 8 or pos + cmdsize > len(cmds):
                raise ExeError("bad Mach-O load command size")
            if cmd in (_LC_SEGMENT, _LC_SEGMENT_64):
                self._segment(cmds[pos:pos + cmdsize], cmd == _LC_SEGMENT_64)
            pos += cmdsize

    def _segment(self, raw: bytes, is64: bool) -> None:
        o = self.order
        if is64 and len(raw) >= 72:
            segname, vaddr, _vsize, fileoff, filesz = struct.unpack_from(o + "16sQQQQ", raw, 8)
            nsects, = struct.unpack_from(o + "I", raw, 64)
            at, width = 72, 80
        elif not is64 and len(raw) >= 56:
            segname, vaddr, _vsize, fileoff, filesz = struct.unpack_from(o + "16sIIII", raw, 8)
            nsects, = struct.unpack_from(o + "I", raw, 48)
            at, width = 56, 68
        else:
            raise ExeError("short Mach-O segment command")
        name = segname.rstrip(b"\0").decode("ascii", "replace")
        self.segments.append(Segment(name, vaddr, fileoff, filesz))
        if at + nsects * width > len(raw):
            raise ExeError("Mach-O sections outside their segment command")
        for i in range(nsects):
            b = at + i * width
            sectname, seg = struct.unpack_from("16s16s", raw, b)
            if is64:
                addr, size = struct.unpack_from(o + "QQ", raw, b + 32)
                offset, = struct.unpack_from(o + "I", raw, b + 48)
            else:
                addr, size, offset = struct.unpack_from(o + "III", raw, b + 32)
            self.sections.append(MachSection(seg.rstrip(b"\0").decode("ascii", "replace"),
                                             sectname.rstrip(b"\0").decode("ascii", "replace"), addr, size, offset))

    def _read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset > self.size:
            raise ExeError(f"read outside the file at {offset}")
        self.f.seek(offset)
        return self.f.read(min(n, self.size - offset))

    def read_at(self, offset: int, n: int) -> bytes:
        """Bytes at a file offset of this slice (a universal file's slice starts at `base`)."""
        return self._read(self.base + offset, n)

    def section(self, name: str) -> MachSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, section: MachSection, limit: int) -> bytes:
        if section.size > limit or self.base + section.offset + section.size > self.size:
            raise ExeError(f"section {section.name} is larger than {limit} bytes or outside the file")
        return self.read_at(section.offset, section.size) if section.offset else b""

    def read_vaddr(self, addr: int, n: int) -> bytes:
        for seg in self.segments:
            if seg.name != "__PAGEZERO" and seg.vaddr <= addr and addr + n <= seg.vaddr + seg.filesz:
                return self.read_at(seg.fileoff + addr - seg.vaddr, n)
        raise ExeError(f"address {addr:#x} is not in a Mach-O segment")

    def first_writable_segment(self) -> Segment | None:
        """Go's fallback with no __go_buildinfo section (Go asks for a read-write segment; the linker's
        is __DATA)."""
        return next((s for s in self.segments if s.vaddr and s.filesz and s.name == "__DATA"), None)
