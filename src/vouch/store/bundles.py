"""cosign 3's layout: each signature or attestation is a sigstore bundle in its own OCI 1.1 artifact
manifest whose `subject` is the image, found through the registry's referrers API — or, on a registry
without that API, through the fallback tag `sha256-<hex>`: an OCI index listing those manifests.

Writing never rewrites another signer's entry: with the referrers API each bundle is a manifest of its
own (a PUT by digest, nothing read-modify-written); the fallback index is updated by the same
read → plan → put → read-back cycle as the legacy tags (`layout.update_tag`), so a concurrent writer's
entry is never lost and a fault leaves either the old or the new index.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from vouch import lazylog, limits
from vouch.errors import RegistryError, VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, Manifest, RegistryClient
from vouch.oci.digest import sha256_digest
from vouch.oci.mediatypes import BUNDLE_TYPES as BUNDLE_TYPES  # (re-exported)
from vouch.oci.mediatypes import BUNDLE_V03
from vouch.oci.reference import Reference
from vouch.record import field, record
from vouch.store.layout import SIG_SUFFIX, TagReading, TagState, read_index_tag, update_tag

if TYPE_CHECKING:
    from vouch.trust import PublicKey

log = lazylog.get("vouch.store")



# The bundle format itself lives in vouch.bundle.model (one place): here it is only stored and found.
def bundle_envelope(raw: bytes) -> bytes:
    """vouch.bundle.model.bundle_envelope_json (imported when a bundle is read: most listings have none)."""
    from vouch.bundle.model import bundle_envelope_json

    return bundle_envelope_json(raw)


def dsse_bundle(envelope_json: bytes, key: PublicKey) -> bytes:
    """vouch.bundle.model.dsse_bundle_v03."""
    from vouch.bundle.model import dsse_bundle_v03

    return dsse_bundle_v03(envelope_json, key)


ANN_CONTENT = "dev.sigstore.bundle.content"
ANN_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"  # a cosign 3 image signature is a statement of this
EMPTY_CONFIG = b"{}"


def fallback_tag(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}"


@record
class Listing:
    """The bundle referrers of one digest and where they were found."""

    entries: list[Descriptor]
    api: bool  # the registry has the referrers API (else: the fallback tag was read)
    where: str  # for messages: "referrers API" or "fallback tag sha256-…"


def list_bundles(client: RegistryClient, repo: Reference, digest: str) -> Listing:
    """The referrers of digest that may be sigstore bundles (by artifactType; an entry without one is
    kept and judged by its manifest)."""
    found = client.referrers(repo, digest)
    if found is not None:
        api, where = True, "referrers API"
    else:
        tag = fallback_tag(digest)
        state = read_index_tag(client, repo, tag)
        found = [x.descriptor for x in state.layers]
        api, where = False, f"fallback tag {tag}"
    return Listing(bundle_candidates(found), api, where)


def bundle_candidates(found: list[Descriptor]) -> list[Descriptor]:
    """The referrers that may be sigstore bundles, by artifactType (one without is judged by its manifest)."""
    return [d for d in found if d.artifact_type in BUNDLE_TYPES or d.artifact_type in (None, "", mt.OCI_EMPTY)]


def bundle_layers(m: Manifest) -> list[Descriptor]:
    """A bundle manifest's bundle layers (a well-formed one has exactly one)."""
    return [x for x in m.layers() if x.media_type in BUNDLE_TYPES]


def read_ahead(ref: Reference, found: Manifest | None) -> list[tuple[Reference, str]]:
    """What verify reads next, for RegistryClient.prefetch_manifests(then=) to read ahead: after a missing
    `.sig` tag, this layout's referrers fallback tag (cosign 3 signs there by default); after that index, the
    bundle manifests read_bundles will read. With the referrers API, the fallback tag read is one wasted GET
    per image without a `.sig` tag; a legacy-signed image costs nothing more."""
    tag = ref.tag or ""
    if found is None:
        suffix = "." + SIG_SUFFIX
        return [(ref.with_tag(tag[: -len(suffix)]), mt.OCI_INDEX)] if tag.endswith(suffix) else []
    if found.media_type != mt.OCI_INDEX:
        return []
    entries = bundle_candidates(found.children())[: limits.MAX_LAYERS_PER_TAG]
    return [(ref.with_digest(d.digest), mt.OCI_MANIFEST) for d in entries]


def read_ahead_blobs(ref: Reference, m: Manifest) -> list[tuple[str, int]]:
    """The bundle of a bundle manifest read ahead: the one layer read_bundles would download (prefetch_manifests'
    blobs_of). A `.sig` tag's payload is not: verify predicts it from the image's name."""
    layers = [] if ref.tag else bundle_layers(m)
    if len(layers) != 1 or layers[0].size > limits.MAX_ATTESTATION_BYTES:
        return []
    return [(layers[0].digest, limits.MAX_ATTESTATION_BYTES)]


@record
class BundleRead:
    """One referrer to check: its manifest descriptor, the bundle bytes or why they could not be read."""

    manifest: Descriptor
    raw: bytes | None
    error: str = ""
    predicate_type: str | None = None  # the manifest's annotation: a hint, the signed statement decides


def read_bundles(client: RegistryClient, repo: Reference, listing: Listing,
                 reading: TagReading) -> Iterator[BundleRead]:
    """The bundles of a listing, bounded like a legacy tag: at most MAX_LAYERS_PER_TAG referrers, each
    bundle under MAX_ATTESTATION_BYTES, MAX_ATTESTATION_BYTES_PER_TAG in all; one in memory at a time.
    Referrers that are not bundles (another tool's SBOM artifact, a Notation signature) are passed over."""
    todo = listing.entries
    if len(todo) > limits.MAX_LAYERS_PER_TAG:
        reading.skipped_layers = len(todo) - limits.MAX_LAYERS_PER_TAG
        todo = todo[: limits.MAX_LAYERS_PER_TAG]
    budget = limits.MAX_ATTESTATION_BYTES_PER_TAG
    for d in todo:
        try:
            m = client.get_manifest(repo.with_digest(d.digest), accept=mt.OCI_MANIFEST)
            body = m.json
            artifact_type = body.get("artifactType")
            if not isinstance(artifact_type, str):
                artifact_type = m.config().media_type
            if artifact_type not in BUNDLE_TYPES:
                continue
            annotations = body.get("annotations")
            ptype = annotations.get(ANN_PREDICATE_TYPE) if isinstance(annotations, dict) else None
            layers = bundle_layers(m)
            if len(layers) != 1:
                yield BundleRead(d, None, f"bundle manifest {d.digest[:19]} has {len(layers)} bundle layers, not one")
                continue
            layer = layers[0]
            if layer.size > limits.MAX_ATTESTATION_BYTES:
                yield BundleRead(d, None, f"bundle {layer.digest[:19]} is {layer.size} bytes, over the "
                                          f"{limits.MAX_ATTESTATION_BYTES}-byte limit; not downloaded")
                continue
            if layer.size > budget:
                reading.skipped_bytes += 1
                continue
            raw = client.get_blob(repo, layer.digest, max_bytes=limits.MAX_ATTESTATION_BYTES)
        except VouchError as exc:
            yield BundleRead(d, None, str(exc))
            continue
        budget -= len(raw)
        item = BundleRead(d, raw, predicate_type=ptype if isinstance(ptype, str) else None)
        del raw
        yield item
        del item


def bundle_manifest(subject: Descriptor, bundle: bytes, predicate_type: str, content: str) -> bytes:
    """The artifact manifest cosign 3 writes for a bundle (without its `created` annotation, so that the
    same bundle is the same manifest)."""
    m = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": mt.OCI_EMPTY, "size": len(EMPTY_CONFIG), "digest": sha256_digest(EMPTY_CONFIG)},
        "layers": [{"mediaType": BUNDLE_V03, "size": len(bundle), "digest": sha256_digest(bundle)}],
        "annotations": {ANN_CONTENT: content, ANN_PREDICATE_TYPE: predicate_type},
        "subject": {"mediaType": subject.media_type, "size": subject.size, "digest": subject.digest},
    }
    return json.dumps(m, separators=(",", ":")).encode()


@record
class BundleWrite:
    digest: str
    written: bool  # False: an equivalent bundle (same statement, same key) was already there
    where: str  # "referrers API" or "fallback tag sha256-…"
    manifest_digest: str = ""
    replaced: list[str] = field(default_factory=list)  # referrer manifests taken out (`replaces`)


def write_bundle(client: RegistryClient, repo: Reference, subject: Descriptor, bundle: bytes | Callable[[], bytes],
                 predicate_type: str,
                 present: Callable[[bytes], bool], replaces: Callable[[bytes], bool] | None = None,
                 content: str = "dsse-envelope") -> BundleWrite:
    """Attach bundle as a referrer of subject unless `present(existing)` says an equivalent one is there.
    bundle may be a function that makes it, called only when it is to be written (a keyless signature is a
    transparency-log entry: none is made for a re-run).

    `replaces(existing)` picks referrers the new bundle supersedes (our own older statement of the same
    type): they are taken out only after ours is in place, so a fault in between leaves both, never none.
    """
    listing = list_bundles(client, repo, subject.digest)
    stale: list[Descriptor] = []
    for item in read_bundles(client, repo, listing, TagReading()):
        if item.raw is None:
            continue
        if present(item.raw):
            if replaces is None:
                return BundleWrite(subject.digest, False, listing.where, item.manifest.digest)
            # An equivalent bundle stands: ours need not be written, only the superseded ones go.
            stale = [x.manifest for x in _superseded(client, repo, listing, replaces, keep=item.manifest.digest)]
            if not stale:
                return BundleWrite(subject.digest, False, listing.where, item.manifest.digest)
            removed = _take_out(client, repo, listing, subject.digest, stale)
            return BundleWrite(subject.digest, False, listing.where, item.manifest.digest, removed)
        if replaces is not None and replaces(item.raw):
            stale.append(item.manifest)
    if callable(bundle):
        bundle = bundle()
    blob = bundle

    def ensure_blobs() -> None:
        client.push_blob(repo, EMPTY_CONFIG)
        client.push_blob(repo, blob)
    ensure_blobs()
    raw = bundle_manifest(subject, bundle, predicate_type, content)
    digest = sha256_digest(raw)
    _, acked = client.put_manifest_subject(repo.with_digest(digest), raw, mt.OCI_MANIFEST, ensure_blobs=ensure_blobs)
    api = listing.api or acked
    where = "referrers API" if api else listing.where
    entry = Descriptor(mt.OCI_MANIFEST, digest, len(raw), {ANN_CONTENT: content, ANN_PREDICATE_TYPE: predicate_type},
                       artifact_type=BUNDLE_V03)
    if not api:
        _update_fallback(client, repo, subject.digest, add=entry)
    removed = _take_out(client, repo, Listing(listing.entries, api, where), subject.digest, stale) if stale else []
    return BundleWrite(subject.digest, True, where, digest, removed)


def _superseded(client: RegistryClient, repo: Reference, listing: Listing, replaces: Callable[[bytes], bool],
                keep: str) -> Iterator[BundleRead]:
    for item in read_bundles(client, repo, listing, TagReading()):
        if item.raw is not None and item.manifest.digest != keep and replaces(item.raw):
            yield item


def _update_fallback(client: RegistryClient, repo: Reference, digest: str, add: Descriptor | None = None,
                     drop: frozenset[str] = frozenset()) -> None:
    def planner(state: TagState) -> list[Descriptor] | None:
        present = [x.descriptor for x in state.layers]
        keep = [d for d in present if d.digest not in drop]
        if add is not None and all(d.digest != add.digest for d in keep):
            keep.append(add)
        return None if [d.digest for d in keep] == [d.digest for d in present] else keep

    def superseded(d: Descriptor, state: TagState) -> bool:
        return d.digest in drop

    update_tag(client, repo, fallback_tag(digest), planner, replacing=bool(drop), superseded=superseded, index=True)


def _take_out(client: RegistryClient, repo: Reference, listing: Listing, digest: str,
              stale: list[Descriptor]) -> list[str]:
    """Remove superseded referrers: out of the fallback index, or (referrers API) by deleting their
    manifests. A registry that refuses deletes keeps them: a warning, not a failure (ours is in place)."""
    if not listing.api:
        _update_fallback(client, repo, digest, drop=frozenset(d.digest for d in stale))
        return [d.digest for d in stale]
    removed = []
    for d in stale:
        try:
            client.delete_manifest(repo, d.digest)
            removed.append(d.digest)
        except RegistryError as exc:
            log.warning("%s@%s: could not delete the superseded referrer (%s); it stays beside the new one",
                        repo.name, d.digest, exc)
    return removed

