"""File-like readers over streamed layer blobs: raw chunks → (gzip | zstd | plain) → tar.

Nothing is written to disk. Decompressed size is bounded (decompression bombs) and every
failure names the layer.
"""

from __future__ import annotations

import io
import queue
import threading
import types
import zlib
from collections.abc import Iterator
from typing import IO, Any, cast

from vouch import limits
from vouch.errors import InputError

_inflate: types.ModuleType
try:  # Intel ISA-L inflate: 2-3x faster than zlib, same results; zlib when it is not installed
    from isal import isal_zlib

    _inflate = isal_zlib
except ImportError:  # pragma: no cover - the dependency is declared; this keeps vouch usable without it
    _inflate = zlib
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (the registry's streamed blob)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = memoryview(b"")  # a view: reading a large chunk piecewise never copies its rest
        self._eof = False
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            try:
                self._buf = memoryview(next(self._chunks))
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
                self._buf = memoryview(bytes(self._buf) + next(self._chunks))
            except StopIteration:
                self._eof = True
        return bytes(self._buf[:n])


class BombError(InputError):
    pass


OUT_CHUNK = limits.SBOM_OUT_CHUNK
READ_CHUNK = limits.SBOM_READ_CHUNK
RATIO_FLOOR = limits.SBOM_RATIO_FLOOR


def decompressed_chunks(raw: ChunkReader, kind: str, max_bytes: int, max_ratio: float, what: str,
                        ratio_floor: int = RATIO_FLOOR) -> Iterator[bytes]:
    """gzip (multi-member) or zstd (multi-frame) → chunks of at most OUT_CHUNK bytes, with the
    decompression-bomb bounds checked on every chunk. Every decompressor call is bounded in its
    output, so memory stays flat whatever the ratio (4 bytes of zstd RLE block are 128 KiB)."""
    produced = 0

    def check(n: int) -> None:
        if n > max_bytes:
            raise BombError(f"{what}: decompresses to more than {max_bytes} bytes; refusing it "
                            "(raise --max-layer-bytes if this image is really that large)")
        if n > ratio_floor and n > max_ratio * max(1, raw.consumed):
            raise BombError(f"{what}: expands more than {max_ratio:.0f}x (a decompression bomb?); refusing it")

    if kind == "zstd":
        import zstandard

        # stream_reader.read(n) returns at most n bytes; read_across_frames: zstd:chunked and pzstd
        # layers are many frames (and skippable frames), all of the layer.
        reader = zstandard.ZstdDecompressor(max_window_size=limits.SBOM_MAX_ZSTD_WINDOW).stream_reader(
            cast(IO[bytes], raw), read_size=READ_CHUNK, read_across_frames=True, closefd=False)  # it reads raw.read()
        try:
            while out := reader.read(OUT_CHUNK):
                produced += len(out)
                check(produced)
                yield out
        except zstandard.ZstdError as exc:
            raise InputError(f"{what}: corrupt zstd data ({exc})") from exc
        return

    z: Any = _inflate.decompressobj(wbits=31)
    try:
        while True:
            data = raw.read(READ_CHUNK)
            if not data:
                if not z.eof and produced:
                    raise InputError(f"{what}: gzip stream is truncated")
                return
            while data:
                out = z.decompress(data, OUT_CHUNK)  # bounded output: a bomb never balloons memory
                data = z.unconsumed_tail
                if out:
                    produced += len(out)
                    check(produced)
                    yield out
                if z.eof:  # concatenated gzip members
                    rest = z.unused_data + data
                    if not rest:
                        break
                    z = _inflate.decompressobj(wbits=31)
                    data = rest
    except INFLATE_ERRORS as exc:
        raise InputError(f"{what}: corrupt gzip data ({exc})") from exc


def raw_chunks(raw: ChunkReader) -> Iterator[bytes]:
    while chunk := raw.read(OUT_CHUNK):
        yield chunk


_END = object()


class PrefetchReader(io.RawIOBase):
    """Runs a chunk generator (read + digest + inflate) in a thread, ahead of the consumer, through a
    bounded queue: inflate and hashing release the GIL, so they overlap with tar parsing on a second
    core. Errors from the producer are re-raised in the consumer; close() stops the producer."""

    def __init__(self, chunks: Iterator[bytes], depth: int = 8):
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(chunks,), daemon=True, name="vouch-layer-reader")
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes | None:
        """The producer's next chunk; None at its end; its error re-raised here."""
        item = self._q.get()
        if item is _END:
            self._done = True
            return None
        if isinstance(item, BaseException):
            self._done = True
            raise item
        assert isinstance(item, bytes)
        return item

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._done:
            chunk = self._next()
            if chunk is not None:
                self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def finish(self) -> None:
        """Consume to the producer's end, so that a digest mismatch at the end of the blob surfaces."""
        while not self._done:
            self._next()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        super().close()


def open_layer_stream(chunks: Iterator[bytes], what: str, max_bytes: int, max_ratio: float,
                      ratio_floor: int = RATIO_FLOOR) -> tuple[PrefetchReader, io.BufferedReader]:
    """(producer, decompressed buffered reader) for a layer blob, compression sniffed by magic."""
    raw = ChunkReader(chunks)
    magic = raw.peek_magic()
    if magic.startswith(GZIP_MAGIC):
        gen = decompressed_chunks(raw, "gzip", max_bytes, max_ratio, what, ratio_floor)
    elif magic.startswith(ZSTD_MAGIC):
        gen = decompressed_chunks(raw, "zstd", max_bytes, max_ratio, what, ratio_floor)
    else:
        gen = raw_chunks(raw)
    producer = PrefetchReader(gen)
    return producer, io.BufferedReader(producer, buffer_size=OUT_CHUNK)
