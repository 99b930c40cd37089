"""What is attached to an image's digest, in every layout (for `vouch tree`, as `cosign tree`): the legacy
`.sig`, `.att` and `.sbom` tags, and the OCI 1.1 referrers (the referrers API, else the `sha256-<hex>`
fallback index) with the sigstore bundles among them.

Nothing here verifies: a signer is what the entry *claims* (a certificate's identity, a bundle's key hint),
or, given public keys, the key whose signature checks out over the entry's bytes. `verify` decides trust.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vouch import limits
from vouch.errors import VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import (
    ANN_SIGNATURE,
    ATT_SUFFIX,
    SIG_SUFFIX,
    StoredLayer,
    fetch_payload,
    read_index_tag,
    read_tag,
    tag_for,
    target_repository,
)
from vouch.trust import PublicKey

SBOM_SUFFIX = "sbom"  # `cosign attach sbom`
ANN_CERTIFICATE = "dev.sigstore.cosign/certificate"  # as vouch.keyless.sign writes it (not imported: startup)
ANN_BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"


@dataclass
class Signer:
    """Who an entry says signed it: a key (its vouch key id, when known) or a certificate's identity."""

    kind: str  # "key" or "certificate"
    key_id: str | None = None
    subject: str | None = None
    issuer: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "key":
            out["keyId"] = self.key_id
        else:
            out.update(subject=self.subject, issuer=self.issuer)
        return out

    def text(self) -> str:
        if self.kind == "key":
            return f"key {self.key_id}" if self.key_id else "key (unnamed: --key names it)"
        return f"{self.subject} (issuer {self.issuer})" if self.issuer else str(self.subject)


@dataclass
class Entry:
    """One layer: a signature, an attestation, an SBOM, or a referrer's content."""

    digest: str
    media_type: str
    size: int
    predicate_type: str | None = None
    signer: Signer | None = None
    note: str = ""  # why something could not be read

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "mediaType": self.media_type, "size": self.size}
        if self.predicate_type is not None:
            out["predicateType"] = self.predicate_type
        if self.signer is not None:
            out["signer"] = self.signer.to_json()
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Group:
    """A tag's layers (kind signatures, attestations or sboms) or one referrer manifest's (kind referrer)."""

    kind: str
    reference: str  # REPO:TAG, or REPO@DIGEST of the referrer manifest
    entries: list[Entry]
    artifact_type: str | None = None
    found_by: str = ""  # a referrer's: "referrers API" or "fallback tag sha256-…"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "reference": self.reference}
        if self.artifact_type is not None:
            out.update(artifactType=self.artifact_type, foundBy=self.found_by)
        out["entries"] = [e.to_json() for e in self.entries]
        return out


@dataclass
class Inventory:
    image: str
    digest: str
    groups: list[Group] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "attached": [g.to_json() for g in self.groups]}


def _certificate_signer(pem: str) -> Signer:
    from cryptography import x509

    from vouch.keyless.identity import identity_of

    try:
        who = identity_of(x509.load_pem_x509_certificate(pem.encode()))
    except ValueError:
        return Signer("certificate", subject="(unreadable certificate)")
    return Signer("certificate", subject=who.subject, issuer=who.issuer or None)


def _certificate_der_signer(der: bytes) -> Signer:
    from cryptography import x509

    from vouch.keyless.identity import identity_of

    try:
        who = identity_of(x509.load_der_x509_certificate(der))
    except ValueError:
        return Signer("certificate", subject="(unreadable certificate)")
    return Signer("certificate", subject=who.subject, issuer=who.issuer or None)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _signature_entry(client: RegistryClient, repo: Reference, layer: StoredLayer,
                     keys: list[PublicKey]) -> Entry:
    d = layer.descriptor
    entry = Entry(d.digest, d.media_type, d.size)
    if ANN_CERTIFICATE in layer.annotations:
        entry.signer = _certificate_signer(layer.annotations[ANN_CERTIFICATE])
        return entry
    entry.signer = Signer("key")
    sig = _b64(layer.annotations.get(ANN_SIGNATURE, ""))
    if keys and sig:
        from vouch.signing.signer import verify_with_any
        from vouch.trust import key_id

        try:
            payload = fetch_payload(client, repo, layer, SIG_SUFFIX)
        except VouchError as exc:
            entry.note = str(exc)
            return entry
        key = verify_with_any(keys, sig, payload)
        if key is not None:
            entry.signer.key_id = key_id(key)
    return entry


def _attestation_entry(client: RegistryClient, repo: Reference, layer: StoredLayer,
                       keys: list[PublicKey]) -> Entry:
    from vouch.signing.attestation import open_envelope

    d = layer.descriptor
    entry = Entry(d.digest, d.media_type, d.size, predicate_type=layer.annotations.get("predicateType"))
    entry.signer = (_certificate_signer(layer.annotations[ANN_CERTIFICATE]) if ANN_CERTIFICATE in layer.annotations
                    else Signer("key"))
    if d.media_type != mt.DSSE_ENVELOPE:
        return entry
    try:
        env = open_envelope(fetch_payload(client, repo, layer, ATT_SUFFIX))
        ptype = env.statement().get("predicateType")
    except VouchError as exc:
        entry.note = str(exc)
        return entry
    entry.predicate_type = str(ptype)  # the signed statement's, not the annotation's
    if keys and entry.signer.kind == "key":
        entry.signer.key_id = env.verify(keys)
    layer.payload = None
    return entry


def _bundle_signer(raw: bytes, keys: list[PublicKey]) -> tuple[Signer | None, str]:
    from vouch.bundle.model import parse_bundle
    from vouch.errors import VerificationError
    from vouch.trust import key_hint, key_id

    try:
        b = parse_bundle(raw)
    except VerificationError as exc:
        return None, str(exc)
    if b.material.certificates:
        return _certificate_der_signer(b.material.certificates[0]), ""
    hint = b.material.public_key_hint or ""
    named = next((key_id(k) for k in keys if key_hint(k) == hint), None)
    if named is None and hint:
        digest = _b64(hint)
        named = digest.hex()[:12] if digest is not None and len(digest) == 32 else None
    return Signer("key", key_id=named), ""


def _referrer_group(client: RegistryClient, repo: Reference, d: Descriptor, found_by: str,
                    keys: list[PublicKey]) -> Group:
    group = Group("referrer", f"{repo.name}@{d.digest}", [], d.artifact_type, found_by)
    try:
        m = client.get_manifest(repo.with_digest(d.digest), accept=f"{mt.OCI_MANIFEST}, {mt.OCI_INDEX}")
        layers = m.layers() if not m.is_index else m.children()
        annotations = m.json.get("annotations")
    except VouchError as exc:
        group.entries.append(Entry(d.digest, d.media_type, d.size, note=str(exc)))
        return group
    ptype = annotations.get(ANN_BUNDLE_PREDICATE) if isinstance(annotations, dict) else None
    for layer in layers[: limits.MAX_LAYERS_PER_TAG]:
        entry = Entry(layer.digest, layer.media_type, layer.size)
        if layer.media_type.startswith(BUNDLE_PREFIX):
            entry.predicate_type = ptype if isinstance(ptype, str) else None
            if layer.size > limits.MAX_ATTESTATION_BYTES:
                entry.note = f"{layer.size} bytes, over the {limits.MAX_ATTESTATION_BYTES}-byte limit; not read"
            else:
                try:
                    raw = client.get_blob(repo, layer.digest, max_bytes=limits.MAX_ATTESTATION_BYTES)
                    entry.signer, entry.note = _bundle_signer(raw, keys)
                    entry.predicate_type = _statement_type(raw) or entry.predicate_type
                except VouchError as exc:
                    entry.note = str(exc)
        group.entries.append(entry)
    return group


def _statement_type(raw: bytes) -> str | None:
    """The predicate type of the in-toto statement a DSSE bundle holds (None for a message signature)."""
    from vouch.bundle.model import parse_bundle
    from vouch.errors import VerificationError
    from vouch.signing.payload import loads_json

    try:
        env = parse_bundle(raw).dsse_envelope
        if env is None:
            return None
        obj = loads_json(env.payload)
    except (VerificationError, ValueError):
        return None
    ptype = obj.get("predicateType") if isinstance(obj, dict) else None
    return ptype if isinstance(ptype, str) else None


def _tag_group(client: RegistryClient, repo: Reference, kind: str, suffix: str, digest: str,
               entry: Callable[[StoredLayer], Entry]) -> Group | None:
    tag = tag_for(digest, suffix)
    try:
        state = read_tag(client, repo, tag)
    except VouchError as exc:  # something else squats the tag: say so rather than fail the whole tree
        return Group(kind, f"{repo.name}:{tag}", [Entry(digest, "", 0, note=str(exc))])
    if not state.layers:
        return None
    return Group(kind, f"{repo.name}:{tag}", [entry(x) for x in state.layers[: limits.MAX_LAYERS_PER_TAG]])


def inventory(client: RegistryClient, image: Reference, keys: list[PublicKey] | None = None) -> Inventory:
    """Everything attached to image's digest (resolved once): legacy tags in cosign's repository
    (COSIGN_REPOSITORY honoured), then the referrers, in the registry's order."""
    keys = keys or []
    digest = image.digest or client.resolve(image).digest
    repo = target_repository(image)
    inv = Inventory(str(image), digest)
    for kind, suffix, read in (
            ("attestations", ATT_SUFFIX, lambda x: _attestation_entry(client, repo, x, keys)),
            ("signatures", SIG_SUFFIX, lambda x: _signature_entry(client, repo, x, keys)),
            ("sboms", SBOM_SUFFIX, lambda x: Entry(x.descriptor.digest, x.descriptor.media_type, x.descriptor.size))):
        group = _tag_group(client, repo, kind, suffix, digest, read)
        if group is not None:
            inv.groups.append(group)
    found = client.referrers(repo, digest)
    if found is not None:
        found_by = "referrers API"
    else:
        found_by = f"fallback tag {digest.replace(':', '-', 1)}"
        try:
            found = [x.descriptor for x in read_index_tag(client, repo, digest.replace(":", "-", 1)).layers]
        except VouchError:
            found = []
    for d in found[: limits.MAX_LAYERS_PER_TAG]:
        if d.artifact_type:  # as cosign: a referrer without an artifactType is not listed
            inv.groups.append(_referrer_group(client, repo, d, found_by, keys))
    return inv
