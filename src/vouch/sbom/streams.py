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
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from vouch import limits
from vouch.errors import InputError

_inflate: types.ModuleType
_igzip: types.ModuleType | None
try:  # Intel ISA-L inflate: 2-3x faster than zlib, same results; zlib when it is not installed
    from isal import igzip_lib, isal_zlib

    _inflate, _igzip = isal_zlib, igzip_lib
except ImportError:  # pragma: no cover - the dependency is declared; this keeps vouch usable without it
    _inflate, _igzip = zlib, None
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)
_IGZIP_ERRORS: tuple[type[Exception], ...] = (*INFLATE_ERRORS, EOFError)

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

    def read_view(self, n: int) -> memoryview:
        """Up to n bytes of the current chunk as a view (no copy); empty at the end."""
        while not self._buf and not self._eof:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                self._eof = True
        view = self._buf[:n]
        self._buf = self._buf[len(view):]
        self.consumed += len(view)
        return view

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

    if _igzip is not None:
        yield from _igzip_chunks(raw, what, check)
        return
    z: Any = _inflate.decompressobj(wbits=31)
    try:
        while True:
            data: Any = raw.read_view(READ_CHUNK)  # the inflater reads the source's chunk in place
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


def _igzip_chunks(raw: ChunkReader, what: str, check: Callable[[int], None]) -> Iterator[bytes]:
    """gzip through ISA-L's IgzipDecompressor: each call allocates its bounded output at once and inflates
    it with the GIL released in one go (isal_zlib's decompressobj grows its output from 16 KiB, taking the
    GIL back at every step: on a core shared with the tar walk, each of those waits for the walk to let go,
    and the inflate ran at a third of its speed)."""
    assert _igzip is not None
    produced = 0
    z: Any = None  # None: between members (a new one starts with the next bytes)
    pending: Any = b""
    try:
        while True:
            if z is None or z.needs_input:
                data = pending or raw.read_view(READ_CHUNK)
                pending = b""
                if not data:
                    if z is not None and not z.eof:
                        raise InputError(f"{what}: gzip stream is truncated")
                    return
                if z is None:
                    z = _igzip.IgzipDecompressor(flag=_igzip.DECOMP_GZIP)
            else:
                data = b""
            out = z.decompress(data, OUT_CHUNK)  # bounded output: a bomb never balloons memory
            if out:
                produced += len(out)
                check(produced)
                yield out
            if z.eof:  # concatenated gzip members: the next starts with what this one did not use
                pending = z.unused_data
                z = None
    except _IGZIP_ERRORS as exc:
        raise InputError(f"{what}: corrupt gzip data ({exc})") from exc


def raw_chunks(raw: ChunkReader) -> Iterator[bytes]:
    while chunk := raw.read(OUT_CHUNK):
        yield chunk


_END = object()


class _Closed(Exception):
    """The reader was closed while its consumer (a downstream stage's thread) still waited on it."""


class PrefetchReader(io.RawIOBase):
    """Runs a chunk generator in a thread, ahead of the consumer, through a bounded queue. A layer has two:
    one reads the blob and checks its digest, one inflates what the first hands on (hashing, reads and
    inflate release the GIL, so they overlap each other and the tar parsing on the other core). Errors from
    a stage are re-raised in the next one; close() stops this stage and the one upstream of it."""

    def __init__(self, chunks: Iterator[bytes], depth: int = 8, upstream: PrefetchReader | None = None,
                 name: str = "vouch-layer-reader"):
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._upstream = upstream
        self._thread = threading.Thread(target=self._run, args=(chunks,), daemon=True, name=name)
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
        while True:
            try:
                item = self._q.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stop.is_set():  # closed: a downstream stage waiting here stops too
                    raise _Closed from None
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

    def next_chunk(self) -> bytes:
        """The next decompressed chunk as the producer made it (no copy), b"" at the end: what
        tarstream.TarReader pulls (a ChunkSource)."""
        if self._buf:  # what a readinto() left of the current chunk
            rest = bytes(self._buf)
            self._buf = memoryview(b"")
            return rest
        while not self._done:
            chunk = self._next()
            if chunk:
                return chunk
        return b""

    def finish(self) -> None:
        """Consume to the producer's end, so that a digest mismatch at the end of the blob surfaces."""
        while not self._done:
            self._next()

    def close(self) -> None:
        self._stop.set()
        if self._upstream is not None:
            self._upstream._stop.set()  # before the join: this stage's thread may be waiting on it
        self._thread.join(timeout=5)
        if self._upstream is not None:
            self._upstream.close()
        super().close()


def open_layer_stream(chunks: Iterator[bytes], what: str, max_bytes: int, max_ratio: float,
                      ratio_floor: int = RATIO_FLOOR) -> tuple[PrefetchReader, PrefetchReader]:
    """(producer, decompressed stream) for a layer blob, compression sniffed by magic. Both are the one
    PrefetchReader: a readable raw stream, and a ChunkSource that TarReader walks without copying. The blob
    is read (and its digest checked) a stage ahead of the inflate, in a thread of its own."""
    fetch = PrefetchReader(chunks, depth=4, name="vouch-layer-fetch")
    try:
        raw = ChunkReader(iter(fetch.next_chunk, b""))
        magic = raw.peek_magic()
        if magic.startswith(GZIP_MAGIC):
            gen = decompressed_chunks(raw, "gzip", max_bytes, max_ratio, what, ratio_floor)
        elif magic.startswith(ZSTD_MAGIC):
            gen = decompressed_chunks(raw, "zstd", max_bytes, max_ratio, what, ratio_floor)
        else:
            gen = raw_chunks(raw)
        producer = PrefetchReader(gen, upstream=fetch)
    except BaseException:
        fetch.close()
        raise
    return producer, producer
