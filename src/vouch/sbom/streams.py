"""File-like readers over streamed layer blobs: raw chunks → (gzip | zstd | plain) → tar.

Nothing is written to disk. Decompressed size is bounded (decompression bombs) and every
failure names the layer.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any

from vouch.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (the registry's streamed blob)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""
        self._eof = False
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                self._eof = True
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.consumed += n
        return n

    def peek_magic(self, n: int = 4) -> bytes:
        while len(self._buf) < n and not self._eof:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                self._eof = True
        return self._buf[:n]

    def drain(self) -> None:
        """Read to the end, so that the digest check at the end of the blob runs."""
        self._buf = b""
        for chunk in self._chunks:
            self.consumed += len(chunk)
        self._eof = True


class BombError(InputError):
    pass


class DecompressReader(io.RawIOBase):
    """gzip (multi-member) or zstd decompression with an output bound."""

    def __init__(self, raw: ChunkReader, kind: str, max_bytes: int, max_ratio: float, what: str,
                 ratio_floor: int = 256 * 1024 * 1024):
        self._raw = raw
        self._ratio_floor = ratio_floor
        self._kind = kind
        self._max = max_bytes
        self._max_ratio = max_ratio
        self._what = what
        self.produced = 0
        self._pending = b""
        self._done = False
        if kind == "gzip":
            self._z: Any = zlib.decompressobj(wbits=31)
        else:
            import zstandard

            self._z = zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._pending and not self._done:
            data = self._raw.read(256 * 1024)
            if not data:
                if self._kind == "gzip" and not self._z.eof and self.produced:
                    raise InputError(f"{self._what}: gzip stream is truncated")
                self._done = True
                return
            if self._kind == "gzip":
                out = self._z.decompress(data)
                while self._z.eof and self._z.unused_data:  # concatenated gzip members
                    rest = self._z.unused_data
                    self._z = zlib.decompressobj(wbits=31)
                    out += self._z.decompress(rest)
            else:
                out = self._z.decompress(data)
            self._pending = out
            self.produced += len(out)
            if self.produced > self._max:
                raise BombError(f"{self._what}: decompresses to more than {self._max} bytes; refusing it "
                                "(raise --max-layer-bytes if this image is really that large)")
            if self.produced > self._ratio_floor and self.produced > self._max_ratio * max(1, self._raw.consumed):
                raise BombError(f"{self._what}: expands more than {self._max_ratio:.0f}x (a decompression bomb?); "
                                "refusing it")

    def readinto(self, b: Any) -> int:
        try:
            self._fill()
        except zlib.error as exc:
            raise InputError(f"{self._what}: corrupt gzip data ({exc})") from exc
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def open_layer_stream(chunks: Iterator[bytes], what: str, max_bytes: int, max_ratio: float,
                      ratio_floor: int = 256 * 1024 * 1024) -> tuple[ChunkReader, io.BufferedReader]:
    """(raw reader, decompressed buffered reader) for a layer blob, compression sniffed by magic."""
    raw = ChunkReader(chunks)
    magic = raw.peek_magic()
    inner: io.RawIOBase
    if magic.startswith(GZIP_MAGIC):
        inner = DecompressReader(raw, "gzip", max_bytes, max_ratio, what, ratio_floor)
    elif magic.startswith(ZSTD_MAGIC):
        inner = DecompressReader(raw, "zstd", max_bytes, max_ratio, what, ratio_floor)
    else:
        inner = raw
    return raw, io.BufferedReader(inner, buffer_size=1024 * 1024)
