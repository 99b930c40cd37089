"""Go binaries (ELF; PE for Windows images; Mach-O): the build info the Go linker embeds
(`go version -m`), read without running anything.

Finds the `\\xff Go buildinf:` header where Go's debug/buildinfo looks — ELF `.go.buildinfo` (or,
with no section table, the first writable segment), the first PE data section, Mach-O
`__go_buildinfo` — reads the Go version and the module info either inline (Go ≥ 1.18)
or through pointers (older), and parses `path`, `mod`, `dep`, `=>` and `build` lines. Works on
stripped (`-s -w`) and `-trimpath` binaries: none of that touches the build info.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from vouch.sbom.elf import ElfError, ElfFile
from vouch.sbom.macho import MachOFile
from vouch.sbom.pe import PeFile

MAGIC = b"\xff Go buildinf:"
MAX_INFO = 8 * 1024 * 1024
_SEARCH = 1024 * 1024  # how far into the data segment the header may be (no section table)


@dataclass
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ElfError("bad varint in Go build info")


def _inline_string(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _varint(data, pos)
    if n > MAX_INFO or pos + n > len(data):
        raise ElfError("Go build info string runs past its section")
    return data[pos:pos + n], pos + n


def _magic_at(data: bytes) -> int | None:
    pos = data.find(MAGIC, 0, _SEARCH)
    while pos >= 0 and pos % 16:
        pos = data.find(MAGIC, pos + 1, _SEARCH)
    return pos if pos >= 0 and len(data) >= pos + 32 else None


def _find_header(elf: ElfFile) -> tuple[bytes, int] | None:
    sec = elf.section(".go.buildinfo")
    if sec is not None:
        data = elf.read_at(sec.offset, min(sec.size, MAX_INFO)) if sec.type != 8 else b""
    elif elf.has_sections:
        return None  # a section table without .go.buildinfo (Go has written one since 1.13): not Go
    else:
        seg = elf.first_writable_segment()
        if seg is None:
            return None
        data = elf.read_at(seg.offset, min(seg.filesz, MAX_INFO))
    pos = _magic_at(data)
    return (data, pos) if pos is not None else None


def _decode(version: bytes, modinfo: bytes) -> BuildInfo:
    # 16-byte sentinels around the text
    modinfo = modinfo[16:-16] if len(modinfo) >= 33 and modinfo[-17] == 0x0A else b""
    info = BuildInfo(version.decode("utf-8", "replace").split(" ", 1)[0])
    parse_modinfo(info, modinfo.decode("utf-8", "replace"))
    return info


def read_buildinfo(elf: ElfFile) -> BuildInfo | None:
    found = _find_header(elf)
    if found is None:
        return None
    data, pos = found
    return _from_header(data, pos, elf.read_vaddr)


def _from_header(data: bytes, pos: int, read_vaddr: Callable[[int, int], bytes]) -> BuildInfo:
    """The build info after its header: inline (Go 1.18+) or, before, two pointers to Go string headers
    (pointer, length) that `read_vaddr` follows — the same in every executable format."""
    ptr_size, flags = data[pos + 14], data[pos + 15]
    if flags & 2:  # Go 1.18+: two varint-prefixed strings right after the 32-byte header
        version, p = _inline_string(data, pos + 32)
        modinfo, _ = _inline_string(data, p)
        return _decode(version, modinfo)
    if ptr_size not in (4, 8):
        raise ElfError("bad pointer size in Go build info")
    order: Literal["big", "little"] = "big" if flags & 1 else "little"

    def deref(at: int) -> bytes:
        addr = int.from_bytes(data[at:at + ptr_size], order)
        header = read_vaddr(addr, 2 * ptr_size)
        ptr = int.from_bytes(header[:ptr_size], order)
        n = int.from_bytes(header[ptr_size:], order)
        if n > MAX_INFO:
            raise ElfError("Go build info string too long")
        return read_vaddr(ptr, n) if n else b""

    return _decode(deref(pos + 16), deref(pos + 16 + ptr_size))


def read_pe_buildinfo(pe: PeFile) -> BuildInfo | None:
    """A Windows (PE) Go binary: the build info opens its first data section, as Go's own reader finds
    it; either layout (pointers before Go 1.18) through the section table."""
    sec = pe.first_data_section()
    if sec is None:
        return None
    data = pe.read_at(sec.rawptr, min(sec.rawsize, MAX_INFO))
    pos = _magic_at(data)
    return _from_header(data, pos, pe.read_vaddr) if pos is not None else None


def read_macho_buildinfo(m: MachOFile) -> BuildInfo | None:
    """A macOS (Mach-O) Go binary: the `__go_buildinfo` section (Go 1.13+), else the data segment."""
    sec = m.section("__go_buildinfo")
    if sec is not None:
        data = m.read_at(sec.offset, min(sec.size, MAX_INFO)) if sec.offset else b""
    else:
        seg = m.first_writable_segment()
        if seg is None:
            return None
        data = m.read_at(seg.fileoff, min(seg.filesz, MAX_INFO))
    pos = _magic_at(data)
    return _from_header(data, pos, m.read_vaddr) if pos is not None else None


def parse_modinfo(info: BuildInfo, text: str) -> None:
    last: Module | None = None
    for line in text.splitlines():
        parts = line.split("\t")
        kind = parts[0]
        if kind == "path" and len(parts) >= 2:
            info.path = parts[1]
        elif kind in ("mod", "dep") and len(parts) >= 3:
            last = Module(parts[1], parts[2], parts[3] if len(parts) > 3 else "")
            if kind == "mod":
                info.main = last
            else:
                info.deps.append(last)
        elif kind == "=>" and len(parts) >= 2 and last is not None:
            last.replace = Module(parts[1], parts[2] if len(parts) > 2 else "", parts[3] if len(parts) > 3 else "")
        elif kind == "build" and len(parts) >= 2:
            key, _, value = parts[1].partition("=")
            info.settings[key] = value.strip('"') if key == "-ldflags" else value


# syft's patterns for a version set with -X, made safe for a backtracking regex engine (Go's is linear):
# path segments cannot overlap and the dots are literal, so a hostile -ldflags cannot blow up the search.
_VERSION = r"(?P<version>v?\d+\.\d+\.\d+[-\w]*(?:\.[-\w]+)*)"
_LDFLAGS_PATTERNS = (
    r"\.[a-zA-Z0-9]*(?:[rR]elease)?(?:[gG]it)?(?:[bB]uild)?[vV]er(?:sion)?=(?:[^\s/]*/)*" + _VERSION,
    r"\.[a-zA-Z0-9]*[tT]ag=(?:[^\s/]*/)*" + _VERSION,
)


def main_version(info: BuildInfo) -> str:
    """The main module's version: as built, else `-X ...version=` in -ldflags, else a pseudo-version
    from vcs.revision + vcs.time (as `go` itself would write it), else `(devel)`."""
    main = info.main
    version = main.version if main else ""
    if version and version != "(devel)":
        return version
    ldflags = info.settings.get("-ldflags", "")
    mod = main.path if main else info.path
    # one -X assignment per whitespace-separated token; long tokens are not version assignments
    tokens = [t.removeprefix("-X=") for t in ldflags[:65536].split() if len(t) <= 1024]
    for pattern in _LDFLAGS_PATTERNS:
        rx = re.compile(rf"(?:main|{re.escape(mod)}/\S*){pattern}")
        for token in tokens:
            m = rx.match(token)
            if m:
                v = m.group("version")
                return v if v.startswith("v") else "v" + v
    rev, when = info.settings.get("vcs.revision"), info.settings.get("vcs.time")
    if rev and when:
        try:
            t = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(dt.UTC)
        except (ValueError, OverflowError):  # not a time, or one UTC cannot hold (0001-01-01T00:00+01:00)
            t = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
        major = re.search(r"/v([2-9]|[1-9][0-9]+)$", mod)
        # the year as four digits: strftime writes year 1 as "1"
        return f"v{major.group(1) if major else '0'}.0.0-{t.year:04d}{t:%m%d%H%M%S}-{rev[:12]}"
    return "(devel)"
