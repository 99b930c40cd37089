"""Attaching attestations to `sha256-<hex>.att`: dedup of identical statements, `--replace` by type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vouch.errors import InputError, VouchError
from vouch.keyless.trust import KeylessTrust
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference
from vouch.signing.attestation import open_envelope
from vouch.store.layout import (
    ANN_SIGNATURE,
    ATT_SUFFIX,
    NewLayer,
    StoredLayer,
    TagReading,
    TagState,
    fetch_payload,
    tag_for,
    target_repository,
    update_tag,
)
from vouch.trust import PublicKey

ANN_PREDICATE_TYPE = "predicateType"


@dataclass
class AttachResult:
    digest: str
    attached: bool  # False: an identical statement by this key was already there
    replaced: int  # layers of the same type dropped
    tag: str


def statement_info(client: RegistryClient, repo: Reference, layer: StoredLayer) -> tuple[str | None, bytes | None,
                                                                                          bytes | None]:
    """(predicateType from the statement itself, statement bytes, envelope bytes) or Nones if unreadable."""
    if layer.descriptor.media_type != mt.DSSE_ENVELOPE:
        return None, None, None
    try:
        raw = fetch_payload(client, repo, layer, ATT_SUFFIX)
        env = open_envelope(raw)
        ptype = env.statement().get("predicateType")
        return (str(ptype) if ptype is not None else None), env.payload, raw
    except VouchError:
        return None, None, None


def superseded_by_same_type(d: Descriptor, state: TagState) -> bool:
    """A vanished attestation was replaced when the tag now holds another one of its predicate type."""
    ptype = (d.annotations or {}).get(ANN_PREDICATE_TYPE)
    return ptype is not None and any(x.annotations.get(ANN_PREDICATE_TYPE) == ptype for x in state.layers)


LazyEnvelope = Callable[[], tuple[bytes, dict[str, str]]]  # signs when called: (envelope, extra layer annotations)


def attach(client: RegistryClient, image: Reference, digest: str, envelope_bytes: bytes | LazyEnvelope,
           statement_bytes: bytes, predicate_type: str, public_key: PublicKey | KeylessTrust,
           replace: bool) -> AttachResult:
    """Attach a statement to the `.att` tag unless the same statement by the same signer (key, or keyless
    identity) is there; with replace, drop the other statements of its type. envelope_bytes may be a
    function that signs on demand (keyless: a log entry only when a layer is really added)."""
    from vouch.verify.signer import envelope_signer

    repo = target_repository(image)
    tag = tag_for(digest, ATT_SUFFIX)
    trust = public_key if isinstance(public_key, KeylessTrust) else [public_key]
    made: list[NewLayer] = []

    def new_layer() -> NewLayer:
        if not made:
            env, extra = envelope_bytes() if callable(envelope_bytes) else (envelope_bytes, {})
            made.append(NewLayer(mt.DSSE_ENVELOPE, env, {ANN_PREDICATE_TYPE: predicate_type, ANN_SIGNATURE: "",
                                                         **extra}))
        return made[0]

    if not callable(envelope_bytes):
        new_layer()
    dropped = 0
    ours_digest = sha256_digest(statement_bytes)
    # Per layer digest: (predicate type, identical statement signed by us). Only these small facts are kept,
    # not the envelopes: a tag of many large layers costs one layer's memory at a time.
    cache: dict[str, tuple[str | None, bool]] = {}

    def info(x: StoredLayer) -> tuple[str | None, bool]:
        key = x.descriptor.digest
        if key not in cache:
            ptype, stmt, raw = statement_info(client, repo, x)
            by_us = (stmt is not None and raw is not None and sha256_digest(stmt) == ours_digest
                     and envelope_signer(open_envelope(raw), trust, x.annotations)[0] is not None)
            cache[key] = (ptype, by_us)
            x.payload = None
        return cache[key]

    def planner(state: TagState) -> list[Descriptor] | None:
        nonlocal dropped
        ours = [x for x in state.layers
                if (made and x.descriptor.digest == made[0].digest) or info(x)[1]]
        same_type = [x for x in state.layers if x not in ours and info(x)[0] == predicate_type]
        if ours and (not replace or not same_type):
            return None  # identical statement already attached (and, with replace, alone of its type)
        keep = [x.descriptor for x in state.layers if not (replace and x in same_type) and x not in ours]
        dropped = len(same_type) if replace else 0
        if ours:
            first = ours[0].descriptor
        else:
            layer = new_layer()
            if callable(envelope_bytes):  # made now: its blob is made sure of before every write attempt
                client.push_blob(repo, layer.payload)
            first = layer.descriptor()
        return [first, *keep] if replace else [*keep, first]

    result = update_tag(client, repo, tag, planner, blobs=None if callable(envelope_bytes) else [envelope_bytes],
                        replacing=replace, superseded=superseded_by_same_type)
    return AttachResult(digest, result.changed, dropped, f"{repo.name}:{tag}")


def read_attestations(client: RegistryClient, image: Reference, digest: str) -> tuple[Reference, list[StoredLayer]]:
    from vouch.store.layout import read_tag

    repo = target_repository(image)
    state = read_tag(client, repo, tag_for(digest, ATT_SUFFIX))
    return repo, state.layers




# Sort key of a layer that holds a valid, current statement (newer sorts higher), or None.
CurrentKey = Callable[[StoredLayer, bytes], tuple[str, str] | None]


def attach_one_current(client: RegistryClient, image: Reference, digest: str, envelope_bytes: bytes,
                       predicate_type: str, current_key: CurrentKey,
                       keep: Callable[[bytes], bool] | None = None,
                       annotations: dict[str, str] | None = None) -> AttachResult:
    """Leave exactly one current statement of predicate_type: the newest valid current one (ours if none).

    Unlike plain --replace this converges when several writers race: every writer picks the same
    winner (newest, ties by layer digest), so no two releases undo each other. Statements for which
    `keep(envelope)` is true (a rotation's previous key) are left alone, whatever their age."""
    repo = target_repository(image)
    tag = tag_for(digest, ATT_SUFFIX)
    layer = NewLayer(mt.DSSE_ENVELOPE, envelope_bytes, {ANN_PREDICATE_TYPE: predicate_type, ANN_SIGNATURE: "",
                                                        **(annotations or {})})
    ours_key = current_key(StoredLayer(layer.descriptor(), envelope_bytes), envelope_bytes)
    # Per layer digest: (predicate type, its current-key or None); envelopes are not kept.
    cache: dict[str, tuple[str | None, tuple[str, str] | None]] = {}
    kept: set[str] = set()
    dropped = 0

    def info(x: StoredLayer) -> tuple[str | None, tuple[str, str] | None]:
        if x.descriptor.digest not in cache:
            ptype, _, raw = statement_info(client, repo, x)
            cache[x.descriptor.digest] = (ptype, current_key(x, raw) if raw is not None else None)
            if raw is not None and keep is not None and keep(raw):
                kept.add(x.descriptor.digest)
            x.payload = None
        return cache[x.descriptor.digest]

    def planner(state: TagState) -> list[Descriptor] | None:
        nonlocal dropped
        same = [x for x in state.layers if info(x)[0] == predicate_type and x.descriptor.digest not in kept]
        others = [x.descriptor for x in state.layers if x not in same]
        scored = []
        for x in same:
            k = info(x)[1]
            if k is not None:
                scored.append((k, x.descriptor.digest, x.descriptor))
        if len(same) == 1 and scored:
            return None
        if scored:
            winner = max(scored, key=lambda s: (s[0], s[1]))[2]
        else:
            winner = layer.descriptor()
            if ours_key is None:
                raise VouchError("the new attestation is not itself current; refusing to attach it")
        dropped = len([x for x in same if x.descriptor.digest != winner.digest])
        return [winner, *others]

    result = update_tag(client, repo, tag, planner, blobs=[envelope_bytes], replacing=True,
                        superseded=superseded_by_same_type)
    return AttachResult(digest, result.changed, dropped, f"{repo.name}:{tag}")


def attach_bundle(client: RegistryClient, image: Reference, subject: Descriptor, envelope_bytes: bytes,
                  statement_bytes: bytes, predicate_type: str, public_key: PublicKey | KeylessTrust, replace: bool,
                  bundle: bytes | Callable[[], bytes] | None = None) -> AttachResult:
    """An attestation as a sigstore bundle referrer (cosign 3's layout), with the legacy rules: the same
    statement by the same key (keyless: identity) is not written twice; `replace` takes out this signer's
    older statements of the predicate type once the new one is in place (never another signer's: a
    referrer is its own). Keyless, `bundle` is the signed sigstore bundle holding the envelope, or a function
    that signs it when it is to be written."""
    from vouch.store.bundles import bundle_envelope, dsse_bundle, write_bundle
    from vouch.verify.signer import envelope_signer

    ours_digest = sha256_digest(statement_bytes)

    def opened(raw: bytes) -> tuple[str | None, bytes] | None:
        """(predicate type, statement bytes) of a bundle signed by our key, else None."""
        try:
            env = open_envelope(bundle_envelope(raw))
            trust = public_key if isinstance(public_key, KeylessTrust) else [public_key]
            if envelope_signer(env, trust, bundle=raw)[0] is None:
                return None
            ptype = env.statement().get("predicateType")
        except VouchError:
            return None
        return (str(ptype) if ptype is not None else None), env.payload

    def present(raw: bytes) -> bool:
        got = opened(raw)
        return got is not None and sha256_digest(got[1]) == ours_digest

    def replaces(raw: bytes) -> bool:
        got = opened(raw)
        return got is not None and got[0] == predicate_type and sha256_digest(got[1]) != ours_digest

    repo = target_repository(image)
    if bundle is None:
        if isinstance(public_key, KeylessTrust):
            raise InputError("a keyless attestation bundle comes signed: pass the bundle")
        bundle = dsse_bundle(envelope_bytes, public_key)
    w = write_bundle(client, repo, subject, bundle, predicate_type, present, replaces if replace else None)
    return AttachResult(subject.digest, w.written, len(w.replaced), f"{repo.name} ({w.where})")


def attestation_envelopes(client: RegistryClient, image: Reference, digest: str) -> Iterator[tuple[str | None, bytes]]:
    """(predicate type, DSSE envelope) of every readable attestation of digest, unverified: the legacy
    `.att` layers, then the bundle referrers (signature bundles left out). For `download`, as cosign's."""
    from vouch.store.bundles import SIGN_PREDICATE_TYPE, bundle_envelope, list_bundles, read_bundles

    repo, layers = read_attestations(client, image, digest)
    for layer in layers:
        ptype, _, raw = statement_info(client, repo, layer)
        if raw is not None:
            yield ptype, raw
    for item in read_bundles(client, repo, list_bundles(client, repo, digest), TagReading()):
        if item.raw is None:
            continue
        try:
            raw = bundle_envelope(item.raw)
            stmt_type = open_envelope(raw).statement().get("predicateType")
        except VouchError:
            continue
        if stmt_type != SIGN_PREDICATE_TYPE:
            yield (str(stmt_type) if stmt_type is not None else None), raw


def attested_bom(client: RegistryClient, image: Reference, predicate_type: str | None = None) -> tuple[str, Any]:
    """The image's digest and the predicate of its first attestation of predicate_type (default CycloneDX;
    SPDX: https://spdx.dev/Document) in either layout (None when it has none), unverified: what `download
    sbom` prints without --key, as `cosign download` does. cosign's `--type spdx` writes the SPDX document as
    a JSON string: it is returned parsed."""
    import contextlib
    import json

    from vouch.signing.attestation import PREDICATE_TYPES

    want = predicate_type or PREDICATE_TYPES["cyclonedx"]
    digest = client.resolve(image).digest
    for ptype, raw in attestation_envelopes(client, image, digest):
        if ptype == want:
            predicate = open_envelope(raw).statement().get("predicate")
            if isinstance(predicate, str):
                with contextlib.suppress(ValueError):
                    predicate = json.loads(predicate)
            return digest, predicate
    return digest, None
