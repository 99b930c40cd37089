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
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vouch import lazylog, limits
from vouch.errors import NotFoundError, RegistryError, VerificationError, VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.digest import sha256_digest
from vouch.oci.manifest import Descriptor, Manifest
from vouch.oci.reference import Reference, parse_reference
from vouch.record import field, record

if TYPE_CHECKING:
    from vouch.oci.client import RegistryClient

log = lazylog.get("vouch.store")

SIG_SUFFIX = "sig"
ATT_SUFFIX = "att"
MAX_PAYLOAD_BYTES = {SIG_SUFFIX: limits.MAX_SIGNATURE_PAYLOAD_BYTES, ATT_SUFFIX: limits.MAX_ATTESTATION_BYTES}
ANN_SIGNATURE = "dev.cosignproject.cosign/signature"


def tag_for(digest: str, suffix: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}.{suffix}"


_signature_repository: Reference | None = None


def set_signature_repository(value: str | None) -> None:
    """Keep signatures and attestations in this repository instead of each image's own (cosign's
    COSIGN_REPOSITORY, which the CLI reads once when it starts; the library reads no environment)."""
    global _signature_repository
    if value:
        repo = parse_reference(value)
        _signature_repository = Reference(repo.registry, repo.repository)
    else:
        _signature_repository = None


def target_repository(image: Reference) -> Reference:
    """Where signatures of image live: its own repository, or the one set_signature_repository names."""
    if _signature_repository is not None:
        return _signature_repository
    return Reference(image.registry, image.repository)


@record
class StoredLayer:
    """One signature/attestation layer as found in the tag manifest; blob fetched on demand."""

    descriptor: Descriptor
    payload: bytes | None = None

    @property
    def annotations(self) -> dict[str, str]:
        return self.descriptor.annotations or {}


@record
class NewLayer:
    media_type: str
    payload: bytes
    annotations: dict[str, str]

    @property
    def digest(self) -> str:
        return sha256_digest(self.payload)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.payload), dict(self.annotations))


@record
class TagState:
    manifest: Manifest | None
    layers: list[StoredLayer] = field(default_factory=list)


TAG_ACCEPT = f"{mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST}"  # what read_tag asks for (a prefetch must match)


READ_AHEAD_BLOB_BYTES = 2 * 1024 * 1024  # a larger statement is read when it is needed (memory stays flat)


def attestation_blobs(tag: Reference, manifest: Manifest) -> list[tuple[str, int]]:
    """The attestation envelopes of a `.att` tag, to read ahead with it (RegistryClient.prefetch_manifests'
    blobs_of: `vouch release` decides from them whether an SBOM is current)."""
    if not (tag.tag or "").endswith("." + ATT_SUFFIX):
        return []
    return [(d.digest, READ_AHEAD_BLOB_BYTES) for d in manifest.layers()
            if d.media_type == mt.DSSE_ENVELOPE and 0 < d.size <= READ_AHEAD_BLOB_BYTES]


def read_tag(client: RegistryClient, repo: Reference, tag: str) -> TagState:
    """The manifest at tag and its layer descriptors (no blob read yet)."""
    try:
        m = client.get_manifest(repo.with_tag(tag), accept=TAG_ACCEPT)
    except NotFoundError:
        return TagState(None)
    if m.media_type not in mt.IMAGE_MANIFEST_TYPES:
        raise VerificationError(f"{repo.name}:{tag} is a {m.media_type!r}, not an image manifest")
    return TagState(m, [StoredLayer(d) for d in m.layers()])


def read_index_tag(client: RegistryClient, repo: Reference, tag: str) -> TagState:
    """The OCI index at tag (the referrers fallback tag) and its member descriptors."""
    try:
        m = client.get_manifest(repo.with_tag(tag), accept=mt.OCI_INDEX)
    except NotFoundError:
        return TagState(None)
    if m.media_type != mt.OCI_INDEX:
        raise VerificationError(f"{repo.name}:{tag} is a {m.media_type!r}, not an OCI index (the referrers "
                                "fallback tag)")
    return TagState(m, [StoredLayer(d) for d in m.children()])


def fetch_payload(client: RegistryClient, repo: Reference, layer: StoredLayer, suffix: str) -> bytes:
    if layer.payload is None:
        cap = MAX_PAYLOAD_BYTES[suffix]
        if layer.descriptor.size > cap:
            raise VerificationError(
                f"layer {layer.descriptor.digest} is {layer.descriptor.size} bytes, over the {cap}-byte limit "
                "for a signature payload; refusing to download it")
        layer.payload = client.get_blob(repo, layer.descriptor.digest, max_bytes=cap)
    return layer.payload


@record
class PayloadRead:
    """One layer to check, with its payload or the reason it could not be read."""

    layer: StoredLayer
    payload: bytes | None
    error: str = ""


@record
class TagReading:
    """What a verifier reads of a tag: the layers within the bounds, and what it skipped."""

    skipped_layers: int = 0  # over limits.MAX_LAYERS_PER_TAG
    skipped_bytes: int = 0  # layers not read because the tag's byte budget was spent

    def note(self) -> str:
        parts = []
        if self.skipped_layers:
            parts.append(f"{self.skipped_layers} layer(s) past the first {limits.MAX_LAYERS_PER_TAG} not read")
        if self.skipped_bytes:
            parts.append(f"{self.skipped_bytes} layer(s) not read: the tag's payloads exceed "
                         f"{limits.MAX_ATTESTATION_BYTES_PER_TAG} bytes")
        return "; ".join(parts)


def read_payloads(client: RegistryClient, repo: Reference, layers: list[StoredLayer], suffix: str,
                  reading: TagReading, known: dict[str, bytes] | None = None) -> Iterator[PayloadRead]:
    """The payloads of a tag's layers, bounded: at most MAX_LAYERS_PER_TAG distinct layers, each blob
    fetched once, at most MAX_ATTESTATION_BYTES_PER_TAG bytes in all. Payloads are not kept: a caller
    that needs one after the loop keeps it itself, so memory is one layer at a time.

    known: payloads the caller can predict, by their digest (a signature's payload is made from the
    image's name and digest): a layer whose descriptor names one of those digests, and its size, is that
    payload (sha256 identifies the bytes), so its blob is not fetched. Any other layer is."""
    distinct: dict[str, StoredLayer] = {}
    for x in layers:
        distinct.setdefault(layer_key(x.descriptor), x)
    todo = list(distinct.values())
    if len(todo) > limits.MAX_LAYERS_PER_TAG:
        reading.skipped_layers = len(todo) - limits.MAX_LAYERS_PER_TAG
        todo = todo[: limits.MAX_LAYERS_PER_TAG]
    budget = limits.MAX_ATTESTATION_BYTES_PER_TAG
    small: dict[str, bytes] = {}  # small payloads (signatures) by digest: each blob fetched once
    for x in todo:
        d = x.descriptor
        cached = small.get(d.digest)
        if cached is None and known:
            cached = known.get(d.digest)
            if cached is not None and len(cached) != d.size:
                cached = None
        if cached is not None:
            yield PayloadRead(x, cached)
            continue
        if d.size > budget:
            reading.skipped_bytes += 1
            continue
        try:
            payload = fetch_payload(client, repo, x, suffix)
        except VouchError as exc:
            yield PayloadRead(x, None, str(exc))
            continue
        finally:
            x.payload = None
        budget -= len(payload)
        if len(payload) <= 64 * 1024:
            small[d.digest] = payload
        item = PayloadRead(x, payload)
        del payload  # the caller holds the only reference: gone before the next layer is fetched
        yield item
        del item


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


def build_index(descriptors: list[Descriptor]) -> bytes:
    """The referrers fallback tag's index, as cosign 3 (go-containerregistry) writes it."""
    m = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in descriptors]}
    return json.dumps(m, separators=(",", ":")).encode()


# Decides, from the current layers, what the new list should be. Returns None when nothing
# needs to change (idempotent no-op).
Planner = Callable[[TagState], list[Descriptor] | None]
# Says whether a layer that vanished from the tag was superseded by what the tag holds now (another
# writer's deliberate replacement), rather than lost to a concurrent writer's stale plan.
Superseded = Callable[[Descriptor, TagState], bool]


@record
class UpdateResult:
    changed: bool
    manifest_digest: str | None
    attempts: int


def layer_key(d: Descriptor) -> str:
    """A layer's identity in a tag: the same payload signed by two keys is two layers."""
    return json.dumps(d.to_json(), sort_keys=True, separators=(",", ":"))


def _confirm_absent(client: RegistryClient, repo: Reference, tag: str, confirm_delay: float,
                    reader: Callable[[RegistryClient, Reference, str], TagState] = read_tag) -> TagState:
    """A 404 for a signature tag is believed only when the repository's tag list agrees.

    Registries on eventually consistent storage answer 404 for a tag that exists, just after a
    write; taking that as "empty" would make the writer put a tag holding only its own layer and
    drop every other signer's. A tag the list shows is read again (with backoff) until it answers;
    if it keeps answering 404, nothing is written. One extra request when the tag really is new."""
    if tag not in client.list_tags(repo):
        return TagState(None)
    for attempt in range(4):
        time.sleep(confirm_delay * (2**attempt))
        state = reader(client, repo, tag)
        if state.manifest is not None:
            log.info("%s:%s: a read answered 404 but the tag exists", repo.name, tag)
            return state
    raise RegistryError(f"{repo.name}:{tag}: the registry lists this tag but answers 404 for it; refusing to write "
                        "(a write now could drop the signatures stored there); try again later")


def update_tag(client: RegistryClient, repo: Reference, tag: str, planner: Planner,
               blobs: list[bytes] | None = None, max_attempts: int = 8,
               settle: float | None = None, replacing: bool = False,
               superseded: Superseded | None = None, confirm_delay: float = 0.05,
               index: bool = False) -> UpdateResult:
    """Read-modify-write of a signature tag, safe against concurrent writers and faults.

    The tag is an image manifest whose layers are the entries (cosign's `.sig`/`.att`), or with `index`
    an OCI index whose members are (the referrers fallback tag `sha256-<hex>`): the same rules hold.

    - The planner says what the layer list should become, or None when the tag already holds what we
      want. Every attempt re-reads and re-plans: a manifest PUT is never retried with a body planned
      from an older read (a 503 with Retry-After, a dropped connection: wait, read, plan again).
    - Every layer seen in any read of this update must still be there at the end, unless the planner
      dropped it (`replacing`) or another writer superseded it: a layer
      that vanished — a concurrent writer put a manifest built from an older read, or the registry
      served an old view — is put back. Without `replacing`, a plan that drops a layer is a bug.
    - A 404 for the tag is confirmed before a new tag is created (see _confirm_absent).
    - After a write the tag is read back, and once more after a settle delay (twice our own
      read→put window, between 20 ms and 2 s: a concurrent writer puts at most one such window
      after its read, which came before our put), and the whole cycle runs again on a lost update.
    """
    for blob in blobs or []:
        client.push_blob(repo, blob)
    wrote = False
    last_digest: str | None = None
    window = 0.0
    # Every layer read from the tag during this update (other writers' layers; our own content is the
    # planner's to judge: an equivalent layer by another writer with our key may stand in for it).
    seen: dict[str, Descriptor] = {}
    dropped: set[str] = set()  # layers our own plan removed
    ours: set[str] = set()  # layers our own plan added (never "seen": an equivalent one may replace them)
    checked_blobs: dict[str, bool] = {}

    def merged(state: TagState) -> tuple[TagState, int]:
        """The state as read, plus the layers seen earlier that vanished without being superseded."""
        present = {layer_key(x.descriptor) for x in state.layers}
        missing = [d for k, d in seen.items() if k not in present and k not in dropped
                   and not (superseded is not None and superseded(d, state))]
        back = []
        for d in missing:
            if d.digest not in checked_blobs:
                checked_blobs[d.digest] = (client.head_manifest(repo.with_digest(d.digest)) is not None if index
                                           else client.blob_exists(repo, d.digest))
            if checked_blobs[d.digest]:
                back.append(StoredLayer(d))
            else:
                log.warning("%s:%s: layer %s vanished and its blob is gone; it cannot be put back",
                            repo.name, tag, d.digest)
        if back:
            log.warning("%s:%s: %d layer(s) seen earlier are missing (a concurrent writer's stale update?); "
                        "putting them back", repo.name, tag, len(back))
        return TagState(state.manifest, state.layers + back), len(back)

    def remember(state: TagState) -> None:
        for x in state.layers:
            key = layer_key(x.descriptor)
            if key not in ours:
                seen.setdefault(key, x.descriptor)

    reader = read_index_tag if index else read_tag

    def read(first: bool) -> TagState:
        state = reader(client, repo, tag)
        if state.manifest is not None and state.manifest.prefetched and planner(state) is not None:
            # An answer read ahead may say there is nothing to do; a write is planned from a fresh read
            # only (the read→put window the settle delay assumes starts here).
            state = reader(client, repo, tag)
        if state.manifest is None and first and not seen:
            state = _confirm_absent(client, repo, tag, confirm_delay, reader)
        remember(state)
        return state

    attempt = 0
    failures = 0  # writes the registry refused with a transient error: as many retries as any request gets
    retry_after: float | None = None
    while attempt < max_attempts:
        attempt += 1
        if retry_after is not None:
            client.sleep_before_retry(failures - 1, retry_after)
            retry_after = None
        elif attempt > 2:  # a lost update already happened: back off with jitter before re-reading
            time.sleep(random.uniform(0.0, 0.05) * attempt)
        started = time.monotonic()
        state, restored = merged(read(first=attempt == 1))
        new = planner(state)
        if new is None and restored:
            new = [x.descriptor for x in state.layers]  # nothing of ours to add, but layers to put back
        if new is None:
            delay = settle if settle is not None else min(2.0, max(0.02, 2 * window))
            if wrote and delay > 0:
                # Our write is in place; check it is still there after a concurrent writer's window.
                time.sleep(delay * (0.75 + 0.5 * random.random()))
                again, restored = merged(read(first=False))
                if planner(again) is None and not restored:
                    return UpdateResult(True, again.manifest.digest if again.manifest else None, attempt)
                log.info("%s:%s changed under us; re-applying", repo.name, tag)
                continue
            return UpdateResult(wrote, state.manifest.digest if state.manifest else None, attempt)
        new_keys = {layer_key(d) for d in new}
        removed = {layer_key(x.descriptor) for x in state.layers} - new_keys
        if removed and not replacing:
            raise AssertionError(f"{repo.name}:{tag}: a plan without replacement dropped {len(removed)} layer(s)")
        try:
            if index:
                raw, media_type = build_index(new), mt.OCI_INDEX
            else:
                raw, media_type = build_manifest(client, repo, new), mt.OCI_MANIFEST
            last_digest = client.put_manifest(repo.with_tag(tag), raw, media_type, retry=False)
        except RegistryError as exc:
            if exc.status == 400 and "BLOB_UNKNOWN" in str(exc) and attempt < max_attempts:
                # A registry may briefly not see a blob another writer is committing at the same moment
                # (distribution's filesystem driver rewrites the repository link in place): make sure
                # our blobs are there and try the whole read-modify-write again.
                log.info("%s:%s: registry did not see a blob yet (%s); retrying", repo.name, tag, exc)
                for blob in blobs or []:
                    client.push_blob(repo, blob)
                checked_blobs.clear()
                time.sleep(random.uniform(0.05, 0.2) * attempt)
                continue
            failures += exc.transient
            if exc.transient and attempt < max_attempts and failures <= client.options.retries:
                # The PUT may or may not have happened: wait as told, then read and plan again. (A
                # registry that keeps refusing is reported after the client's retries, ~8 s, not after
                # every attempt a lost update may need.)
                log.info("%s:%s: write failed (%s); re-reading before trying again", repo.name, tag, exc)
                retry_after = exc.retry_after if exc.retry_after is not None else 0.0
                continue
            raise
        dropped |= removed
        ours |= new_keys - {layer_key(x.descriptor) for x in state.layers}
        window = max(window, time.monotonic() - started)
        wrote = True
    raise RegistryError(f"{repo.name}:{tag}: could not apply the update after {max_attempts} attempts "
                        f"(concurrent writers?); last manifest {last_digest}; nothing was removed, run again")
