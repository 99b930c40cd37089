"""A local cache of attestation blobs, content-addressed by their digest, in front of the registry client.

A second `vouch query` over the same release then reads no SBOM from the registry: the tags and
referrers are still listed (an image may have gained or lost attestations since), but a layer or
bundle whose digest is cached is read from disk. Nothing cached is trusted as such: the bytes are
hashed again against the digest they are filed under, and what they hold goes through the same
verification (signature, subject, freshness) as bytes fresh from the registry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, cast

from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

log = logging.getLogger(__name__)

_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
MAX_CACHED_BYTES = 64 * 1024 * 1024


def default_cache_dir() -> Path:
    """$VOUCH_CACHE_DIR, else $XDG_CACHE_HOME/vouch/sboms, else ~/.cache/vouch/sboms."""
    if os.environ.get("VOUCH_CACHE_DIR"):
        return Path(os.environ["VOUCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vouch" / "sboms"


class BlobCache:
    """sha256 blobs under DIR/sha256/HEX, written atomically, re-hashed when read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> Path | None:
        m = _DIGEST_RE.fullmatch(digest)
        return self.root / "sha256" / m.group(1) if m else None

    def get(self, digest: str, max_bytes: int) -> bytes | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            if path.stat().st_size > max_bytes:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            log.warning("cached blob %s does not match its digest: removed, reading it from the registry", digest)
            path.unlink(missing_ok=True)
            return None
        return data

    def put(self, digest: str, data: bytes) -> None:
        path = self._path(digest)
        if path is None or len(data) > MAX_CACHED_BYTES or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only or full disk makes the cache a no-op, not a failure
            log.warning("cannot write the SBOM cache %s: %s", self.root, exc)


class CachingClient:
    """The registry client, with `get_blob` (the small blobs: attestation envelopes, bundles, payloads)
    served from the cache when it holds the digest. Everything else goes to the registry."""

    def __init__(self, client: RegistryClient, cache: BlobCache) -> None:
        self._client = client
        self.cache = cache

    def get_blob(self, ref: Reference, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        data = self.cache.get(digest, max_bytes)
        if data is not None:
            self.cache.hits += 1
            return data
        self.cache.misses += 1
        data = self._client.get_blob(ref, digest, max_bytes)
        self.cache.put(digest, data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def caching_client(client: RegistryClient, cache: BlobCache | None) -> RegistryClient:
    """The client to hand to the verification engine: the same interface, blobs from the cache."""
    return client if cache is None else cast(RegistryClient, CachingClient(client, cache))
