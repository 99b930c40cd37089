"""A minimal streaming tar reader: ustar, GNU (long names, base-256 sizes) and PAX headers.

Faster than `tarfile` in stream mode for what an SBOM needs (headers of every entry, contents of
a few): data that nobody wants is skipped without being copied (the reader walks the decompressed
chunks by offset), a header is unpacked by one precompiled struct and its checksum summed in C.
Every header is checksum-verified and every size bounded; malformed input raises TarFormatError.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from zlib import adler32

from vouch import limits

BLOCK = 512
MAX_META = limits.SBOM_MAX_TAR_META_BYTES  # a PAX or GNU long-name record larger than this is refused
MAX_NAME = limits.SBOM_MAX_PATH_BYTES  # a member name or link target longer than this is refused
PAX_KEYS = frozenset(("path", "linkpath", "size"))  # the PAX keys the scan uses; the others are dropped
_PAX_KEYS_B = frozenset(k.encode() for k in PAX_KEYS)

REG, LNK, SYM, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_NO_DATA = frozenset((LNK, SYM, CHR, BLK, DIR, FIFO))
_TYPES = {bytes([b]): chr(b) for b in range(256)} | {b"\0": REG}  # the type flag byte as a str; NUL is a file
_MODES: dict[bytes, int] = {}  # mode field → value: the same few modes recur in every layer


class TarFormatError(ValueError):
    pass


@dataclass(slots=True)
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
    sp = data.find(b" ", 0, 20)
    if sp > 0 and data[:sp].isdigit() and int(data[:sp]) == end and data[-1] == 0x0A:  # one record: all of it
        key, eq, value = data[sp + 1 : -1].partition(b"=")
        if eq and key in _PAX_KEYS_B:
            into[key.decode()] = value.decode("utf-8", "surrogateescape")
        return
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


@runtime_checkable
class ChunkSource(Protocol):
    """What the reader pulls the archive from: the next chunk of it, b"" at its end (streams.PrefetchReader)."""

    def next_chunk(self) -> bytes: ...


class _Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


_PULL = 1 << 20  # the read size when the archive comes from a file object rather than a ChunkSource
ZERO_BLOCK = bytes(BLOCK)
# the header fields read: name, mode, size, checksum, type flag, link name, magic, prefix (the rest is skipped)
_HEADER = struct.Struct("100s8s16x12s12x8sc100s6s82x155s12x")


def _block_sum(header: bytes) -> int:
    """The sum of a header's bytes, the checksum field counted as spaces. adler32's low half is 1 + the byte
    sum modulo 65521; a run of at most 256 bytes sums to at most 65280, so there it is the exact sum, and
    three C calls replace a Python-level walk over 512 ints."""
    return ((adler32(header[:148]) & 0xFFFF) + (adler32(header[156:412]) & 0xFFFF)
            + (adler32(header[412:]) & 0xFFFF) - 3 + 256)


class TarReader:
    """Iterate entries; call read_data() for the current entry's content, or let it be skipped.

    The archive comes as chunks (a ChunkSource: the decompressed layer as the prefetch thread made it,
    or a file object read in large pieces). The reader keeps the current chunk and an offset into it:
    skipping data nobody wants only moves the offset (no copy at all), a header is one 512-byte slice."""

    def __init__(self, stream: ChunkSource | _Readable | io.BufferedReader):
        if isinstance(stream, ChunkSource):
            self._pull: Callable[[], bytes] = stream.next_chunk
        else:
            self._pull = lambda: stream.read(_PULL)
        self._chunk = b""
        self._pos = 0
        self._remaining = 0  # data + padding of the current entry not consumed yet
        self._data_left = 0

    def _take(self, n: int) -> bytes:
        """The next n bytes (fewer only at the archive's end)."""
        chunk, pos = self._chunk, self._pos
        end = pos + n
        if end <= len(chunk):
            self._pos = end
            return chunk if pos == 0 and end == len(chunk) else chunk[pos:end]
        parts = [chunk[pos:]]
        have = len(chunk) - pos
        while True:
            chunk = self._pull()
            if not chunk:
                self._chunk, self._pos = b"", 0
                return b"".join(parts)
            want = n - have
            if len(chunk) >= want:
                parts.append(chunk[:want])
                self._chunk, self._pos = chunk, want
                return b"".join(parts)
            parts.append(chunk)
            have += len(chunk)

    def _read_exact(self, n: int) -> bytes:
        data = self._take(n)
        if len(data) != n:
            raise TarFormatError("unexpected end of archive (truncated)")
        return data

    def _skip(self, n: int) -> None:
        pos = self._pos + n
        while pos > len(self._chunk):
            pos -= len(self._chunk)
            self._chunk = self._pull()
            if not self._chunk:
                self._pos = 0
                raise TarFormatError("unexpected end of archive (truncated)")
        self._pos = pos

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
        unpack = _HEADER.unpack
        while True:
            if self._remaining:
                self._skip(self._remaining)
                self._remaining = self._data_left = 0
            pos = self._pos
            if pos + BLOCK <= len(self._chunk):  # the header is within the current chunk (nearly always)
                header = self._chunk[pos : pos + BLOCK]
                self._pos = pos + BLOCK
            else:
                header = self._take(BLOCK)
                if not header:
                    return  # a stream without the end-of-archive blocks: accept what was read
                if len(header) != BLOCK:
                    raise TarFormatError("unexpected end of archive (truncated header)")
            f_name, f_mode, f_size, f_chk, f_type, f_link, f_magic, f_prefix = unpack(header)
            # the byte sum, the checksum field counted as spaces (see _block_sum)
            unsigned = ((adler32(header[:148]) & 0xFFFF) + (adler32(header[156:412]) & 0xFFFF)
                        + (adler32(header[412:]) & 0xFFFF) + 253)
            if f_chk != b"%06o\0 " % unsigned:  # not as GNU tar and tarfile write it: parse the field
                if header == ZERO_BLOCK:
                    return  # end of archive
                stored = _octal(f_chk, "checksum")
                if stored != unsigned:  # some old tars summed signed chars
                    rest = header[:148] + header[156:]
                    signed = unsigned - 256 * sum(1 for b in rest if b > 127)
                    if stored != signed:
                        raise TarFormatError("header checksum mismatch (not a tar archive, or corrupt)")
            typeflag = _TYPES[f_type]
            try:  # 11 octal digits and a NUL, as tar writes it; anything else as _octal reads it
                size = int(f_size[:11], 8) if f_size[11] == 0 else _octal(f_size, "size")
            except ValueError:
                size = _octal(f_size, "size")
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
            name = f_name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if f_prefix[0] and f_magic == b"ustar\x00":  # POSIX ustar: prefix field
                prefix = _str(f_prefix)
                if prefix:
                    name = prefix + "/" + name
            linkname = _str(f_link) if f_link[0] else ""
            pax_size = None
            if pending or pax_global:
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
            if typeflag == REG:
                self._data_left = size
                self._remaining = padded
            else:
                self._data_left = 0
                self._remaining = 0 if typeflag in _NO_DATA else padded
                size = 0
            mode = _MODES.get(f_mode)
            if mode is None:
                mode = _octal(f_mode, "mode")
                if len(_MODES) < 4096:  # a few dozen in a real layer; bounded whatever the archive holds
                    _MODES[f_mode] = mode
            yield Entry(name, typeflag, size, linkname, mode)
