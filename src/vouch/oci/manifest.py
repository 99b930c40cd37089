"""Descriptors and manifests as vouch reads them, without the registry client (so that reading an OCI layout
or an archive imports no HTTP library)."""

from __future__ import annotations

import json
import re
from typing import Any

from vouch.errors import InputError, RegistryError
from vouch.oci import mediatypes as mt
from vouch.record import field, record

# algorithm:encoded as the OCI image spec defines a digest
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,128}")


@record(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    artifact_type: str | None = None  # OCI 1.1 `artifactType` (referrers, the fallback tag index)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform is not None:
            out["platform"] = self.platform
        return out

    @staticmethod
    def from_json(obj: Any) -> Descriptor:
        """A descriptor from a manifest, checked for type and shape (the manifest comes from outside)."""
        if not isinstance(obj, dict):
            raise InputError("malformed OCI descriptor: not a JSON object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        annotations, platform = obj.get("annotations"), obj.get("platform")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise InputError("malformed OCI descriptor: mediaType and digest must be strings")
        if not _DIGEST_RE.fullmatch(digest):
            raise InputError(f"malformed OCI descriptor: digest {digest[:80]!r} is not algorithm:hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InputError("malformed OCI descriptor: size must be a non-negative integer")
        if annotations is not None and not (isinstance(annotations, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())):
            raise InputError("malformed OCI descriptor: annotations must map strings to strings")
        if platform is not None and not isinstance(platform, dict):
            raise InputError("malformed OCI descriptor: platform must be an object")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise InputError("malformed OCI descriptor: artifactType must be a string")
        # an empty annotations object means the same as none; to_json writes neither
        return Descriptor(media_type, digest, size, annotations or None, platform, artifact_type)


@record
class Manifest:
    """A fetched manifest: the exact bytes, its media type and its digest."""

    raw: bytes
    media_type: str
    digest: str
    _parsed: dict[str, Any] | None = field(default=None, repr=False)
    # read ahead of its reader (RegistryClient.prefetch_manifests): an answer as of then, never a base for a write
    prefetched: bool = field(default=False, repr=False, compare=False)

    @property
    def json(self) -> dict[str, Any]:
        if self._parsed is None:
            try:
                parsed = json.loads(self.raw)
            except ValueError as exc:
                raise RegistryError(f"manifest {self.digest} is not valid JSON") from exc
            if not isinstance(parsed, dict):
                raise RegistryError(f"manifest {self.digest} is not a JSON object")
            self._parsed = parsed
        return self._parsed

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)

    def _list(self, key: str) -> list[Descriptor]:
        items = self.json.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            raise InputError(f"manifest {self.digest}: `{key}` is not a list")
        return [Descriptor.from_json(x) for x in items]

    def layers(self) -> list[Descriptor]:
        return self._list("layers")

    def children(self) -> list[Descriptor]:
        return self._list("manifests")

    def config(self) -> Descriptor:
        if "config" not in self.json:
            raise InputError(f"manifest {self.digest} has no config")
        return Descriptor.from_json(self.json["config"])

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))
