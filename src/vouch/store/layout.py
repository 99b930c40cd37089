"""cosign's tag layout: `sha256-<hex>.sig` / `.att` manifests whose layers are signatures/attestations.

One module because idempotency and safe concurrent updates live here:
- an update is read → (maybe) modify → put → read back; a lost update (a concurrent writer put a
  manifest built from an older read) is detected on read-back and retried;
- new manifests are always built from the complete current list plus or minus our change and
  put atomically, so a crash or a failed request can never remove an existing layer;
- blobs are pushed before the manifest read so the read→put window stays small.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vouch.errors import NotFoundError, RegistryError, VerificationError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, Manifest, RegistryClient
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference, parse_reference

log = logging.getLogger("vouch.store")

SIG_SUFFIX = "sig"
ATT_SUFFIX = "att"
MAX_PAYLOAD_BYTES = {SIG_SUFFIX: 1024 * 1024, ATT_SUFFIX: 128 * 1024 * 1024}
ANN_SIGNATURE = "dev.cosignproject.cosign/signature"


def tag_for(digest: str, suffix: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}.{suffix}"


def target_repository(image: Reference) -> Reference:
    """Where signatures of image live: its own repository, or COSIGN_REPOSITORY."""
    override = os.environ.get("COSIGN_REPOSITORY")
    if override:
        repo = parse_reference(override)
        return Reference(repo.registry, repo.repository)
    return Reference(image.registry, image.repository)


@dataclass
class StoredLayer:
    """One signature/attestation layer as found in the tag manifest; blob fetched on demand."""

    descriptor: Descriptor
    payload: bytes | None = None

    @property
    def annotations(self) -> dict[str, str]:
        return self.descriptor.annotations or {}


@dataclass
class NewLayer:
    media_type: str
    payload: bytes
    annotations: dict[str, str]

    @property
    def digest(self) -> str:
        return sha256_digest(self.payload)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.payload), dict(self.annotations))


@dataclass
class TagState:
    manifest: Manifest | None
    layers: list[StoredLayer] = field(default_factory=list)


def read_tag(client: RegistryClient, repo: Reference, tag: str) -> TagState:
    """The manifest at tag and its layer descriptors (no blob read yet)."""
    try:
        m = client.get_manifest(repo.with_tag(tag), accept=f"{mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST}")
    except NotFoundError:
        return TagState(None)
    if m.media_type not in mt.IMAGE_MANIFEST_TYPES:
        raise VerificationError(f"{repo.name}:{tag} is a {m.media_type!r}, not an image manifest")
    return TagState(m, [StoredLayer(d) for d in m.layers()])


def fetch_payload(client: RegistryClient, repo: Reference, layer: StoredLayer, suffix: str) -> bytes:
    if layer.payload is None:
        cap = MAX_PAYLOAD_BYTES[suffix]
        if layer.descriptor.size > cap:
            raise VerificationError(
                f"layer {layer.descriptor.digest} is {layer.descriptor.size} bytes, over the {cap}-byte limit "
                "for a signature payload; refusing to download it")
        layer.payload = client.get_blob(repo, layer.descriptor.digest, max_bytes=cap)
    return layer.payload


def _config_for(descriptors: list[Descriptor]) -> bytes:
    """The empty image config go-containerregistry writes for cosign's signature images."""
    cfg: dict[str, Any] = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"} for _ in descriptors],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in descriptors]},
        "config": {},
    }
    return json.dumps(cfg, separators=(",", ":")).encode()


def build_manifest(client: RegistryClient, repo: Reference, descriptors: list[Descriptor]) -> bytes:
    cfg = _config_for(descriptors)
    cfg_digest = client.push_blob(repo, cfg)
    m = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "size": len(cfg), "digest": cfg_digest},
        "layers": [d.to_json() for d in descriptors],
    }
    return json.dumps(m, separators=(",", ":")).encode()


# Decides, from the current layers, what the new list should be. Returns None when nothing
# needs to change (idempotent no-op).
Planner = Callable[[TagState], list[Descriptor] | None]


@dataclass
class UpdateResult:
    changed: bool
    manifest_digest: str | None
    attempts: int


def update_tag(client: RegistryClient, repo: Reference, tag: str, planner: Planner,
               blobs: list[bytes] | None = None, max_attempts: int = 8,
               settle: float | None = None) -> UpdateResult:
    """Read-modify-write of a signature tag, safe against concurrent writers.

    The planner says what the layer list should become, or None when the tag already holds what
    we want. After a write the tag is read back (planner must now say None), and once more after
    a settle delay, to catch a concurrent writer that put a manifest built from an older read;
    on a lost update the whole cycle runs again. Blobs are pushed first.

    The settle delay defaults to twice our own read→put window, between 20 ms and 2 s: a
    concurrent writer puts at most one such window after its read, which came before our put.
    """
    for blob in blobs or []:
        client.push_blob(repo, blob)
    wrote = False
    last_digest: str | None = None
    window = 0.0
    for attempt in range(1, max_attempts + 1):
        if attempt > 2:  # a lost update already happened: back off with jitter before re-reading
            time.sleep(random.uniform(0.0, 0.05) * attempt)
        started = time.monotonic()
        state = read_tag(client, repo, tag)
        new = planner(state)
        if new is None:
            delay = settle if settle is not None else min(2.0, max(0.02, 2 * window))
            if wrote and delay > 0:
                # Our write is in place; check it is still there after a concurrent writer's window.
                time.sleep(delay * (0.75 + 0.5 * random.random()))
                again = read_tag(client, repo, tag)
                if planner(again) is None:
                    return UpdateResult(True, again.manifest.digest if again.manifest else None, attempt)
                log.info("%s:%s changed under us; re-applying", repo.name, tag)
                continue
            return UpdateResult(wrote, state.manifest.digest if state.manifest else None, attempt)
        try:
            raw = build_manifest(client, repo, new)
            last_digest = client.put_manifest(repo.with_tag(tag), raw, mt.OCI_MANIFEST)
        except RegistryError as exc:
            # A registry may briefly not see a blob another writer is committing at the same moment
            # (distribution's filesystem driver rewrites the repository link in place): make sure our
            # blobs are there and try the whole read-modify-write again.
            if exc.status != 400 or "BLOB_UNKNOWN" not in str(exc) or attempt == max_attempts:
                raise
            log.info("%s:%s: registry did not see a blob yet (%s); retrying", repo.name, tag, exc)
            for blob in blobs or []:
                client.push_blob(repo, blob)
            time.sleep(random.uniform(0.05, 0.2) * attempt)
            continue
        window = max(window, time.monotonic() - started)
        wrote = True
    raise RegistryError(f"{repo.name}:{tag}: could not apply the update after {max_attempts} attempts "
                        f"(concurrent writers?); last manifest {last_digest}; nothing was removed, run again")

