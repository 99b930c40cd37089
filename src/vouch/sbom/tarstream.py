"""A minimal streaming tar reader: ustar, GNU (long names, base-256 sizes) and PAX headers.

Faster than `tarfile` in stream mode for what an SBOM needs (headers of every entry, contents of
a few): data that nobody wants is skipped in large reads into one reused buffer. Every header is
checksum-verified and every size bounded; malformed input raises TarFormatError.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

from vouch import limits

BLOCK = 512
MAX_META = limits.SBOM_MAX_TAR_META_BYTES  # a PAX or GNU long-name record larger than this is refused
MAX_NAME = limits.SBOM_MAX_PATH_BYTES  # a member name or link target longer than this is refused
PAX_KEYS = frozenset(("path", "linkpath", "size"))  # the PAX keys the scan uses; the others are dropped

REG, LNK, SYM, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"


class TarFormatError(ValueError):
    pass


@dataclass
class Entry:
    name: str
    type: str  # one of REG LNK SYM CHR BLK DIR FIFO, or another tar type flag
    size: int
    linkname: str
    mode: int


def _octal(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise TarFormatError(f"negative {what}")
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise TarFormatError(f"bad {what} field {text[:20]!r}") from exc


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes, into: dict[str, str]) -> None:
    """The records of a PAX header that the scan uses (PAX_KEYS) into `into`: the others (times,
    owners, xattrs, or 78,000 junk keys) are parsed and dropped, so they cost nothing per entry."""
    pos = 0
    end = len(data)
    while pos < end:
        sp = data.find(b" ", pos, min(end, pos + 20))  # the decimal length: 20 digits at most
        if sp < 0:
            break  # padding or trailing junk ends the records, as tarfile reads them
        try:
            length = int(data[pos:sp])
        except ValueError as exc:
            raise TarFormatError("bad PAX record length") from exc
        if length <= sp + 1 - pos or pos + length > end or data[pos + length - 1] != 0x0A:
            raise TarFormatError("bad PAX record length")  # a record ends with a newline, where its length says
        record = data[sp + 1 : pos + length - 1]  # without the trailing newline
        key, eq, value = record.partition(b"=")
        name = key.decode("utf-8", "replace")
        if eq and name in PAX_KEYS:
            into[name] = value.decode("utf-8", "surrogateescape")
        pos += length


class TarReader:
    """Iterate entries; call read_data() for the current entry's content, or let it be skipped."""

    def __init__(self, stream: io.BufferedReader):
        self._s = stream
        self._remaining = 0  # data + padding of the current entry not consumed yet
        self._data_left = 0
        self._buf = bytearray(1 << 20)
        self._view = memoryview(self._buf)

    def _read_exact(self, n: int) -> bytes:
        data = self._s.read(n)
        if len(data) != n:
            raise TarFormatError("unexpected end of archive (truncated)")
        return data

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self._view[: min(n, len(self._buf))]
            got = self._s.readinto(chunk)
            if not got:
                raise TarFormatError("unexpected end of archive (truncated)")
            n -= got

    def read_data(self, limit: int) -> bytes:
        """The current entry's data (at most `limit` bytes, else TarFormatError)."""
        if self._data_left > limit:
            raise TarFormatError("entry larger than the limit")
        data = self._read_exact(self._data_left)
        self._remaining -= self._data_left
        self._data_left = 0
        return data

    def read_chunk(self, n: int) -> bytes:
        """Up to `n` more bytes of the current entry's data (b"" at its end): for streamed reads."""
        n = min(n, self._data_left)
        if n <= 0:
            return b""
        data = self._read_exact(n)
        self._data_left -= n
        self._remaining -= n
        return data

    def __iter__(self) -> Iterator[Entry]:
        pax_global: dict[str, str] = {}
        pending: dict[str, str] = {}
        while True:
            if self._remaining:
                self._skip(self._remaining)
                self._remaining = self._data_left = 0
            header = self._s.read(BLOCK)
            if not header:
                return  # a stream without the end-of-archive blocks: accept what was read
            if len(header) != BLOCK:
                raise TarFormatError("unexpected end of archive (truncated header)")
            if header.count(0) == BLOCK:
                return  # end of archive
            stored = _octal(header[148:156], "checksum")
            unsigned = sum(header) - sum(header[148:156]) + 256  # the checksum field counts as spaces
            if stored != unsigned:  # some old tars summed signed chars
                rest = header[:148] + header[156:]
                signed = unsigned - 256 * sum(1 for b in rest if b > 127)
                if stored != signed:
                    raise TarFormatError("header checksum mismatch (not a tar archive, or corrupt)")
            typeflag = chr(header[156]) if header[156] else REG
            size = _octal(header[124:136], "size")
            padded = size + (-size % BLOCK)
            if typeflag in ("x", "g", "L", "K"):
                if size > MAX_META:
                    raise TarFormatError(f"a {typeflag!r} metadata record of {size} bytes is too large")
                data = self._read_exact(padded)[:size]
                if typeflag == "x":
                    _pax(data, pending)
                elif typeflag == "g":
                    _pax(data, pax_global)
                elif typeflag == "L":
                    pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                else:
                    pending["linkpath"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue
            name = _str(header[0:100])
            if header[257:263] == b"ustar\x00":  # POSIX ustar: prefix field
                prefix = _str(header[345:500])
                if prefix:
                    name = prefix + "/" + name
            linkname = _str(header[157:257])
            # an entry's own records, else the global ones: at most three lookups, never a merged copy
            name = pending.get("path", pax_global.get("path", name))
            linkname = pending.get("linkpath", pax_global.get("linkpath", linkname))
            pax_size = pending.get("size", pax_global.get("size"))
            pending = {}
            if len(name) > MAX_NAME or len(linkname) > MAX_NAME:
                raise TarFormatError(f"a member name or link target of {max(len(name), len(linkname))} characters "
                                     f"is longer than the limit of {MAX_NAME}")
            if pax_size is not None:
                try:
                    size = int(pax_size)
                except ValueError as exc:
                    raise TarFormatError("bad PAX size") from exc
                if size < 0:
                    raise TarFormatError("negative PAX size")
                padded = size + (-size % BLOCK)
            if typeflag == "7":
                typeflag = REG
            # As tarfile does: only regular files and unknown types carry data in the archive.
            has_data = typeflag not in (LNK, SYM, CHR, BLK, DIR, FIFO)
            self._data_left = size if typeflag == REG else 0
            self._remaining = padded if has_data else 0
            mode = _octal(header[100:108], "mode")
            yield Entry(name, typeflag, size if typeflag == REG else 0, linkname, mode)
