"""`vouch sign`: append a cosign signature layer to `sha256-<hex>.sig`, idempotently."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.payload import simple_signing_payload
from vouch.signing.signer import KeySigner, verify_with_any
from vouch.store.layout import ANN_SIGNATURE, SIG_SUFFIX, NewLayer, TagState, tag_for, target_repository, update_tag

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


def _signature_present(state: TagState, layer: NewLayer, signer: KeySigner) -> str | None:
    """cosign's duplicate rule: same payload digest and media type, signature valid for our key.
    Returns that stored signature (base64), or None."""
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
        if verify_with_any([signer.public_key], sig, layer.payload) is not None:
            return sig_b64
    return None


def sign_digest(client: RegistryClient, signer: KeySigner, image: Reference, digest: str,
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
        if layer is None:  # sign only when we actually need a new layer
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


def sign_image(client: RegistryClient, signer: KeySigner, image: Reference,
               annotations: dict[str, str] | None = None, recursive: bool = False,
               warn: Callable[[str], None] | None = None) -> list[SignResult]:
    """Sign image by digest (tags resolved once), and with recursive every child of an index."""
    desc = client.resolve(image)
    if image.digest is None and warn is not None:
        warn(TAG_WARNING.format(ref=str(image)))
    targets = [desc.digest]
    if recursive and mt.is_index(desc.media_type):
        index = client.get_manifest(image.with_digest(desc.digest))
        targets += [child.digest for child in index.children()]
    return [sign_digest(client, signer, image, d, annotations) for d in targets]
