"""Content digests."""

from __future__ import annotations

import hashlib

from vouch.errors import DigestMismatchError, InputError
from vouch.oci.reference import is_digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hasher_for(digest: str) -> hashlib._Hash:
    if not is_digest(digest):
        raise InputError(f"unsupported or malformed digest {digest!r}")
    algo = digest.split(":", 1)[0]
    return hashlib.new(algo)


def check_digest(data: bytes, digest: str, what: str) -> None:
    h = hasher_for(digest)
    h.update(data)
    got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
    if got != digest:
        raise DigestMismatchError(
            f"{what}: content digest {got} does not match the expected {digest}; refusing it "
            "(the registry or a proxy served wrong or tampered content)"
        )
