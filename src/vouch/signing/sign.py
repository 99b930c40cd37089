"""`vouch sign`: append a cosign signature layer to `sha256-<hex>.sig`, idempotently."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from vouch.errors import VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import STATEMENT_TYPE, STATEMENT_V1, envelope, open_envelope
from vouch.signing.payload import go_json, simple_signing_payload
from vouch.signing.signer import KeySigner, is_keyless, verify_with_any
from vouch.store.bundles import SIGN_PREDICATE_TYPE, bundle_envelope, dsse_bundle, write_bundle
from vouch.store.layout import ANN_SIGNATURE, SIG_SUFFIX, NewLayer, TagState, tag_for, target_repository, update_tag
from vouch.verify.policy import subject_matches

TAG_WARNING = (
    "WARNING: Image reference {ref} uses a tag, not a digest, to identify the image to sign.\n"
    "    This can lead you to sign a different image than the intended one. Please use a\n"
    "    digest (example.com/ubuntu@sha256:abc123...) rather than tag\n"
    "    (example.com/ubuntu:latest) for the input to cosign. The ability to refer to\n"
    "    images by tag will be removed in a future release.\n"
)


@dataclass
class SignResult:
    image: str
    digest: str
    signed: bool  # False: an identical signature by this key was already there
    signature_tag: str
    signature: str = ""  # base64, as stored in the tag (ours just pushed, or the one already there)
    payload: bytes = b""  # the simple-signing payload it signs

    def to_json(self) -> dict[str, object]:
        return {"image": self.image, "digest": self.digest,
                "status": "signed" if self.signed else "already-signed", "signatureTag": self.signature_tag}

if TYPE_CHECKING:  # (keyless signing and bundle verification are loaded where a keyless signer is used)
    from vouch.keyless.sign import KeylessSigner

AnySigner: TypeAlias = "KeySigner | KeylessSigner"


def _ours(signer: AnySigner, sig: bytes, payload: bytes, annotations: dict[str, str]) -> bool:
    """The signature over payload is by us: valid for our key; keyless, a verified certificate naming our
    identity (issuer and subject) under our trusted root, whatever certificate it was issued."""
    if isinstance(signer, KeySigner):
        return verify_with_any([signer.public_key], sig, payload) is not None
    from vouch.bundle.verify import verify_bundle
    from vouch.keyless import legacy

    if not legacy.is_keyless(annotations):
        return False
    try:
        bundle = legacy.signature_bundle(annotations, sig, payload)
    except VouchError:
        return False
    return verify_bundle(bundle, artifact=payload, artifact_digest=None, trust=signer.trust, trusted_root=None,
                         require_tlog=True).ok


def _signature_present(state: TagState, layer: NewLayer, signer: AnySigner) -> str | None:
    """cosign's duplicate rule: same payload digest and media type, signature valid for our key (keyless:
    for our identity). Returns that stored signature (base64), or None."""
    for existing in state.layers:
        d = existing.descriptor
        if d.digest != layer.digest or d.media_type != layer.media_type:
            continue
        sig_b64 = existing.annotations.get(ANN_SIGNATURE, "")
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Same digest means the same bytes: our payload.
        if _ours(signer, sig, layer.payload, existing.annotations):
            return sig_b64
    return None


def sign_digest(client: RegistryClient, signer: AnySigner, image: Reference, digest: str,
                annotations: dict[str, str] | None) -> SignResult:
    repo = target_repository(image)
    tag = tag_for(digest, SIG_SUFFIX)
    payload = simple_signing_payload(image.docker_reference, digest, annotations)
    layer: NewLayer | None = None
    stored = ""

    def planner(state: TagState) -> list[Descriptor] | None:
        nonlocal layer, stored
        probe = layer or NewLayer(mt.COSIGN_SIMPLESIGNING, payload, {})
        found = _signature_present(state, probe, signer)
        if found is not None:
            stored = found  # the final read (or read-back) decides which equivalent signature is stored
            return None
        if layer is None:  # sign only when we actually need a new layer (keyless: a log entry each time)
            if is_keyless(signer):
                material = signer.legacy(signer.sign_blob_bundle(payload))
                sig = base64.b64encode(material.signature).decode()
                layer = NewLayer(mt.COSIGN_SIMPLESIGNING, payload, {ANN_SIGNATURE: sig, **material.annotations})
            else:
                sig = base64.b64encode(signer.sign(payload)).decode()
                layer = NewLayer(mt.COSIGN_SIMPLESIGNING, payload, {ANN_SIGNATURE: sig})
        return [x.descriptor for x in state.layers] + [layer.descriptor()]

    def planner_with_blob(state: TagState) -> list[Descriptor] | None:
        # The payload blob is pushed only when a write is needed, and made sure of before every
        # write attempt (push_blob is a HEAD when the blob is there).
        new = planner(state)
        if new is not None:
            client.push_blob(repo, payload)
        return new

    result = update_tag(client, repo, tag, planner_with_blob)
    return SignResult(f"{image.name}@{digest}", digest, result.changed, f"{repo.name}:{tag}", stored, payload)


def sign_statement(digest: str, annotations: dict[str, str] | None, statement_type: str = STATEMENT_TYPE,
                   name: str | None = None) -> bytes:
    """The in-toto statement cosign 3 signs for an image in the bundle format (no subject name; the
    annotations on the subject). Keyless signing uses in-toto v1 with the subject named (the repository),
    which sigstore-python requires."""
    algo, _, hexd = digest.partition(":")
    subject: dict[str, object] = {"name": name} if name else {}
    subject.update({"digest": {algo: hexd}, "annotations": annotations or {}})
    return go_json({"_type": statement_type, "subject": [subject], "predicateType": SIGN_PREDICATE_TYPE,
                    "predicate": {}})


def sign_digest_bundle(client: RegistryClient, signer: AnySigner, image: Reference, subject: Descriptor,
                       annotations: dict[str, str] | None) -> SignResult:
    """cosign 3's default layout: a signature bundle as a referrer of the image (fallback tag where the
    registry has no referrers API). Idempotent: a bundle by this key (keyless: this identity) over the same
    statement is enough."""
    repo = target_repository(image)
    digest = subject.digest
    keyless = is_keyless(signer)
    stmt = sign_statement(digest, annotations, STATEMENT_V1, image.docker_reference) if keyless \
        else sign_statement(digest, annotations)

    def present(raw: bytes) -> bool:
        try:
            found = open_envelope(bundle_envelope(raw))
            if is_keyless(signer):
                from vouch.bundle.verify import verify_bundle

                if not verify_bundle(raw, artifact=None, artifact_digest=digest, trust=signer.trust,
                                     trusted_root=None, require_tlog=True).ok:
                    return False
            elif found.verify([signer.public_key]) is None:
                return False
            got = found.statement()
        except VouchError:
            return False
        if got.get("predicateType") != SIGN_PREDICATE_TYPE or not subject_matches(got, digest):
            return False
        given: dict[str, object] = {}
        for s in got.get("subject") or []:
            if isinstance(s, dict) and isinstance(s.get("annotations"), dict):
                given.update(s["annotations"])
        if given != dict(annotations or {}):
            return False
        existing.append(raw)
        return True

    made: list[bytes] = []
    existing: list[bytes] = []  # the bundle already there that makes this a no-op

    def make() -> bytes:
        if is_keyless(signer):
            made.append(signer.sign_statement_bundle(stmt))
        else:
            made.append(dsse_bundle(envelope(signer, stmt), signer.public_key))
        return made[0]

    written = write_bundle(client, repo, subject, make, SIGN_PREDICATE_TYPE, present)
    sig = ""
    if made or existing:  # ours just pushed, or the one already there (--output-signature on a no-op re-run)
        sig = json.loads(bundle_envelope(made[0] if made else existing[0]))["signatures"][0]["sig"]
    return SignResult(f"{image.name}@{digest}", digest, written.written, f"{repo.name} ({written.where})", sig, stmt)


def sign_image(client: RegistryClient, signer: AnySigner, image: Reference,
               annotations: dict[str, str] | None = None, recursive: bool = False,
               warn: Callable[[str], None] | None = None, layouts: tuple[str, ...] = ("legacy",)) -> list[SignResult]:
    """Sign image by digest (tags resolved once), and with recursive every child of an index, in each
    of the layouts ("legacy" `.sig` tag, "bundle" referrer)."""
    desc = client.resolve(image)
    if image.digest is None and warn is not None:
        warn(TAG_WARNING.format(ref=str(image)))
    targets = [desc]
    if recursive and mt.is_index(desc.media_type):
        index = client.get_manifest(image.with_digest(desc.digest))
        targets += [Descriptor(c.media_type, c.digest, c.size) for c in index.children()]
    from vouch.layouts import layouts as by_name  # (the layouts sign with this module's functions)

    return [layout.sign(client, signer, image, d, annotations) for d in targets for layout in by_name(layouts)]
