"""Layer streams (vouch.sbom.streams): gzip through ISA-L's IgzipDecompressor and through zlib give the
same bytes, for one member or several, however the compressed bytes are cut into chunks; a cut-off
stream is an error naming the layer, never a silent short read."""

from __future__ import annotations

import gzip
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.errors import InputError
from vouch.sbom import streams

PATHS = ["igzip", "zlib"]


def _inflate(blob: bytes, cuts: list[int], path: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    if path == "zlib":
        monkeypatch.setattr(streams, "_igzip", None)
    bounds = sorted({0, len(blob), *(c % (len(blob) + 1) for c in cuts)})
    chunks = [blob[a:b] for a, b in itertools.pairwise(bounds)]
    raw = streams.ChunkReader(iter(chunks))
    out = b"".join(streams.decompressed_chunks(raw, "gzip", 1 << 40, 1e9, "layer sha256:ab"))
    monkeypatch.undo()
    return out


@settings(max_examples=60, deadline=None)
@given(members=st.lists(st.binary(max_size=3000) | st.just(os.urandom(200_000)) | st.just(b"a" * 3_000_000),
                        min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=0, max_value=1 << 24), max_size=6))
def test_every_member_inflates_the_same_way_whatever_the_chunks(members: list[bytes], cuts: list[int]) -> None:
    blob = b"".join(gzip.compress(m, compresslevel=6) for m in members)
    with pytest.MonkeyPatch.context() as mp:
        for path in PATHS:
            assert _inflate(blob, cuts, path, mp) == b"".join(members), path


@pytest.mark.parametrize("path", PATHS)
def test_a_cut_off_stream_is_an_error_that_names_the_layer(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = gzip.compress(os.urandom(300_000) + b"x" * 2_000_000)
    for end in (len(blob) // 3, len(blob) - 5):
        with pytest.raises(InputError, match=r"layer sha256:ab: (gzip stream is truncated|corrupt gzip)"):
            _inflate(blob[:end], [4096, 70_000], path, monkeypatch)


@pytest.mark.parametrize("path", PATHS)
def test_garbage_after_a_member_is_corrupt_data(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = gzip.compress(b"hello" * 1000) + b"\x00not gzip at all"
    with pytest.raises(InputError, match="corrupt gzip data"):
        _inflate(blob, [], path, monkeypatch)


def test_each_chunk_is_bounded_whatever_the_ratio() -> None:
    blob = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # ~1000x
    raw = streams.ChunkReader(iter([blob]))
    sizes = [len(c) for c in streams.decompressed_chunks(raw, "gzip", 1 << 40, 1e9, "layer x")]
    assert sum(sizes) == 64 << 20 and max(sizes) <= streams.OUT_CHUNK



@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=4000), flip=st.integers(min_value=0, max_value=1 << 16))
def test_hostile_gzip_bytes_give_data_or_one_input_error(body: bytes, flip: int) -> None:
    """Whatever follows the gzip magic (random bytes, or a real stream with one byte flipped): the igzip
    path yields bounded chunks or raises InputError naming the layer, never another exception."""
    for blob in (b"\x1f\x8b" + body, _flipped(gzip.compress(body), flip)):
        raw = streams.ChunkReader(iter([blob[:7], blob[7:]]))
        try:
            for chunk in streams.decompressed_chunks(raw, "gzip", 1 << 24, 1e9, "layer sha256:ab"):
                assert len(chunk) <= streams.OUT_CHUNK
        except InputError as exc:
            assert "layer sha256:ab" in str(exc)


def _flipped(blob: bytes, at: int) -> bytes:
    i = at % len(blob)
    return blob[:i] + bytes([blob[i] ^ 0x5A]) + blob[i + 1:]
